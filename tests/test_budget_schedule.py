"""The learning-rate schedule in shares of the time budget (`optim.lr_budget_fractions`)."""

from __future__ import annotations

import pytest

from avsep.checkpoint import load_checkpoint
from avsep.config import ConfigError
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.training.optim import budget_decay_due
from avsep.training.tracking import read_metrics


def test_budget_decays_come_in_order_once_each():
    config = load_run_config(None, ["optim.lr_milestones=[]", "train.max_minutes=10",
                                    "optim.lr_budget_fractions=[0.5, 0.8]"])
    assert [budget_decay_due(config, 0, s) for s in (0.1, 0.49, 0.5, 0.9)] == [
        False, False, True, True]
    assert [budget_decay_due(config, 1, s) for s in (0.6, 0.8)] == [False, True]
    assert not budget_decay_due(config, 2, 0.99)


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.max_minutes=10", "optim.lr_budget_fractions=[0.5]"], "replaces optim.lr_milestones"),
    (["optim.lr_milestones=[]", "optim.lr_budget_fractions=[0.5]"], "max_minutes, which is not"),
    (["optim.lr_milestones=[]", "train.max_minutes=10", "optim.lr_budget_fractions=[0.8, 0.5]"],
     "must increase within"),
    (["optim.lr_milestones=[]", "train.max_minutes=10", "optim.lr_budget_fractions=[1.0]"],
     "must increase within"),
])
def test_bad_budget_schedules_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, overrides)


def test_a_budget_share_already_passed_decays_the_rates_from_the_next_step(
        prepared_tiny, tmp_path):
    from tests.test_train import tiny_config

    # The run is built before its first step, so a tiny share has passed by then: every
    # step trains at the decayed rate, and the checkpoint keeps the milestone for a resume.
    config = tiny_config(prepared_tiny["solos"], "optim.lr_milestones=[]",
                         "train.max_minutes=30", "optim.lr_budget_fractions=[0.000001]",
                         "optim.lr_decay=0.5", "train.epochs=1", "train.steps_per_epoch=3",
                         "train.checkpoint_every=3")
    train(config, tmp_path / "run", progress=False)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")
           if r["kind"] == "train"]
    assert lrs and all(lr == pytest.approx(0.5e-3) for lr in lrs)
    _, state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert dict(state["scheduler"]["milestones"]) == {1: 1}
