"""How well heatmaps point at the right player: localization accuracy on URMP-style pieces.

Definition. For an ensemble video whose players stand side by side at equal widths (URMP
layout, player k = `AuSep_k`), at every output frame time t (as in `localize_video`):

1. The model separates one sound per vision-map location: M_l = mask_l * |X|, the pixel-wise
   mask of location l times the mixture magnitude, on the 512 linear bins of the STFT frames
   centred within half a frame period of t (the frames of the heatmap at t).
2. Each bin is attributed to the players by the ground-truth stems: R_k = |S_k|^2 /
   sum_j |S_j|^2 is player k's share of the bin's energy.
3. "Player k's heatmap" is the location's separated energy weighted by how much of each bin
   is player k's, minus what belongs to the other players:

       H_k(l, t) = sum over bins of |M_l|^2 * (R_k - (1 - R_k))

   i.e. the energy the location takes from player k minus the energy it takes from the
   others. It is high where the location keeps player k's bins and drops the others'; a
   location that keeps everything, or nothing, scores low. Where windows overlap, values
   are averaged with the overlap-add taper, as heatmaps are.
4. Player k is evaluated at t if its stem is active there: it holds at least `activity_db`
   (-20 dB) of the mixture's energy on those bins. The pair is a hit when the location
   with the highest H_k lies inside player k's crop (its cell centre falls in the k-th
   equal-width column).

Accuracy = hits / evaluated pairs. Chance = the expected accuracy of a location drawn
uniformly at random from the vision map, averaged over the same pairs (the share of cells
whose centre lies in player k's column, about 1 / players). A random-weight model scores
near chance; a model that separates by what it sees scores above it.

The field's scores (class-aware IoU, as DSOL, NeurIPS 2020). On the same (frame, player)
pairs, player k's map H_k (negative evidence clipped to 0) is divided by its maximum and its
region is the cells at or above `REGION_LEVEL` (0.5); its IoU with player k's box (the cells whose centre lies in it) is that
pair's cIoU. The box is where the stand-in drew the player (its Boxes_<piece>.json, per video
frame); real URMP pieces have none, and the player's column is the box. cIoU@0.3 = the share of pairs with cIoU >= 0.3; AUC = the area under that share as the
IoU threshold goes from 0 to 1 (21 steps, trapezoids). A map without heat predicts every
cell.

`reference="estimates"` scores the per-player maps a user sees (`avsep localize --players`,
`avsep.inference.players`): the shares R_k come from the model's own separation of each
player's column crop instead of the stems; the stems still say who plays when.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avsep.inference.loading import prepare_model
from avsep.inference.localize import (
    cell_centres,
    localize_video,
    localizer_for,
    output_times,
    window_inputs,
)
from avsep.inference.players import localize_players
from avsep.inference.video import VideoSource, model_frame_size
from avsep.inference.windows import FrameAverager, WindowPlan, stft_frame_spans
from avsep.media import BadInput, read_wav, resample
from avsep.models.localization import Gate, Localizer
from avsep.urmp_naming import boxes_file_name, parse_piece_name, player_bounds

REGION_LEVEL = 0.5  # normalised heat at or above which a cell is in the predicted region
CIOU_THRESHOLD = 0.3
AUC_THRESHOLDS = np.arange(21) / 20  # 0, 0.05, ..., 1 (each the float nearest k / 20)


def region_iou(heat: np.ndarray, box: np.ndarray, level: float = REGION_LEVEL) -> float:
    """IoU of a heatmap's region with a box, counted in map cells.

    Args:
        heat: (h, w) heat; negative values (evidence for other players, in the
            per-player maps of `score_piece`) count as none.
        box: (h, w) bool, the cells of the box.
        level: the region is where heat / max >= level (every cell when no cell has heat).
    """
    positive = np.clip(heat, 0.0, None)
    high = float(positive.max())
    region = (positive / high >= level) if high > 0 else np.ones_like(box)
    union = np.logical_or(region, box).sum()
    return float(np.logical_and(region, box).sum() / union) if union else math.nan


def success_scores(ious: list[float] | np.ndarray) -> dict[str, float]:
    """cIoU@0.3 (share of pairs with IoU >= 0.3) and AUC of the share over IoU thresholds."""
    values = np.asarray(ious, dtype=float)
    if not len(values):
        return {"ciou": math.nan, "auc": math.nan}
    success = np.array([(values >= t).mean() for t in AUC_THRESHOLDS])
    area = float(np.sum((success[1:] + success[:-1]) / 2 * np.diff(AUC_THRESHOLDS)))
    return {"ciou": float((values >= CIOU_THRESHOLD).mean()), "auc": area}


@dataclass
class PieceLocalization:
    """Localization accuracy on one piece.

    Attributes:
        piece: the piece's folder name.
        players: number of players.
        hits, evaluated: per player, hits and evaluated (frame, player) pairs.
        chance: per player, the share of vision-map cells inside that player's column.
        frames: output frames scored.
        ious: per player, the cIoU of each evaluated (frame, player) pair.
    """

    piece: str
    players: int
    hits: list[int] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    chance: list[float] = field(default_factory=list)
    frames: int = 0
    ious: list[list[float]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        total = sum(self.evaluated)
        return sum(self.hits) / total if total else math.nan

    @property
    def chance_accuracy(self) -> float:
        """Expected accuracy of a uniformly random location over the evaluated pairs."""
        total = sum(self.evaluated)
        if not total:
            return math.nan
        return sum(c * n for c, n in zip(self.chance, self.evaluated)) / total

    @property
    def scores(self) -> dict[str, float]:
        """cIoU@0.3 and AUC over this piece's evaluated pairs (`success_scores`)."""
        return success_scores([v for player in self.ious for v in player])


