"""Drawing heatmaps over frames and writing the results: MP4 (H.264 + AAC), PNG key frames,
contact sheet.

Display scale: energies are divided by a reference level and clipped to [0, 1] before the
colour map: `normalize="global"` uses the 99.5th percentile over the whole video (quiet
moments look dim, loud ones bright), `"frame"` each frame's own maximum (always shows where,
even when quiet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
from tqdm import tqdm

from avsep.faults import UsageError
from avsep.inference.localize import Localization, upsample_heatmap
from avsep.inference.players import PlayerLocalization
from avsep.inference.regions import Region
from avsep.inference.video import VideoSource, open_video

AUDIO_FRAME = 1024  # samples per AAC frame


def colormap_lut(name: str) -> np.ndarray:
    """A matplotlib colour map as a (256, 3) uint8 lookup table."""
    import matplotlib  # heavy (~0.5 s); only the colour map needs it

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        examples = "inferno, magma, viridis, jet, turbo, hot"
        raise UsageError(f"unknown colour map {name!r} (matplotlib names, e.g. {examples})"
                         ) from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(frame: np.ndarray, heat: np.ndarray, lut: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a colour-mapped heat image over a frame.

    Args:
        frame: (H, W, 3) uint8 RGB.
        heat: (H, W) values in [0, 1].
        lut: (256, 3) uint8 colour map.
        opacity: weight of the heat colours, in [0, 1].

    Returns:
        (H, W, 3) uint8.
    """
    if not 0.0 <= opacity <= 1.0:
        raise UsageError(f"opacity must be in [0, 1], got {opacity}")
    if heat.shape != frame.shape[:2]:
        raise ValueError(f"heat {heat.shape} does not match frame {frame.shape[:2]}")
    colours = lut[np.clip(np.rint(heat * 255.0), 0, 255).astype(np.uint8)]
    mixed = (1.0 - opacity) * frame.astype(np.float32) + opacity * colours.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def display_scale(heatmaps: np.ndarray, normalize: Literal["global", "frame"]) -> np.ndarray:
    """Reference level per output frame (N,): heatmap / level is shown in [0, 1]."""
    if normalize == "global":
        level = float(np.percentile(heatmaps, 99.5)) if heatmaps.size else 0.0
        levels = np.full(len(heatmaps), level)
    elif normalize == "frame":
        levels = heatmaps.reshape(len(heatmaps), -1).max(axis=1).astype(np.float64)
    else:
        raise UsageError(f"normalize must be 'global' or 'frame', got {normalize!r}")
    # A silent video (or frame) has zero energy everywhere: show it as zero, not as noise.
    return np.where(levels > 0, levels, np.inf)


