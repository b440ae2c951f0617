"""Evaluation on URMP real mixtures and on MUSIC solo-pair mixtures: the protocols, oracle
baselines and reports (`evaluate_urmp`, `evaluate_music`, and `evaluate_music_center` for a
published pair list scored on one centre clip per video), all run by one runner
(`run_protocol`); `evaluate_checkpoint` does what `avsep evaluate` does. Scoring
localization heatmaps against URMP players is `avsep.evaluation.localization`.

    from avsep.checkpoint import load_checkpoint, training_config
    from avsep.evaluation import evaluate_urmp

    model, checkpoint = load_checkpoint("runs/sop/best.pt", map_location="cuda")
    clip = training_config(checkpoint, "runs/sop/best.pt").data.clip
    result = evaluate_urmp(model, "shards/urmp", "results/sop", clip_spec=clip)
    print(result.summary()["overall"]["scores"]["model"]["sdr"])
"""

from avsep.evaluation.center_clip import evaluate_music_center
from avsep.evaluation.music import evaluate_music, load_pairs, make_pairs
from avsep.evaluation.oracle import IdealMaskSeparator
from avsep.evaluation.pair_csv import PairListError, read_pair_csv, read_video_ids
from avsep.evaluation.reader import NoUrmpShardsError, UrmpSegment, index_urmp_shards
from avsep.evaluation.report import format_markdown, format_table, write_results
from avsep.evaluation.request import EvaluationRequest, check_request, evaluate_checkpoint
from avsep.evaluation.runner import EvaluationResult, RunOptions, run_protocol
from avsep.evaluation.scoring import SKIP_REASONS
from avsep.evaluation.summary import METHODS, METRICS, PairScore, summarize_pairs
from avsep.evaluation.urmp import evaluate_urmp

__all__ = [
    "METHODS",
    "METRICS",
    "SKIP_REASONS",
    "EvaluationRequest",
    "EvaluationResult",
    "IdealMaskSeparator",
    "NoUrmpShardsError",
    "PairListError",
    "PairScore",
    "RunOptions",
    "UrmpSegment",
    "check_request",
    "evaluate_checkpoint",
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
    "run_protocol",
    "summarize_pairs",
    "write_results",
]