def summarize_localization(pieces: list[PieceLocalization]) -> dict:
    """Pooled accuracy, chance, cIoU@0.3 and AUC over all evaluated pairs of all pieces."""
    evaluated = sum(sum(p.evaluated) for p in pieces)
    hits = sum(sum(p.hits) for p in pieces)
    chance = sum(sum(c * n for c, n in zip(p.chance, p.evaluated)) for p in pieces)
    ious = [v for p in pieces for player in p.ious for v in player]
    return {
        "pieces": len(pieces), "pairs": evaluated, "hits": hits,
        "accuracy": hits / evaluated if evaluated else math.nan,
        "chance": chance / evaluated if evaluated else math.nan,
        **success_scores(ious),
    }


def player_boxes(folder: Path, times_s: np.ndarray, frame_size: tuple[int, int],
                 players: int) -> np.ndarray:
    """Each player's box at each time: (T, P, 4) as x0, y0, x1, y1 in frame pixels.

    From the stand-in's Boxes_<piece>.json (the video frame shown at each time, scaled to
    `frame_size`) when the folder has one, else the players' equal-width columns.
    """
    path = folder / boxes_file_name(folder.name)
    height, width = frame_size
    if not path.is_file():
        columns = np.array([[x0, 0, x1, height] for x0, x1 in player_bounds(width, players)],
                           dtype=float)
        return np.broadcast_to(columns, (len(times_s), players, 4)).copy()
    data = json.loads(path.read_text())
    boxes = np.asarray(data["boxes"], dtype=float)  # (frames, P, 4)
    if boxes.ndim != 3 or boxes.shape[1:] != (players, 4):
        raise ValueError(f"{path}: expected boxes of {players} players per frame, got "
                         f"shape {boxes.shape}")
    drawn_height, drawn_width = data["frame_size"]
    index = np.minimum(np.floor(times_s * data["fps"] + 1e-6).astype(int), len(boxes) - 1)
    scale = np.array([width / drawn_width, height / drawn_height] * 2)
    return boxes[index] * scale


def box_cells(box: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(h, w) bool: the map cells whose centre (ys (h,), xs (w,)) lies in box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]


