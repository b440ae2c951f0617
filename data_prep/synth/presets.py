"""Sizes of the stand-in datasets: the settings of each layout and the named presets.

(`tiny`, `bench` and `hd` name sizes of every layout: Solos, URMP and MUSIC.)

- `tiny`: for tests; both layouts together take well under 30 s on 2 cores.
- `bench`: enough to train a small demo model on CPU; a few minutes to make on 2 cores.
- `hd`: a few 720p videos (Solos 1280 x 720, as on YouTube) to time preparation at the
  sizes of the real datasets (`benchmarks/prepare.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from avsep.classes import MUSIC21_CLASSES, SOLOS_CLASSES

from .families import DEFAULT_FAMILIES, check_families
from .render import DEFAULT_SOUNDFONT

# Visual styles. "default": cluttered, textured, panning backgrounds and casually dressed
# players (every stand-in for training). "studio": a look the model never trains on, for
# evaluation only (real evaluation changes scene too: Solos on YouTube -> URMP in a studio):
# a dark stage with a spotlight per player and no clutter, a still camera, players in black
# or white concert dress, smaller and lower in the frame, instruments in another palette.
# Who draws the players is another matter, the drawing family (`families.py`): "default" is
# each family's own background; "studio" is the same stage whichever family draws.
STYLES = ("default", "studio")


def check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown visual style {style!r} (known: {', '.join(STYLES)})")

SOLOS_FPS = 25  # Solos timestamps are counted in frames at 25 fps
URMP_FPS = Fraction(30000, 1001)


def _set_families(settings: SolosSettings | UrmpSettings) -> None:
    # a list given by a caller becomes a tuple: settings stay hashable and compare equal
    object.__setattr__(settings, "families", check_families(settings.families))


SOLOS_ASPECT = (4, 3)  # the stand-in's classic frame shape (width, height)
HD_ASPECT = (16, 9)  # the shape of most YouTube (Solos) videos: 1280 x 720 at 720p
# Fields left out of the settings' repr while they hold these values (see `_repr`).
DEFAULT_SAME_INSTRUMENT = ("Violin",)  # the URMP stand-in's one vn_vn duet
_QUIET_DEFAULTS: dict[str, object] = {"families": DEFAULT_FAMILIES, "frame_aspect": SOLOS_ASPECT,
                                      "same_instrument": DEFAULT_SAME_INSTRUMENT}


def _repr(settings: SolosSettings | UrmpSettings) -> str:
    """dataclass repr without `families`, `frame_aspect` and `same_instrument` while they
    are the defaults: stand-in folders record repr(settings) to refuse reuse under other
    settings (avsep.workflows.standin), and the defaults draw exactly what was drawn before
    these fields existed, so folders made then must still match."""
    shown = [f for f in dataclasses.fields(settings)
             if f.repr and not (f.name in _QUIET_DEFAULTS
                                and getattr(settings, f.name) == _QUIET_DEFAULTS[f.name])]
    fields = ", ".join(f"{f.name}={getattr(settings, f.name)!r}" for f in shown)
    return f"{type(settings).__qualname__}({fields})"


@dataclass(frozen=True)
class SolosSettings:
    """Solos-layout stand-in: `clips_per_class` clips of `seconds` for each class.

    Attributes:
        clips_per_class: clips per class; their ids are the first ones of solos_ids.json.
        seconds: length of every clip.
        music_pieces: how many pieces of the Solos music pool the clips draw excerpts from.
        span_seconds: (min, max) length of one playing span.
        gap_seconds: (min, max) length of a non-playing gap (silence, instrument lowered).
        frame_height: frame height; the width is `frame_aspect` times it.
        frame_aspect: (width, height) shape of the frames: (4, 3), the classic stand-in,
            or (16, 9), the shape of most Solos videos (1280 x 720 at a height of 720).
        fps, sample_rate: video frame rate and audio rate of the mp4s.
        classes: the classes to make.
        families: drawing families (`families.FAMILIES`); each clip is drawn in one of
            them, dealt at random and evenly within each class (`families.family_for`).
    """

    # 16 performers per class, not 8 of twice the length: with 8 (6 after the validation
    # split) the demo's vision net learned performers more than instruments and confused
    # instruments on the URMP stand-in's unseen players (measured).
    clips_per_class: int = 16
    seconds: float = 18.0
    music_pieces: int = 40
    span_seconds: tuple[float, float] = (7.0, 16.0)
    gap_seconds: tuple[float, float] = (1.0, 2.5)
    frame_height: int = 240
    fps: int = SOLOS_FPS
    sample_rate: int = 44100
    classes: tuple[str, ...] = SOLOS_CLASSES
    families: tuple[str, ...] = DEFAULT_FAMILIES
    frame_aspect: tuple[int, int] = SOLOS_ASPECT

    def __post_init__(self) -> None:
        _set_families(self)
        # a list (from JSON) becomes a tuple: settings stay hashable and compare equal
        object.__setattr__(self, "frame_aspect", tuple(self.frame_aspect))
        if self.clips_per_class < 1 or self.seconds <= 0 or self.music_pieces < 1:
            raise ValueError(f"clips-per-class, seconds and music pieces must be positive: {self}")
        if self.frame_aspect not in (SOLOS_ASPECT, HD_ASPECT):
            raise ValueError(f"frame aspect must be {SOLOS_ASPECT} or {HD_ASPECT}, "
                             f"got {self.frame_aspect}")
        if self.frame_aspect == SOLOS_ASPECT and self.frame_height % 6:
            raise ValueError(f"frame height must be a multiple of 6, got {self.frame_height}")
        if self.frame_aspect == HD_ASPECT and self.frame_height % 18:
            # an even width (yuv420p) of 16/9 of the height
            raise ValueError(f"a 16:9 frame height must be a multiple of 18, "
                             f"got {self.frame_height}")
        unknown = sorted(set(self.classes) - set(SOLOS_CLASSES))
        if unknown:
            raise ValueError(f"unknown classes {unknown} (known: {', '.join(SOLOS_CLASSES)})")

    @property
    def frame_width(self) -> int:
        width, height = self.frame_aspect
        return self.frame_height * width // height

    __repr__ = _repr


@dataclass(frozen=True)
class UrmpSettings:
    """URMP-layout stand-in: `pieces` ensemble pieces of at most `seconds` each.

    Piece 01 is a duet of two different instruments, then come the duets of one instrument
    (`same_instrument`: by default piece 02, a violin duet `vn_vn`, as URMP has), then a
    piece of `max_players`; the others draw their player count from [min_players,
    max_players], duets most often (probability halves with each extra player). Pieces
    shorter than `seconds` at their tempo are used whole.

    Attributes:
        pieces: number of pieces.
        seconds: longest piece.
        min_players, max_players: ensemble sizes, 2..5.
        frame_height: frame height; every player's cell is 5/6 of it wide.
        fps, sample_rate: video rate and rate of the WAVs and of the mp4 audio.
        style: how the videos look (`performers.STYLES`): "default", or "studio", a look
            no training stand-in has, for evaluation under a change of scene.
        families: drawing families (`families.FAMILIES`); each piece is drawn (players,
            background, light) in one of them, dealt at random and evenly over the pieces.
        same_instrument: the classes (`instruments.INSTRUMENTS`) of the duets of one
            instrument, one piece each from piece 02 on.
    """

    pieces: int = 10
    seconds: float = 45.0
    min_players: int = 2
    max_players: int = 3
    frame_height: int = 240
    fps: Fraction = URMP_FPS
    sample_rate: int = 48000
    style: str = "default"
    families: tuple[str, ...] = DEFAULT_FAMILIES
    same_instrument: tuple[str, ...] = DEFAULT_SAME_INSTRUMENT

    def __post_init__(self) -> None:
        check_style(self.style)
        _set_families(self)
        # a list (from JSON) becomes a tuple, as SolosSettings.frame_aspect does
        object.__setattr__(self, "same_instrument", tuple(self.same_instrument))
        unknown = [name for name in self.same_instrument if name not in SOLOS_CLASSES]
        if unknown:
            raise ValueError(f"unknown instrument(s) {', '.join(unknown)} for same-instrument "
                             f"duets (known: {', '.join(SOLOS_CLASSES)})")
        if self.pieces < 1 or self.seconds <= 0:
            raise ValueError(f"pieces and seconds must be positive: {self}")
        if not 2 <= self.min_players <= self.max_players <= 5:
            raise ValueError(
                f"players must satisfy 2 <= min <= max <= 5, got {self.min_players}..{self.max_players}"
            )
        if self.frame_height % 12:
            raise ValueError(f"frame height must be a multiple of 12, got {self.frame_height}")

    @property
    def cell_width(self) -> int:
        return self.frame_height * 5 // 6

    __repr__ = _repr


@dataclass(frozen=True)
class MusicSettings:
    """MUSIC-layout stand-in: `clips_per_class` solo videos per class and `duets` duets.

    Attributes:
        classes: MUSIC-21 classes to make solos of (duets pair two of them).
        clips_per_class: solo videos per class.
        duets: duet videos (two players side by side, different classes).
        seconds: length of every solo, and the longest duet (shorter scores are used whole).
        music_pieces: pieces of the Solos music pool the solos draw excerpts from (duets
            play ensemble pieces of the URMP pool).
        frame_height: frame height; solos are 4/3 of it wide, duet players' cells 5/6.
        fps, sample_rate: video frame rate and audio rate of the mp4s.
    """

    classes: tuple[str, ...] = MUSIC21_CLASSES
    clips_per_class: int = 8
    duets: int = 6
    seconds: float = 16.0
    music_pieces: int = 40
    frame_height: int = 240
    fps: int = SOLOS_FPS
    sample_rate: int = 44100

    def __post_init__(self) -> None:
        if self.clips_per_class < 1 or self.duets < 0 or self.seconds <= 0:
            raise ValueError(f"clips-per-class and seconds must be positive: {self}")
        if self.frame_height % 12:
            raise ValueError(f"frame height must be a multiple of 12, got {self.frame_height}")
        unknown = sorted(set(self.classes) - set(MUSIC21_CLASSES))
        if unknown or not self.classes:
            raise ValueError(f"unknown classes {unknown} (known: {', '.join(MUSIC21_CLASSES)})")
        if self.duets and len(self.classes) < 2:
            raise ValueError("duets need at least two classes")

    @property
    def solo_settings(self) -> SolosSettings:
        """The clip geometry of the solos, as the Solos stand-in's clip writer takes it."""
        return SolosSettings(clips_per_class=self.clips_per_class, seconds=self.seconds,
                             music_pieces=self.music_pieces, frame_height=self.frame_height,
                             fps=self.fps, sample_rate=self.sample_rate, classes=())

    @property
    def cell_width(self) -> int:
        return self.frame_height * 5 // 6


