"""The embedded default data: the generated Solos/URMP stand-in, prepared into shards.

`ensure_standin(root, preset)` generates the raw stand-in (`root/raw/solos`, `root/raw/urmp`,
exactly the real datasets' layouts) unless a previous call finished it, then runs the same
preparation as real data (`root/shards/solos`, `root/shards/urmp`), which skips finished
work. Used by `avsep train --dataset synthetic` and `avsep demo`.

`root/raw/urmp_studio` (shards `root/shards/urmp_studio`) holds the same URMP pieces, with
the same audio, drawn in the "studio" visual style that no training data has: evaluation
under a change of scene, as real evaluation is (Solos on YouTube -> URMP in a studio).

With `held_out` (a drawing family, `data_prep.synth.families.FAMILIES`) the Solos and URMP
videos are drawn in the other families, and `root/raw/urmp_unseen` (shards
`root/shards/urmp_unseen`) holds the same URMP pieces drawn in the held-out family: a look no
training video has, as another hand's drawings or a user's own concert are. Without it every
video is drawn in the classic look (the stand-in of the earlier figures and the study).

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
from data_prep.synth.families import FAMILIES, split_families
from data_prep.synth.presets import solos_settings, urmp_settings

UNSEEN_STYLE = "studio"
HELD_OUT_NAME = "urmp_unseen"  # the URMP pieces drawn in the held-out family

COMPLETE_MARKER = "standin_complete.json"
VALIDATION_NAME = "urmp_val"
# The validation pieces' seed is the stand-in's plus this, so that their instruments and
# pictures differ from the held-out pieces' (whose seed is the stand-in's).
VALIDATION_SEED_OFFSET = 1
STANDIN_VAL_FRACTION = 0.2


class StandinMismatchError(InputError, RuntimeError):
    """The stand-in folder was generated with settings other than the requested ones."""


class UnknownFamilyError(InputError, ValueError):
    """A held-out drawing family that is not one of `FAMILIES`."""


def check_held_out(held_out: str | None) -> None:
    """Raise UnknownFamilyError unless `held_out` is None or a drawing family."""
    if held_out is not None and held_out not in FAMILIES:
        raise UnknownFamilyError(f"unknown drawing family {held_out!r} to hold out; the "
                                 f"families are {', '.join(FAMILIES)} (or 'none')")


@dataclass(frozen=True)
class StandinPaths:
    raw_solos: Path
    raw_urmp: Path
    solos_shards: Path
    urmp_shards: Path
    raw_urmp_studio: Path
    urmp_studio_shards: Path
    raw_urmp_unseen: Path | None = None  # with a held-out family
    urmp_unseen_shards: Path | None = None


def standin_paths(root: str | Path, held_out: str | None = None) -> StandinPaths:
    root = Path(root)
    unseen = ((root / "raw" / HELD_OUT_NAME, root / "shards" / HELD_OUT_NAME) if held_out
              else (None, None))
    return StandinPaths(root / "raw" / "solos", root / "raw" / "urmp",
                        root / "shards" / "solos", root / "shards" / "urmp",
                        root / "raw" / f"urmp_{UNSEEN_STYLE}",
                        root / "shards" / f"urmp_{UNSEEN_STYLE}", *unseen)


def ensure_standin(root: str | Path, preset: str = "bench", seed: int = 0,
                   jobs: int = 2, held_out: str | None = None) -> StandinPaths:
    """Generate (once) and prepare (resumably) the stand-in of `preset` under `root`; with
    `held_out`, drawn in the other families plus the held-out family's URMP pieces.

    Raises:
        StandinMismatchError: `root` holds a stand-in made with other settings.
        RuntimeError: when preparation produced no usable shards.
    """

    check_held_out(held_out)
    paths = standin_paths(root, held_out)
    marker = Path(root) / "raw" / COMPLETE_MARKER
    training = split_families(FAMILIES, held_out)[0] if held_out else None
    urmp = urmp_settings(preset, families=training)
    unseen = replace(urmp, style=UNSEEN_STYLE)
    drawn_held_out = urmp_settings(preset, families=(held_out,)) if held_out else None
    made: list[object] = [solos_settings(preset, families=training), urmp, unseen]
    if drawn_held_out is not None:
        made.append(drawn_held_out)
    # The settings themselves, not only the preset's name: a preset changed by a newer
    # avsep must not be mixed with files made under the old one.
    wanted = {"preset": preset, "seed": seed, "settings": repr(tuple(made))}
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != wanted:
            raise StandinMismatchError(
                f"{Path(root)} holds a stand-in made with other settings ({found}); this "
                f"avsep makes {wanted}. Remove {Path(root)} (it is generated data) or choose "
                "another root.")
    else:
        print(f"generating the '{preset}' stand-in under {Path(root) / 'raw'}")
        generate(Path(root) / "raw", preset, RunOptions(seed=seed, jobs=jobs), training)
        generate_urmp(paths.raw_urmp_studio, unseen, RunOptions(seed=seed, jobs=jobs))
        if paths.raw_urmp_unseen is not None and drawn_held_out is not None:
            generate_urmp(paths.raw_urmp_unseen, drawn_held_out,
                          RunOptions(seed=seed, jobs=jobs))
        marker.write_text(json.dumps(wanted))
    print(f"preparing shards under {Path(root) / 'shards'}")
    # A larger validation share than real data's default, so that even the `tiny` stand-in
    # (13 videos) has validation videos of several classes.
    settings = PrepareSettings(val_fraction=STANDIN_VAL_FRACTION)
    if prepare_solos(paths.raw_solos, paths.solos_shards, settings, jobs=jobs) != 0:
        raise RuntimeError(f"preparing {paths.raw_solos} produced no usable shards "
                           f"(see {paths.solos_shards / 'report.jsonl'})")
    urmp_sets = [(paths.raw_urmp, paths.urmp_shards),
                 (paths.raw_urmp_studio, paths.urmp_studio_shards)]
    if paths.raw_urmp_unseen is not None and paths.urmp_unseen_shards is not None:
        urmp_sets.append((paths.raw_urmp_unseen, paths.urmp_unseen_shards))
    for raw, shards in urmp_sets:
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