def read_stems(folder: Path, codes: list[str], number: str, title: str, rate: int,
                length: int) -> np.ndarray:
    """The AuSep stems at `rate`, cut or padded to `length`: (P, length) float32."""

    stems = []
    for k, code in enumerate(codes, start=1):
        path = folder / f"AuSep_{k}_{code}_{number}_{title}.wav"
        try:
            audio, native = read_wav(path)
        except BadInput as exc:
            raise ValueError(f"{path}: {exc}") from None
        audio = resample(audio, native, rate)[:length]
        stems.append(np.pad(audio, (0, length - len(audio))))
    return np.stack(stems)


def players_sounding(folder: str | Path, times_s: np.ndarray, rate: int = 11025,
                     span_s: float = 0.25, level_db: float = -20.0) -> list[list[str]]:
    """Which players of a URMP-style piece sound at each time, as "k:code" labels (player k,
    from 1, plays instrument `code`): those whose stem's RMS over [t - span_s, t + span_s] is at least `level_db` of its RMS over the piece
    (up to the last time; a rest or a held-back note is silent)."""
    folder = Path(folder)
    number, title, codes = parse_piece_name(folder.name)
    total = max(1, math.ceil((float(np.max(times_s)) + span_s) * rate))
    stems = read_stems(folder, codes, number, title, rate, total).astype(np.float64)
    overall = np.sqrt(np.mean(np.square(stems), axis=1))  # (P,)
    half = int(span_s * rate)
    sounding = []
    for t in times_s:
        centre = round(float(t) * rate)
        part = stems[:, max(0, centre - half):centre + half]
        rms = np.sqrt(np.mean(np.square(part), axis=1)) if part.shape[1] else np.zeros(len(codes))
        loud = rms >= overall * 10.0 ** (level_db / 20.0)
        sounding.append([f"{k + 1}:{c}" for k, c in enumerate(codes) if loud[k] and overall[k] > 0])
    return sounding


def score_piece(
    folder: str | Path,
    model,
    *,
    fps: float = 8.0,
    hop: int | None = None,
    activity_db: float = -20.0,
    reference: str = "stems",
    device: str | torch.device = "auto",
    progress: bool = False,
    gate: Gate | None = None,
) -> PieceLocalization:
    """Localization accuracy on one URMP-style piece folder (see the module docstring).

    Args:
        folder: RAW/NN_Title_c1_c2 with Vid_<folder>.mp4 and AuSep_<k>_<code>_NN_Title.wav.
        model: a checkpoint path, a Sound of Pixels separator or an `InferenceModel`.
        fps: output frames per second scored.
        hop: samples between windows (default: half a window).
        activity_db: a player is scored at a frame if its stem holds at least this much of
            the mixture's energy there.
        reference: "stems" (the shares of the bins from the stems) or "estimates" (from the
            model's separation of each player's column; see the module docstring).
        gate: how a model with an audio tagger dims the heat (None: the checkpoint's).
    """

    if reference not in ("stems", "estimates"):
        raise ValueError(f"reference must be 'stems' or 'estimates', got {reference!r}")
    folder = Path(folder)
    number, title, codes = parse_piece_name(folder.name)
    runner = prepare_model(model, device)
    localizer = localizer_for(runner.model, gate)
    model_, spec, rate = runner.model, runner.spec, runner.model.sample_rate
    source = VideoSource(folder / f"Vid_{folder.name}.mp4", rate)
    times = output_times(source.duration_s, fps)
    total = max(len(source.audio), math.ceil(source.duration_s * rate))
    stems = read_stems(folder, codes, number, title, rate, total)
    plan = WindowPlan.cover(total, spec.clip_samples, hop)
    players = len(codes)
    player_maps: FrameAverager | None = None
    activity = FrameAverager(len(times), (players,))
    for index in tqdm(range(len(plan)), desc=folder.name, unit="window", disable=not progress):
        mix, frames = window_inputs(runner, source, plan, [index])
        stem_window = torch.from_numpy(plan.extract(stems, index)).to(runner.device)
        estimates = None
        if reference == "estimates":
            columns = [(x0, 0, x1, source.frame_size[0])
                       for x0, x1 in player_bounds(source.frame_size[1], players)]
            crops = source.region_frames(plan.centre(index), spec, columns)[None]
            with torch.no_grad():
                estimates = model_.separate(mix, torch.from_numpy(crops).to(runner.device))[0]
        per_frame = _window_scores(localizer, mix, frames, stem_window, estimates)
        _, h, w, tf = per_frame["score"].shape
        spans = stft_frame_spans(plan, index, times, rate, fps, model_.hop_length, tf)
        means = {name: spans.mean_over_frames(v.cpu().numpy()) for name, v in per_frame.items()}
        scores = means["score"]  # (n, P, h, w)
        mix_energy = means["mix"][:, None]
        shares = np.divide(means["stems"], mix_energy, out=np.zeros_like(means["stems"]),
                           where=mix_energy > 0)
        if player_maps is None:
            player_maps = FrameAverager(len(times), (players, h, w))
        player_maps.add(spans, scores)
        activity.add(spans, shares)
    assert player_maps is not None  # WindowPlan.cover makes at least one window
    result = PieceLocalization(folder.name, players, frames=len(times))
    _count_peaks(result, player_maps.result(), activity.result(), source.frame_size,
                 spec.image_size, 10.0 ** (activity_db / 10.0),
                 player_boxes(folder, times, source.frame_size, players))
    return result


