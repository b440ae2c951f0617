"""Evaluating a checkpoint as `avsep evaluate` does: which protocol runs, what is checked
before a model is loaded, what the checkpoint decides, where the results go.

    from avsep.evaluation.request import EvaluationRequest, evaluate_checkpoint

    request = EvaluationRequest("runs/sop/best.pt", "shards/urmp", "results/sop")
    done = evaluate_checkpoint(request)  # checks, loads, evaluates, writes the files
    print(done.results["urmp"].summary()["overall"]["scores"]["model"]["sdr"])

The command line turns its flags into an `EvaluationRequest` and calls `check_request` (before
it starts ranks) and `evaluate_checkpoint`, so the library and the command do the same. The
messages name the settings as the command line spells its options (`--pairs-csv`), since the
request's fields are those options.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from avsep import distributed
from avsep.checkpoint import load_checkpoint, training_config
from avsep.devices import resolve_device
from avsep.evaluation.center_clip import LIST_FPS, evaluate_music_center
from avsep.evaluation.music import DEFAULT_MIXTURES, evaluate_music
from avsep.evaluation.pair_csv import read_pair_csv
from avsep.evaluation.protocol_comparison import CENTER_DIR, MULTI_DIR, write_comparison
from avsep.evaluation.reader import urmp_shard_urls
from avsep.evaluation.runner import EvaluationResult
from avsep.evaluation.urmp import evaluate_urmp
from avsep.faults import InputError, UsageError
from avsep.sources import DEFAULT_POLICY, ReadPolicy, ShardReadError, dataset_shards

PROTOCOLS = ("multi-clip", "center-clip", "both")
"""The MUSIC protocols: avsep's pair list, a published list's centre clips, or both."""


class ShardLocationError(InputError, FileNotFoundError):
    """The shards of a request cannot be found or listed; the message says where."""


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate and how: the settings of `avsep evaluate`.

    Attributes:
        checkpoint: an avsep checkpoint (training's best.pt, or `avsep import-sop` output).
        data: the shards: a folder, a URL prefix, a shard list file or a brace pattern
            (MUSIC: its test/ split is read).
        out: the folder for the result files.
        dataset: "urmp" (real mixtures with separate stems) or "music" (mixtures of two
            solo test videos).
        protocol: music only: one of `PROTOCOLS`; None: "center-clip" with a `pairs_csv`,
            "multi-clip" without.
        batch_size: segments separated at once.
        limit_pieces, pieces: urmp only: the first N pieces, or these pieces.
        pairs: music, multi-clip: a pairs.json to reuse; None: `mixtures` pairs drawn with
            `seed`.
        pairs_csv: music, centre-clip: the published list, one centre clip per video.
        center_fps: the frame rate of that list's frame index.
        workers: threads decoding segments ahead of the model.
        progress: show progress bars.
        policy: read attempts and delay for remote shards, and whether shard lists may run
            `pipe:` lines.
    """

    checkpoint: str | os.PathLike
    data: str
    out: str | os.PathLike
    dataset: Literal["urmp", "music"] = "urmp"
    protocol: str | None = None
    batch_size: int = 4
    limit_pieces: int | None = None
    pieces: Sequence[str] | None = None
    pairs: str | os.PathLike | None = None
    mixtures: int = DEFAULT_MIXTURES
    seed: int = 0
    pairs_csv: str | os.PathLike | None = None
    center_fps: int = LIST_FPS
    workers: int = 2
    progress: bool = True
    policy: ReadPolicy = DEFAULT_POLICY


@dataclass
class CheckpointEvaluation:
    """What `evaluate_checkpoint` did.

    Attributes:
        protocol: "urmp", or the MUSIC protocol(s) run (`PROTOCOLS`).
        results: by protocol ("urmp", "multi-clip", "center-clip"), in the order run.
        out: the folder of the result files (with "both", each protocol's are in a
            subfolder: `protocol_comparison.MULTI_DIR`, `CENTER_DIR`).
        comparison: the side-by-side file of "both" (written by rank 0), else None.
    """

    protocol: str
    results: dict[str, EvaluationResult]
    out: Path
    comparison: Path | None = None


