"""Inference on a user's video: separate the sound of each region, localize sounds.

    from avsep.inference import localize_video, render_localization, separate_video

    localization = localize_video("concert.mp4", "runs/sop/best.pt")   # heatmaps over time
    render_localization(localization, "concert.mp4", "out/")           # MP4 + PNG key frames
    separation = separate_video("concert.mp4", "runs/sop/best.pt", players=3)
    separation.write("out/")                                           # one WAV per region
    players = localize_players("concert.mp4", "runs/sop/best.pt", players=3)
    render_players(players, "concert.mp4", "out/")                     # one colour per player

Modules: `video` (decoding), `windows` (overlapping windows, overlap-add), `localize`
(heatmaps), `render` (overlay MP4, PNGs, colour maps), `regions` (what to separate),
`separate` (one sound per region), `players` (per-player heatmaps), `loading` (checkpoint ->
model, clip geometry, device). Scoring heatmaps against URMP players' stems and boxes is
evaluation's (`avsep.evaluation.localization`: `score_piece`, `score_pieces`).
"""

from avsep.inference.loading import InferenceModel, prepare_model
from avsep.inference.localize import Localization, localize_video
from avsep.inference.players import PlayerLocalization, localize_players
from avsep.inference.regions import Region, RegionError, parse_regions
from avsep.inference.render import RenderedFiles, render_localization, render_players
from avsep.inference.separate import Separation, separate_video
from avsep.inference.video import VideoInputError, VideoSource

__all__ = [
    "InferenceModel", "Localization", "PlayerLocalization", "Region", "RegionError",
    "RenderedFiles", "Separation", "VideoInputError", "VideoSource", "localize_players",
    "localize_video", "parse_regions", "prepare_model", "render_localization",
    "render_players", "separate_video",
]