def _window_scores(localizer: Localizer, mix: torch.Tensor, frames: torch.Tensor,
                   stems: torch.Tensor, estimates: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor]:
    """Per-location evidence for each player in one window, per STFT frame.

    Args:
        mix: (1, N) mixture window; frames: the model's frames for it; stems: (P, N) stems;
        estimates: (P, N) the model's separated sounds, to weigh the bins by instead of
            the stems (None: the stems).

    Returns:
        "score": (P, h, w, Tf): at each location, the separated energy weighted by +1 where
        the player's stem dominates a time-frequency bin and -1 where the others do;
        "stems": (P, Tf) stem energy; "mix": (Tf,) mixture energy.
    """
    with torch.no_grad():
        reference = stems if estimates is None else estimates.float()
        score = localizer.pixel_scores(mix, frames, reference[None])[0]  # (P, h, w, Tf)
        mix_mag = localizer.model.spectrogram(mix)["mag"][0]  # (F, Tf)
        stem_mag = localizer.model.spectrogram(stems)["mag"]  # (P, F, Tf)
    tf = score.shape[-1]
    return {
        "score": score,
        "stems": stem_mag[..., :tf].square().sum(dim=1),  # (P, Tf)
        "mix": mix_mag[..., :tf].square().sum(dim=0),  # (Tf,)
    }


def _count_peaks(result: PieceLocalization, score_maps: np.ndarray, share: np.ndarray,
                 frame_size: tuple[int, int], image_size: int, threshold: float,
                 boxes: np.ndarray) -> None:
    """Add each player's peak hits, scored frames, chance and cIoU to `result`.

    Args:
        score_maps: (T, P, h, w) evidence per output frame; share: (T, P) each stem's share of
        the mixture energy; a player counts at frames where its share is >= `threshold`.
        boxes: (T, P, 4) each player's box per output frame (`player_boxes`).
    """
    players = score_maps.shape[1]
    map_size = score_maps.shape[2:]
    ys, xs = cell_centres(model_frame_size(frame_size, image_size), map_size, frame_size)
    columns = player_bounds(frame_size[1], players)
    inside = np.stack([(xs >= x0) & (xs < x1) for x0, x1 in columns])  # (P, w)
    for k in range(players):
        active = share[:, k] >= threshold
        maps = score_maps[active, k]  # (n, h, w)
        peaks = maps.reshape(-1, map_size[0] * map_size[1]).argmax(axis=1)
        peak_columns = peaks % map_size[1]
        result.hits.append(int(inside[k, peak_columns].sum()))
        result.ious.append([region_iou(m, box_cells(b, ys, xs))
                            for m, b in zip(maps, boxes[active, k])])
        result.evaluated.append(int(active.sum()))
        result.chance.append(float(inside[k].mean()))