@dataclass(frozen=True)
class Preset:
    """Settings of every layout under one name."""

    solos: SolosSettings
    urmp: UrmpSettings
    music: MusicSettings = MusicSettings()


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        # spans of >= 6.2 s hold one 65535-sample chunk at 11025 Hz each
        SolosSettings(clips_per_class=1, seconds=8.0, music_pieces=4, span_seconds=(6.2, 7.0)),
        UrmpSettings(pieces=3, seconds=12.0, min_players=2, max_players=3),
        # 7 s solos hold one 65535-sample window with room to move it; small frames keep
        # the MUSIC test fast
        MusicSettings(classes=("acoustic_guitar", "cello", "flute", "trumpet", "violin",
                               "xylophone"), clips_per_class=2, duets=2, seconds=7.0,
                      music_pieces=4, frame_height=120),
    ),
    "bench": Preset(SolosSettings(), UrmpSettings()),
    # Real Solos and URMP videos are 720p to 1080p, where decoding dominates preparation:
    # a little of each layout at 720p for `benchmarks/prepare.py` (not for training).
    "hd": Preset(
        SolosSettings(clips_per_class=1, seconds=20.0, music_pieces=8, frame_height=720,
                      frame_aspect=HD_ASPECT),
        UrmpSettings(pieces=2, seconds=20.0, frame_height=720),
        MusicSettings(clips_per_class=1, duets=1, seconds=16.0, music_pieces=8,
                      frame_height=720),
    ),
}
DEFAULT_PRESET = "bench"


