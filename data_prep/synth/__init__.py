"""Stand-in datasets: offline data in the exact raw layouts of Solos, URMP and MUSIC.

Solos (YouTube) and URMP cannot always be downloaded, so this package writes videos of
procedural performers playing real music (music21 corpus scores rendered with FluidSynth
through a General MIDI soundfont) in the same file layouts; real data then flows through
exactly the same preparation code. The music of the two layouts comes from disjoint pools.

    from data_prep.synth import generate_solos, generate_urmp, solos_settings, RunOptions
    generate_solos("raw/solos", solos_settings("tiny"), RunOptions(seed=0, jobs=2))

Modules: instruments (classes, GM programs, ranges), music (corpus -> notes, pools),
render (FluidSynth), levels (loudness), sprites and performers (pictures), video_io (mp4),
solos, urmp and music_layout (the layouts), presets (sizes), workers (parallel runs).
"""

from __future__ import annotations

from pathlib import Path

from .music_layout import generate_music
from .presets import (
    DEFAULT_PRESET,
    PRESETS,
    MusicSettings,
    RunOptions,
    SolosSettings,
    UrmpSettings,
    music_settings,
    solos_settings,
    urmp_settings,
)
from .render import DEFAULT_SOUNDFONT, SoundfontError
from .solos import generate_solos
from .urmp import generate_urmp
from .workers import Summary, WorkerPool

__all__ = [
    "DEFAULT_PRESET", "DEFAULT_SOUNDFONT", "PRESETS", "MusicSettings", "RunOptions",
    "SolosSettings", "SoundfontError", "Summary", "UrmpSettings", "generate", "generate_music",
    "generate_solos", "generate_urmp", "music_settings", "solos_settings", "urmp_settings",
]


def generate(
    out_root: str | Path,
    preset: str = DEFAULT_PRESET,
    options: RunOptions | None = None,
) -> dict[str, Summary]:
    """Both layouts of `preset`: `out_root/solos` and `out_root/urmp`, sharing one worker pool.

    Returns {"solos": Summary, "urmp": Summary}.
    """
    options = options or RunOptions()
    out_root = Path(out_root)
    solos, urmp = solos_settings(preset), urmp_settings(preset)
    with WorkerPool(options.jobs, options.soundfont, options.progress) as workers:
        return {
            "solos": generate_solos(out_root / "solos", solos, options, workers),
            "urmp": generate_urmp(out_root / "urmp", urmp, options, workers),
        }