def score_pieces(raw: str | Path, model, **kwargs) -> list[PieceLocalization]:
    """`score_piece` on every piece folder (NN_Title_c1_c2) of a raw URMP directory."""
    raw = Path(raw)
    folders = sorted(p for p in raw.iterdir() if p.is_dir() and (p / f"Vid_{p.name}.mp4").is_file())
    if not folders:
        raise ValueError(f"no URMP piece folders with a Vid_<folder>.mp4 video in {raw}")
    runner = prepare_model(model, kwargs.pop("device", "auto"))
    return [score_piece(folder, runner, **kwargs) for folder in folders]


# --------------------------------------------------------------------- negative audio
# Does the heatmap follow the sound? The same video with audio that has no sounding player
# in the picture: silence, white noise at the true audio's RMS, and another piece's audio
# at the same RMS (off-screen sound). A heatmap that ignores the sound scores the same as
# with the true audio (arXiv 2410.01020).
NEGATIVE_AUDIO = ("silent", "noise", "offscreen")


def heat_figures(heatmaps: np.ndarray, in_boxes: np.ndarray) -> dict[str, float]:
    """How much heat a run of heatmaps has and where it is.

    Args:
        heatmaps: (N, h, w) non-negative heat (`Localization.heatmaps`).
        in_boxes: (N, h, w) bool, the cells inside any player's box at each frame.

    Returns:
        energy: mean total heat per frame; in_boxes: the share of the heat inside the boxes
        and contrast: peak / mean heat of the map, both averaged over the frames that have
        heat (NaN when none has); box_share: the share of cells inside the boxes (what
        uniform heat would put there); frames_with_heat: their count.
    """
    heat = np.clip(heatmaps.astype(np.float64), 0.0, None)
    total = heat.sum(axis=(1, 2))
    hot = total > 0
    share = (heat * in_boxes).sum(axis=(1, 2))[hot] / total[hot]
    contrast = heat.max(axis=(1, 2))[hot] / heat.mean(axis=(1, 2))[hot]
    return {
        "energy": float(total.mean()) if len(total) else math.nan,
        "in_boxes": float(share.mean()) if hot.any() else math.nan,
        "contrast": float(contrast.mean()) if hot.any() else math.nan,
        "box_share": float(in_boxes.mean()),
        "frames_with_heat": int(hot.sum()),
    }


def same_scale_figures(heatmaps: np.ndarray, true_heatmaps: np.ndarray,
                       in_boxes: np.ndarray) -> dict[str, float]:
    """Heat of other audio on the true audio's scale, summed over the frames.

    `heat_figures` normalises each map by its own total: a map with a hundredth of the true
    audio's heat, laid out the same way, scores the same share and contrast. These figures
    keep the true audio's scale instead (arXiv 2410.01020 argues that per-map normalisation
    hides a model that ignores the sound): for the true audio itself they are 1 and its
    contrast pooled over the frames; a model that makes no heat for sounds it cannot see
    scores near 0 on both. Both are ratios of sums over the frames: a frame-by-frame ratio
    explodes on frames where the true audio is nearly silent (measured: 10^8 on the demo).

    Args:
        heatmaps: (N, h, w) heat with some audio; true_heatmaps: (N, h, w) the same frames'
            heat with the true audio; in_boxes: (N, h, w) bool, cells in a player's box.

    Returns:
        boxed_heat: the heat inside the boxes summed over the frames, over the true audio's;
        peak_over_true_mean: the maps' peaks summed over the frames, over the true maps'
        mean heat summed over the frames. NaN where the true audio has no heat.
    """
    if heatmaps.shape != true_heatmaps.shape or heatmaps.shape != in_boxes.shape:
        raise ValueError(f"expected heatmaps, true heatmaps and boxes of one shape, got "
                         f"{heatmaps.shape}, {true_heatmaps.shape} and {in_boxes.shape}")
    heat = np.clip(heatmaps.astype(np.float64), 0.0, None)
    true = np.clip(true_heatmaps.astype(np.float64), 0.0, None)
    true_boxed = float((true * in_boxes).sum())
    true_mean = float(true.mean(axis=(1, 2)).sum())
    peaks = float(heat.max(axis=(1, 2)).sum()) if len(heat) else 0.0
    return {
        "boxed_heat": float((heat * in_boxes).sum()) / true_boxed if true_boxed > 0 else math.nan,
        "peak_over_true_mean": peaks / true_mean if true_mean > 0 else math.nan,
    }