def solos_settings(preset: str = DEFAULT_PRESET, **overrides: object) -> SolosSettings:
    """The Solos settings of `preset` with the non-None `overrides` applied."""
    return dataclasses.replace(_preset(preset).solos, **_given(overrides))


def urmp_settings(preset: str = DEFAULT_PRESET, **overrides: object) -> UrmpSettings:
    """The URMP settings of `preset` with the non-None `overrides` applied."""
    return dataclasses.replace(_preset(preset).urmp, **_given(overrides))


def music_settings(preset: str = DEFAULT_PRESET, **overrides: object) -> MusicSettings:
    """The MUSIC settings of `preset` with the non-None `overrides` applied."""
    return dataclasses.replace(_preset(preset).music, **_given(overrides))


def _preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def _given(overrides: dict[str, object]) -> dict[str, Any]:
    # Any: the values are the callers' overrides of fields of several types (unchecked here,
    # as dataclasses.replace does not check them either).
    return {k: v for k, v in overrides.items() if v is not None}


@dataclass(frozen=True)
class RunOptions:
    """How to make a layout (not what): seed, soundfont, loudness and parallelism.

    Attributes:
        seed: everything random derives from it; the same seed and settings give
            byte-identical WAVs.
        soundfont: General MIDI soundfont to render with.
        jobs: worker processes (1 = in this process).
        level_dbfs: active RMS of every stem (and of Solos clips) before mixing.
        progress: show a progress bar.
    """

    seed: int = 0
    soundfont: str = DEFAULT_SOUNDFONT
    jobs: int = 1
    level_dbfs: float = -20.0
    progress: bool = True
