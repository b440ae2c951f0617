"""The embedded default data: the generated Solos/URMP stand-in, prepared into shards.

`ensure_standin(root, preset)` generates the raw stand-in (`root/raw/solos`, `root/raw/urmp`,
exactly the real datasets' layouts) unless a previous call finished it, then runs the same
preparation as real data (`root/shards/solos`, `root/shards/urmp`), which skips finished
work. Used by `avsep train --dataset synthetic` and `avsep demo`.

`root/raw/urmp_studio` (shards `root/shards/urmp_studio`) holds the same URMP pieces, with
the same audio, drawn in the "studio" visual style that no training data has: evaluation
under a change of scene, as real evaluation is (Solos on YouTube -> URMP in a studio).

`ensure_validation_urmp(root)` adds `root/raw/urmp_val` (shards `root/shards/urmp_val`):
URMP-layout pieces for choosing settings, never for reporting. Their music comes from the
training pool and their pictures and instruments from another seed, so they share no music
with the held-out pieces; like them, they carry each player's drawn box, so localization
can be scored on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from avsep.faults import InputError
from data_prep.prepare import prepare_solos, prepare_urmp
from data_prep.prepare.settings import PrepareSettings
from data_prep.synth import RunOptions, generate, generate_urmp
from data_prep.synth.presets import solos_settings, urmp_settings

UNSEEN_STYLE = "studio"

COMPLETE_MARKER = "standin_complete.json"
VALIDATION_NAME = "urmp_val"
# The validation pieces' seed is the stand-in's plus this, so that their instruments and
# pictures differ from the held-out pieces' (whose seed is the stand-in's).
VALIDATION_SEED_OFFSET = 1
STANDIN_VAL_FRACTION = 0.2


class StandinMismatchError(InputError, RuntimeError):
    """The stand-in folder was generated with settings other than the requested ones."""


@dataclass(frozen=True)
class StandinPaths:
    raw_solos: Path
    raw_urmp: Path
    solos_shards: Path
    urmp_shards: Path
    raw_urmp_studio: Path
    urmp_studio_shards: Path


def standin_paths(root: str | Path) -> StandinPaths:
    root = Path(root)
    return StandinPaths(root / "raw" / "solos", root / "raw" / "urmp",
                        root / "shards" / "solos", root / "shards" / "urmp",
                        root / "raw" / f"urmp_{UNSEEN_STYLE}",
                        root / "shards" / f"urmp_{UNSEEN_STYLE}")


def ensure_standin(root: str | Path, preset: str = "bench", seed: int = 0,
                   jobs: int = 2) -> StandinPaths:
    """Generate (once) and prepare (resumably) the stand-in of `preset` under `root`.

    Raises:
        StandinMismatchError: `root` holds a stand-in made with other settings.
        RuntimeError: when preparation produced no usable shards.
    """

    paths = standin_paths(root)
    marker = Path(root) / "raw" / COMPLETE_MARKER
    # The settings themselves, not only the preset's name: a preset changed by a newer
    # avsep must not be mixed with files made under the old one.
    unseen = replace(urmp_settings(preset), style=UNSEEN_STYLE)
    wanted = {"preset": preset, "seed": seed,
              "settings": repr((solos_settings(preset), urmp_settings(preset), unseen))}
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != wanted:
            raise StandinMismatchError(
                f"{Path(root)} holds a stand-in made with other settings ({found}); this "
                f"avsep makes {wanted}. Remove {Path(root)} (it is generated data) or choose "
                "another root.")
    else:
        print(f"generating the '{preset}' stand-in under {Path(root) / 'raw'}")
        generate(Path(root) / "raw", preset, RunOptions(seed=seed, jobs=jobs))
        generate_urmp(paths.raw_urmp_studio, unseen, RunOptions(seed=seed, jobs=jobs))
        marker.write_text(json.dumps(wanted))
    print(f"preparing shards under {Path(root) / 'shards'}")
    # A larger validation share than real data's default, so that even the `tiny` stand-in
    # (13 videos) has validation videos of several classes.
    settings = PrepareSettings(val_fraction=STANDIN_VAL_FRACTION)
    if prepare_solos(paths.raw_solos, paths.solos_shards, settings, jobs=jobs) != 0:
        raise RuntimeError(f"preparing {paths.raw_solos} produced no usable shards "
                           f"(see {paths.solos_shards / 'report.jsonl'})")
    for raw, shards in ((paths.raw_urmp, paths.urmp_shards),
                        (paths.raw_urmp_studio, paths.urmp_studio_shards)):
        if prepare_urmp(raw, shards, jobs=jobs) != 0:
            raise RuntimeError(f"preparing {raw} produced no usable shards "
                               f"(see {shards / 'report.jsonl'})")
    return paths


def ensure_validation_urmp(root: str | Path, preset: str = "bench", seed: int = 0,
                           jobs: int = 2) -> tuple[Path, Path]:
    """Generate (once) and prepare the validation URMP pieces under `root`.

    Returns:
        (raw folder, shards folder): `root/raw/urmp_val`, `root/shards/urmp_val`.

    Raises:
        StandinMismatchError: `root/raw/urmp_val` was made with other settings.
        RuntimeError: when preparation produced no usable shards.
    """

    raw = Path(root) / "raw" / VALIDATION_NAME
    shards = Path(root) / "shards" / VALIDATION_NAME
    marker = raw / COMPLETE_MARKER
    settings = urmp_settings(preset)
    validation_seed = seed + VALIDATION_SEED_OFFSET
    wanted = {"preset": preset, "seed": validation_seed, "music": "solos",
              "settings": repr(settings)}
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != wanted:
            raise StandinMismatchError(
                f"{raw} holds validation pieces made with other settings ({found}); this "
                f"avsep makes {wanted}. Remove {raw} and {shards} (generated data).")
    else:
        print(f"generating the '{preset}' validation pieces under {raw}")
        generate_urmp(raw, settings, RunOptions(seed=validation_seed, jobs=jobs),
                      music="solos")
        marker.write_text(json.dumps(wanted))
    if prepare_urmp(raw, shards, jobs=jobs) != 0:
        raise RuntimeError(f"preparing {raw} produced no usable shards "
                           f"(see {shards / 'report.jsonl'})")
    return raw, shards