def negative_audio_checks(
    folder: str | Path,
    model,
    *,
    offscreen: str | Path,
    fps: float = 8.0,
    seed: int = 0,
    heat: str = "total",
    device: str | torch.device = "auto",
    gate: Gate | None = None,
) -> dict[str, dict[str, float]]:
    """`heat_figures` and `same_scale_figures` of a URMP-style piece's heatmaps with its true
    audio and with each `NEGATIVE_AUDIO` condition; "energy" is given relative to the true
    audio's.

    Args:
        folder: the piece (Vid_<folder>.mp4, optional Boxes_<folder>.json).
        model: a checkpoint path, a Sound of Pixels separator or an `InferenceModel`.
        offscreen: another video whose audio is the off-screen sound.
        fps: heatmap frames per second; seed: the noise's seed.
        heat: "total" (`localize_video`'s heatmaps) or "players": the per-player maps of
            `localize_players` (each player's column), their positive parts summed over
            the players, i.e. the heat `avsep localize --players` draws.
        gate: how a model with an audio tagger dims the heat (None: the checkpoint's).
    """
    if heat not in ("total", "players"):
        raise ValueError(f"heat must be 'total' or 'players', got {heat!r}")
    folder = Path(folder)
    runner = prepare_model(model, device)
    localizer_for(runner.model, gate)  # an error for a model that cannot localize
    rate = runner.model.sample_rate
    source = VideoSource(folder / f"Vid_{folder.name}.mp4", rate)
    true = source.audio.astype(np.float32)
    rms = float(np.sqrt(np.mean(np.square(true, dtype=np.float64))))
    other = VideoSource(offscreen, rate).audio
    other = np.resize(other, len(true))  # repeated or cut to the same length
    other_rms = float(np.sqrt(np.mean(np.square(other, dtype=np.float64))))
    audios = {
        "true": true,
        "silent": np.zeros_like(true),
        "noise": (np.random.default_rng(seed).standard_normal(len(true)) * rms),
        "offscreen": other * (rms / other_rms if other_rms > 0 else 0.0),
    }
    figures: dict[str, dict[str, float]] = {}
    cells: np.ndarray | None = None
    true_maps: np.ndarray | None = None
    for name, audio in audios.items():
        source.audio = np.asarray(audio, dtype=np.float32)
        if heat == "players":
            players = localize_players(source, runner, fps=fps, progress=False, gate=gate)
            loc, maps = players.heat, np.clip(players.scores, 0.0, None).sum(axis=1)
        else:
            loc = localize_video(source, runner, fps=fps, progress=False, gate=gate)
            maps = loc.heatmaps
        if cells is None:
            boxes = player_boxes(folder, loc.times_s, source.frame_size,
                                 len(parse_piece_name(folder.name)[2]))
            ys, xs = cell_centres(loc.model_frame_size, loc.heatmaps.shape[1:], loc.frame_size)
            cells = np.stack([np.logical_or.reduce([box_cells(b, ys, xs) for b in frame])
                              for frame in boxes])
        if true_maps is None:
            true_maps = maps  # "true" comes first
        figures[name] = heat_figures(maps, cells) | same_scale_figures(maps, true_maps, cells)
    reference = figures["true"]["energy"]
    for values in figures.values():
        values["energy"] = values["energy"] / reference if reference > 0 else math.nan
    return figures
