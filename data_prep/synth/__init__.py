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
Pictures come in drawing families (families: names and leave-one-family-out splits;
looks, look_lineart, look_shaded, look_pictogram: how each family draws; scenes, pens and
drawing: their backgrounds and tools):

    from data_prep.synth import rotation
    training, held_out = rotation()[1]  # hold out "lineart"
    generate_solos("raw/solos", solos_settings("tiny", families=training))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .families import FAMILIES, rotation, split_families
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
    from .workers import Summary

# The package's names are imported on first use (PEP 562), so that importing one light
# submodule (`data_prep.synth.instruments`, which `avsep synth music --help` reads) does not
# load the renderers, the video writer and their native libraries. Every `avsep` command
# builds the synth parser, and training needs none of them.
_LAZY = {
    "generate_music": "music_layout", "generate_solos": "solos", "generate_urmp": "urmp",
    "DEFAULT_SOUNDFONT": "render", "SoundfontError": "render",
    "Summary": "workers", "WorkerPool": "workers",
    "FAMILIES": "families", "rotation": "families", "split_families": "families",
    **{name: "presets" for name in (
        "DEFAULT_PRESET", "PRESETS", "MusicSettings", "RunOptions", "SolosSettings",
        "UrmpSettings", "music_settings", "solos_settings", "urmp_settings")},
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PRESET", "DEFAULT_SOUNDFONT", "FAMILIES", "PRESETS", "MusicSettings", "RunOptions",
    "SolosSettings", "SoundfontError", "Summary", "UrmpSettings", "generate", "generate_music",
    "generate_solos", "generate_urmp", "music_settings", "rotation", "solos_settings",
    "split_families", "urmp_settings",
]


def generate(
    out_root: str | Path,
    preset: str | None = None,
    options: RunOptions | None = None,
    families: Sequence[str] | None = None,
) -> dict[str, Summary]:
    """Both layouts of `preset`: `out_root/solos` and `out_root/urmp`, sharing one worker pool.

    Returns {"solos": Summary, "urmp": Summary}. `preset` defaults to `DEFAULT_PRESET`;
    `families` (drawing families, `families.FAMILIES`) to the preset's (the classic look).
    """
    from .presets import DEFAULT_PRESET, RunOptions, solos_settings, urmp_settings
    from .solos import generate_solos
    from .urmp import generate_urmp
    from .workers import WorkerPool

    preset = preset or DEFAULT_PRESET
    options = options or RunOptions()
    out_root = Path(out_root)
    chosen = tuple(families) if families is not None else None
    solos = solos_settings(preset, families=chosen)
    urmp = urmp_settings(preset, families=chosen)
    with WorkerPool(options.jobs, options.soundfont, options.progress) as workers:
        return {
            "solos": generate_solos(out_root / "solos", solos, options, workers),
            "urmp": generate_urmp(out_root / "urmp", urmp, options, workers),
        }