def even_size(frame_size: tuple[int, int], max_short_side: int | None) -> tuple[int, int]:
    """Output (H, W): downscaled so that the short side is at most `max_short_side`, even
    (H.264 with 4:2:0 chroma needs even sides)."""
    h, w = frame_size
    if max_short_side and min(h, w) > max_short_side:
        scale = max_short_side / min(h, w)
        h, w = round(h * scale), round(w * scale)
    return max(2, h - h % 2), max(2, w - w % 2)


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float,
              audio: np.ndarray | None = None, sample_rate: int | None = None,
              crf: int = 20) -> Path:
    """Write RGB frames as H.264 (yuv420p) and optional mono audio as AAC into an MP4.

    Args:
        path: the .mp4 to write.
        frames: (H, W, 3) uint8 RGB frames of one even size.
        fps: frame rate (any positive number; stored as a fraction).
        audio: (T,) float32 in [-1, 1], or None for a silent file.
        sample_rate: rate of `audio`.
        crf: H.264 quality (lower is better).
    """

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        sound = None
        if audio is not None:
            if sample_rate is None:
                raise ValueError("write_mp4: audio needs its sample_rate")
            sound = container.add_stream("aac", rate=int(sample_rate))
            sound.layout = "mono"
        count = 0
        for frame in frames:
            if count == 0:
                video.height, video.width = frame.shape[:2]
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            image.pts = count
            container.mux(video.encode(image))
            count += 1
        if count == 0:
            raise ValueError(f"{path}: no frames to write")
        container.mux(video.encode(None))
        if sound is not None:
            assert sample_rate is not None  # checked when the audio stream was added
            samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1)
            for start in range(0, samples.shape[1], AUDIO_FRAME):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, start:start + AUDIO_FRAME]),
                    format="fltp", layout="mono")
                chunk.sample_rate = int(sample_rate)
                chunk.pts = start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def contact_sheet(images: list[np.ndarray], labels: list[str], columns: int = 4,
                  width: int = 320) -> np.ndarray:
    """A grid of images (each scaled to `width`) with a label under each: (H, W, 3) uint8."""

    if not images:
        raise ValueError("contact sheet: no images")
    h, w = images[0].shape[:2]
    cell_h, label_h = round(h * width / w), 22
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (cell_h + label_h), min(columns, len(images)) * width, 3), 255,
                    np.uint8)
    for i, (image, label) in enumerate(zip(images, labels)):
        top, left = (i // columns) * (cell_h + label_h), (i % columns) * width
        sheet[top:top + cell_h, left:left + width] = cv2.resize(
            image, (width, cell_h), interpolation=cv2.INTER_AREA)
        cv2.putText(sheet, label, (left + 4, top + cell_h + 16), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB (H, W, 3) uint8 image as PNG."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write PNG")
    return path


# Every top-level name the renderings (`render_localization`, `render_players`) and the
# results' `save` (heatmaps.npz, players.npz and their .json) give a file or folder, so that
# a later run into the same folder recognises them as outputs (`avsep.outputs`).
LOCALIZATION_OUTPUTS = ("overlay.mp4", "keyframes", "contact_sheet.png", "heatmaps.npz",
                        "heatmaps.json", "players.mp4", "players_keyframes",
                        "players_contact_sheet.png", "players.npz", "players.json")


@dataclass
class RenderedFiles:
    """What `render_localization` wrote."""

    video: Path
    keyframes: list[Path] = field(default_factory=list)
    contact_sheet: Path | None = None

    def moved(self, where: Callable[[Path], Path]) -> RenderedFiles:
        """The same files at `where(path)` (e.g. once a staging folder is committed)."""
        return RenderedFiles(where(self.video), [where(p) for p in self.keyframes],
                             None if self.contact_sheet is None else where(self.contact_sheet))


def overlay_frames(localization: Localization, source: VideoSource, colormap: str = "inferno",
                   opacity: float = 0.5, normalize: Literal["global", "frame"] = "global",
                   size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The video's frames at the localization's times with the heatmaps drawn over them.

    Yields:
        (H, W, 3) uint8 RGB at `size` (default: the video's frame size).
    """

    lut = colormap_lut(colormap)
    levels = display_scale(localization.heatmaps, normalize)
    size = size or source.frame_size
    for i, frame in enumerate(source.frames_at(localization.times_s)):
        if frame.shape[:2] != size:
            frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        heat = localization.frame_heatmap(i, size) / levels[i]
        yield overlay(frame, np.clip(heat, 0.0, 1.0), lut, opacity)


def render_localization(
    localization: Localization,
    video: str | Path | VideoSource,
    out_dir: str | Path,
    *,
    colormap: str = "inferno",
    opacity: float = 0.5,
    normalize: Literal["global", "frame"] = "global",
    keyframe_every_s: float = 2.0,
    max_short_side: int | None = 720,
    progress: bool = True,
    captions: Callable[[np.ndarray], list[str]] | None = None,
) -> RenderedFiles:
    """Write OUT/overlay.mp4 (heatmaps over the frames at the localization's fps, with the
    video's original audio: native rate, mono), OUT/keyframes/*.png (one every
    `keyframe_every_s` seconds) and OUT/contact_sheet.png.

    `captions` maps the key frames' times (n,) to n texts shown after each time on the
    contact sheet (e.g. which players sound then, where that is known)."""

    colormap_lut(colormap)  # fail before decoding anything
    source = open_video(video, localization.sample_rate)
    size = even_size(source.frame_size, max_short_side)
    drawn = overlay_frames(localization, source, colormap, opacity, normalize, size)
    return _write_rendering(drawn, localization.times_s, localization.fps, source,
                            Path(out_dir), "", keyframe_every_s, progress, captions)


# Distinct colours per player (RGB), in region order; the ninth player reuses the first.
PLAYER_COLOURS = np.array([(255, 64, 64), (64, 160, 255), (80, 220, 80), (255, 190, 0),
                           (200, 90, 255), (0, 230, 230), (255, 120, 200), (170, 255, 60)],
                          dtype=np.float32)


def player_colour(index: int) -> tuple[int, int, int]:
    """The RGB colour of region `index` (from 0)."""
    r, g, b = PLAYER_COLOURS[index % len(PLAYER_COLOURS)]
    return int(r), int(g), int(b)


def overlay_players(frame: np.ndarray, scores: np.ndarray, opacity: float,
                    regions: list[Region] | None = None,
                    names: list[str] | None = None) -> np.ndarray:
    """Draw per-player heat over a frame, one colour per player.

    Each pixel takes the colour of the player with the highest score there, blended in
    with weight `opacity * score` (scores <= 0, sound that is no player's, leave the frame
    as it is); the regions are outlined in their players' colours and named.

    Args:
        frame: (H, W, 3) uint8 RGB.
        scores: (P, H, W) display values in [0, 1] (after the display scale).
        regions: the P regions in frame pixels of `frame`; names: P labels for them.

    Returns:
        (H, W, 3) uint8.
    """
    if not 0.0 <= opacity <= 1.0:
        raise UsageError(f"opacity must be in [0, 1], got {opacity}")
    if scores.ndim != 3 or scores.shape[1:] != frame.shape[:2]:
        raise ValueError(f"scores {scores.shape} do not match frame {frame.shape[:2]}")
    best = scores.argmax(axis=0)
    weight = opacity * np.clip(np.take_along_axis(scores, best[None], axis=0)[0], 0.0, 1.0)
    colours = PLAYER_COLOURS[best % len(PLAYER_COLOURS)]
    mixed = frame.astype(np.float32) * (1.0 - weight[..., None]) + colours * weight[..., None]
    image = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    for k, region in enumerate(regions or []):
        colour = player_colour(k)
        x1, y1 = region.x1 - 1, region.y1 - 1
        cv2.rectangle(image, (region.x0, region.y0), (x1, y1), colour, 1, cv2.LINE_AA)
        if names:
            cv2.putText(image, names[k], (region.x0 + 4, region.y0 + 14),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return image


def player_frames(result: PlayerLocalization, source: VideoSource, opacity: float = 0.6,
                  size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The video's frames at the result's times with the per-player heat drawn over them.

    Display scale: the 99.5th percentile of the positive scores over the whole video.

    Yields:
        (H, W, 3) uint8 RGB at `size` (default: the video's frame size).
    """
    heat = result.heat
    size = size or source.frame_size
    level = display_scale(np.maximum(result.scores, 0.0), "global")[0] if len(result) else 1.0
    sy, sx = size[0] / heat.frame_size[0], size[1] / heat.frame_size[1]
    regions = [Region(round(r.x0 * sx), round(r.y0 * sy), round(r.x1 * sx), round(r.y1 * sy),
                      r.label) for r in result.regions]
    for i, frame in enumerate(source.frames_at(heat.times_s)):
        if frame.shape[:2] != size:
            frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        maps = np.stack([upsample_heatmap(m, heat.model_frame_size, size)
                         for m in result.scores[i]]) / level
        yield overlay_players(frame, maps, opacity, regions, result.names())


def render_players(
    result: PlayerLocalization,
    video: str | Path | VideoSource,
    out_dir: str | Path,
    *,
    opacity: float = 0.6,
    keyframe_every_s: float = 2.0,
    max_short_side: int | None = 720,
    progress: bool = True,
    captions: Callable[[np.ndarray], list[str]] | None = None,
) -> RenderedFiles:
    """Write OUT/players.mp4 (per-player heat, one colour per player, with the video's
    audio), OUT/players_keyframes/*.png and OUT/players_contact_sheet.png; `captions` as
    for `render_localization`."""

    source = open_video(video, result.heat.sample_rate)
    size = even_size(source.frame_size, max_short_side)
    drawn = player_frames(result, source, opacity, size)
    return _write_rendering(drawn, result.heat.times_s, result.heat.fps, source,
                            Path(out_dir), "players", keyframe_every_s, progress, captions)


def _write_rendering(drawn: Iterator[np.ndarray], times_s: np.ndarray, fps: float,
                     source: VideoSource, out_dir: Path, prefix: str, keyframe_every_s: float,
                     progress: bool, captions: Callable[[np.ndarray], list[str]] | None
                     ) -> RenderedFiles:
    """Encode drawn frames as OUT/<prefix or overlay>.mp4 with the video's audio, keep one
    every `keyframe_every_s` as PNG in OUT/<prefix_>keyframes and lay those out on
    OUT/<prefix_>contact_sheet.png."""

    if keyframe_every_s <= 0:
        raise UsageError(f"keyframe interval must be positive, got {keyframe_every_s}")
    out_dir.mkdir(parents=True, exist_ok=True)
    step = max(1, round(keyframe_every_s * fps))
    wanted = set(range(0, len(times_s), step))
    keyframes: list[tuple[int, np.ndarray]] = []

    def frames() -> Iterator[np.ndarray]:
        for i, image in enumerate(tqdm(drawn, total=len(times_s), desc="render",
                                       unit="frame", disable=not progress)):
            if i in wanted:
                keyframes.append((i, image))
            yield image

    stem = f"{prefix}_" if prefix else ""
    mp4 = write_mp4(out_dir / f"{prefix or 'overlay'}.mp4", frames(), fps,
                    source.native_audio, source.native_rate)
    files = RenderedFiles(video=mp4)
    labels = []
    times = np.array([times_s[i] for i, _ in keyframes])
    extra = captions(times) if captions is not None and len(times) else [""] * len(times)
    if len(extra) != len(times):  # zip would drop key frames from the contact sheet
        raise ValueError(f"captions gave {len(extra)} texts for {len(times)} key frames")
    for (i, image), t, note in zip(keyframes, times, extra):
        files.keyframes.append(write_png(
            out_dir / f"{stem}keyframes" / f"frame_{i:05d}_{t:07.2f}s.png", image))
        labels.append(f"{t:.2f} s  {note}".rstrip())
    files.contact_sheet = write_png(out_dir / f"{stem}contact_sheet.png",
                                    contact_sheet([im for _, im in keyframes], labels))
    return files
