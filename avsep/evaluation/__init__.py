"""Evaluation on URMP real mixtures and on MUSIC solo-pair mixtures: the protocols, oracle
baselines and reports (`evaluate_urmp`, `evaluate_music`, and `evaluate_music_center` for a
published pair list scored on one centre clip per video).

    from avsep.checkpoint import load_checkpoint
    from avsep.evaluation import clip_spec_from_config, evaluate_urmp

    model, checkpoint = load_checkpoint("runs/sop/best.pt", map_location="cuda")
    result = evaluate_urmp(model, "shards/urmp", "results/sop",
                           clip_spec=clip_spec_from_config(checkpoint["config"]))
    print(result.summary()["overall"]["scores"]["model"]["sdr"])
"""

from avsep.evaluation.center_clip import evaluate_music_center
from avsep.evaluation.music import evaluate_music, load_pairs, make_pairs
from avsep.evaluation.oracle import IdealMaskSeparator
from avsep.evaluation.pair_csv import PairListError, read_pair_csv, read_video_ids
from avsep.evaluation.reader import NoUrmpShardsError, UrmpSegment, index_urmp_shards
from avsep.evaluation.report import format_markdown, format_table, write_results
from avsep.evaluation.summary import METHODS, METRICS, PairScore, summarize_pairs
from avsep.evaluation.urmp import (
    SKIP_REASONS,
    EvaluationResult,
    evaluate_urmp,
)
from avsep.geometry import clip_spec_from_config

__all__ = [
    "METHODS",
    "METRICS",
    "SKIP_REASONS",
    "EvaluationResult",
    "IdealMaskSeparator",
    "NoUrmpShardsError",
    "PairListError",
    "PairScore",
    "UrmpSegment",
    "clip_spec_from_config",
    "evaluate_music",
    "evaluate_music_center",
    "evaluate_urmp",
    "format_markdown",
    "format_table",
    "index_urmp_shards",
    "load_pairs",
    "make_pairs",
    "read_pair_csv",
    "read_video_ids",
    "summarize_pairs",
    "write_results",
]