def music_protocol(request: EvaluationRequest) -> str:
    """The protocol(s) a request runs: "urmp", or one of `PROTOCOLS` for MUSIC.

    Raises:
        UsageError: settings that do not fit together (the message names the options).
    """
    if request.dataset != "music":
        if request.pairs_csv or request.protocol:
            raise UsageError("--pairs-csv and --protocol are for --dataset music")
        return "urmp"
    protocol = request.protocol or ("center-clip" if request.pairs_csv else "multi-clip")
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if protocol != "multi-clip" and not request.pairs_csv:
        raise UsageError(f"--protocol {protocol} scores a published list: give it with "
                         "--pairs-csv FILE")
    if protocol == "multi-clip" and request.pairs_csv:
        raise UsageError("--pairs-csv is scored by the centre-clip protocol: use --protocol "
                         "center-clip or both")
    if protocol == "center-clip" and request.pairs:
        raise UsageError("--pairs is the multi-clip protocol's list (pairs.json): with "
                         "--protocol center-clip give only --pairs-csv, or use --protocol both")
    if request.center_fps < 1:
        raise UsageError(f"--center-fps must be at least 1, got {request.center_fps}")
    return protocol


def check_request(request: EvaluationRequest) -> str:
    """Check what can be checked before a model is loaded (or ranks are started): the
    checkpoint file, the settings, a published list's lines, the shards' location.

    Returns:
        the protocol(s) to run (`music_protocol`).

    Raises:
        UsageError: a missing checkpoint or pair list, settings that do not fit together.
        PairListError: a bad line in `pairs_csv` (file:line).
        ShardLocationError: the shards cannot be found or listed.
    """
    checkpoint = Path(request.checkpoint)
    if not checkpoint.is_file():
        raise UsageError(f"{checkpoint}: checkpoint not found")
    if request.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {request.batch_size}")
    music = request.dataset == "music"
    if music and (request.limit_pieces is not None or request.pieces):
        raise UsageError("--limit-pieces and --pieces are for urmp; MUSIC mixtures come from "
                         "--pairs or --mixtures")
    if music and request.pairs and not Path(request.pairs).is_file():
        raise UsageError(f"{request.pairs}: pair list not found")
    protocol = music_protocol(request)
    if protocol in ("center-clip", "both"):
        assert request.pairs_csv is not None  # music_protocol requires it
        read_pair_csv(request.pairs_csv)  # a bad line fails before a model is loaded
    try:
        if music:
            dataset_shards(request.data, "test", request.policy)
        else:
            urmp_shard_urls(request.data, request.policy)
    except (InputError, FileNotFoundError, ShardReadError) as exc:
        hint = " (the output of `avsep prepare music`)" if music else ""
        raise ShardLocationError(f"{exc}{hint}") from exc
    return protocol


def evaluate_checkpoint(request: EvaluationRequest, device: str | torch.device = "auto",
                        protocol: str | None = None) -> CheckpointEvaluation:
    """Evaluate a checkpoint as `avsep evaluate` does.

    The checkpoint's training config (`avsep.checkpoint.training_config`) gives the frame
    geometry and,
    for MUSIC, how sources are mixed (`data.mixing`, default "sop"); results.json records
    the checkpoint's path and training step. Inside a process group every rank calls this.

    Args:
        device: where to load and run the model ("auto": CUDA when there is one).
        protocol: what `check_request` returned, when the caller has checked the request
            (it reads the pair list and lists the shards); None: checked here.

    Raises:
        InputError: the request does not check (`check_request`), the checkpoint cannot be
            loaded, or a shard or the pair list does not match its format.
        ShardReadError: a remote shard could not be read. FloatingPointError: the model's
            estimates are not finite.
    """
    protocol = protocol or check_request(request)
    device = resolve_device(device)
    model, payload = load_checkpoint(Path(request.checkpoint), map_location=device)
    config = training_config(payload, request.checkpoint)
    common: dict[str, Any] = {
        "batch_size": request.batch_size, "device": device,
        "clip_spec": config.data.clip, "workers": request.workers,
        "progress": request.progress, "policy": request.policy,
        "info": {"checkpoint": str(request.checkpoint), "step": payload.get("step")},
    }
    out = Path(request.out)
    if protocol == "urmp":
        results = {"urmp": evaluate_urmp(model, request.data, out,
                                         limit_pieces=request.limit_pieces,
                                         pieces=request.pieces, **common)}
        return CheckpointEvaluation(protocol, results, out)
    mixing = config.data.mixing
    both = protocol == "both"
    results = {}
    if protocol in ("multi-clip", "both"):
        results["multi-clip"] = evaluate_music(
            model, request.data, out / MULTI_DIR if both else out, pairs_file=request.pairs,
            mixtures=request.mixtures, seed=request.seed, mixing=mixing, **common)
    if protocol in ("center-clip", "both"):
        assert request.pairs_csv is not None  # check_request requires it
        results["center-clip"] = evaluate_music_center(
            model, request.data, request.pairs_csv, out / CENTER_DIR if both else out,
            fps=request.center_fps, mixing=mixing, **common)
    comparison = None
    if both and distributed.rank_and_world()[0] == 0:
        comparison = write_comparison(out, results["multi-clip"], results["center-clip"])
    return CheckpointEvaluation(protocol, results, out, comparison)
