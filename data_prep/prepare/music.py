"""MUSIC / MUSIC-21 videos -> shards in the Solos format, split train / val / test by video.

Raw layout (`data_prep.music_ids`): RAW/solo/<class>/<id>.mp4 and RAW/duet/<a b>/<id>.mp4.
MUSIC publishes no playing spans, so each video is used whole: cut into equal chunks of at
most `max_chunk_s`, each chunk one sample of 11025 Hz audio and 8 fps frames, exactly as a
Solos sample (the same decoding code, `solos.process_solos_video`). The header's
`class_index` counts in `avsep.classes.MUSIC21_CLASSES`.

Split, fixed and documented: a solo video's position in [0, 1) is the SHA-1 of
"split:<youtube id>" (`split.split3_of`); below `test_fraction` (default 0.1) it is in test,
in the next `val_fraction` (default 0.1) in val, otherwise in train. It depends on the id
alone, so missing videos never move others, and everyone with the same ids gets the same
split. Solos go to OUT/train, OUT/val and OUT/test; duets go to OUT/duet (headers with the
two classes), kept out of training and evaluation: they are real mixtures without separate
parts, for localization and listening.

`test_ids` (`--test-ids FILE`: a published pair list such as iQuery's `testsepmusic.csv`,
or one id per line) puts those solo videos in test whatever their hash says, so a published
test list is never trained or validated on; the other videos keep their hashed split, and
val stays a split of its own. A video moved by it is a changed unit: a rerun prepares it
again and removes its old train / val shards.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from avsep.classes import MUSIC21_CLASSES, class_index
from data_prep.music_ids import DUET, SOLO, parse_key
from data_prep.prepare.report import NOTE, Issue
from data_prep.prepare.runner import (
    DEFAULT_UNIT_TIMEOUT_S,
    RunContext,
    WorkUnit,
    decoder_threads,
    run_units,
)
from data_prep.prepare.settings import PrepareSettings
from data_prep.prepare.solos import process_solos_video
from data_prep.prepare.split import split3_of

SPLITS = ("train", "val", "test", DUET)
DEFAULT_TEST_FRACTION = 0.1


def _labels(classes: tuple[str, ...]) -> dict:
    if len(classes) == 1:
        return {"class": classes[0], "class_index": class_index(classes[0], MUSIC21_CLASSES),
                "dataset": "music"}
    return {"class": " ".join(classes), "classes": list(classes),
            "class_indices": [class_index(c, MUSIC21_CLASSES) for c in classes],
            "dataset": "music"}


def discover_music(
    src: Path, settings: PrepareSettings, test_fraction: float = DEFAULT_TEST_FRACTION,
    test_ids: Mapping[str, str | None] | None = None,
) -> tuple[list[WorkUnit], list[Issue]]:
    """The work units of a raw MUSIC folder (solos and duets), and notes about the folder.

    Args:
        test_ids: solo video ids forced into test -> the class a list gives them (or None),
            e.g. `avsep.evaluation.pair_csv.read_video_ids`.
    """
    if not src.is_dir():
        raise ValueError(f"raw folder not found: {src}")
    if not 0.0 <= test_fraction < 1.0 or settings.val_fraction + test_fraction >= 1.0:
        raise ValueError(f"need 0 <= test fraction and val + test fractions < 1, got "
                         f"{test_fraction} and {settings.val_fraction}")
    notes: list[Issue] = []
    units: list[WorkUnit] = []
    ignored: list[str] = []
    for kind in (SOLO, DUET):
        root = src / kind
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            classes = parse_key(folder.name)
            expected = 1 if kind == SOLO else 2
            if classes is None or len(classes) != expected:
                notes.append(Issue(f"{kind}/{folder.name}", NOTE, "unknown_folder",
                                   f"ignored: not {'a MUSIC-21 class' if kind == SOLO else 'two MUSIC-21 classes separated by a space'}"))
                continue
            for path in sorted(folder.iterdir()):
                if path.suffix != ".mp4" or not path.is_file():
                    ignored.append(path.relative_to(src).as_posix())
                    continue
                if kind == DUET:
                    split = DUET
                elif test_ids is not None and path.stem in test_ids:
                    split = "test"
                else:
                    split = split3_of(path.stem, settings.val_fraction, test_fraction)
                units.append(WorkUnit(
                    unit=f"{kind}/{folder.name}/{path.stem}",
                    source=path.relative_to(src).as_posix(),
                    label=folder.name,
                    split=split,
                    shard_dir=split,
                    shard_prefix=f"music-{split}",
                    params={"video_id": path.stem, "spans_s": None,
                            "span_source": "whole_video", "labels": _labels(classes)},
                ))
    if ignored:
        notes.append(Issue(".", NOTE, "ignored_files",
                           f"ignored {len(ignored)} non-mp4 entries ({', '.join(ignored[:3])}"
                           f"{', ...' if len(ignored) > 3 else ''})"))
    if not units:
        raise ValueError(f"no videos found in {src} (expected {src}/solo/<class>/<id>.mp4 "
                         f"and {src}/duet/<class> <class>/<id>.mp4)")
    solos = [u for u in units if u.split != DUET]
    if test_ids is not None:
        notes += _test_id_notes(units, test_ids, settings.val_fraction, test_fraction)
    for split, flag in (("val", "--val-fraction"), ("test", "--test-fraction")):
        if solos and not any(u.split == split for u in solos):
            notes.append(Issue(".", NOTE, f"no_{split}",
                               f"no solo video falls in {split} ({len(solos)} solos; the split "
                               f"is by a hash of the video id): use a larger {flag}"))
    return units, notes


def _test_id_notes(units: list[WorkUnit], test_ids: Mapping[str, str | None],
                   val_fraction: float, test_fraction: float) -> list[Issue]:
    """What --test-ids did: videos moved into test, listed ids not found or not solos, and
    ids listed under another class than their folder."""
    found = {u.params["video_id"]: u for u in units}
    solo = [found[i] for i in test_ids if i in found and found[i].split != DUET]
    moved = [u for u in solo if split3_of(u.params["video_id"], val_fraction,
                                          test_fraction) != "test"]
    notes = [Issue(".", NOTE, "test_ids",
                   f"--test-ids: {len(solo)} of its {len(test_ids)} videos are solos in RAW "
                   f"and go to test ({len(moved)} of them would be in train or val by hash)")]
    absent = [i for i in test_ids if i not in found]
    if absent:
        notes.append(Issue(".", NOTE, "test_ids_absent",
                           f"--test-ids: {len(absent)} listed videos are not in RAW/solo "
                           f"(e.g. {', '.join(absent[:3])}): evaluation skips their pairs"))
    for video_id in test_ids:
        unit = found.get(video_id)
        if unit is not None and unit.split == DUET:
            notes.append(Issue(unit.source, NOTE, "test_id_is_duet",
                               "--test-ids lists this duet: duets stay in duet/, never in test"))
        listed = test_ids[video_id]
        if unit is not None and unit.split != DUET and listed and listed != unit.label:
            notes.append(Issue(unit.source, NOTE, "test_id_class",
                               f"--test-ids lists this video as {listed}, its folder says "
                               f"{unit.label}: evaluation with that list will refuse it"))
    return notes


def prepare_music(
    src: Path,
    out: Path,
    settings: PrepareSettings | None = None,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    test_ids: Mapping[str, str | None] | None = None,
    jobs: int = 1,
    part=None,
    strict: bool = False,
    retry_bad: bool = False,
    unit_timeout_s: float = DEFAULT_UNIT_TIMEOUT_S,
) -> int:
    """Prepare a raw MUSIC folder into OUT/{train,val,test,duet} shards; return the exit code.

    `test_ids` forces those solo videos into test (module docstring)."""
    settings = settings or PrepareSettings()
    src, out = Path(src), Path(out)
    units, notes = discover_music(src, settings, test_fraction, test_ids)
    ctx = RunContext(src=src, out=out, settings=settings, shard_dirs=SPLITS,
                     threads=decoder_threads(jobs))
    return run_units(
        process_solos_video, units, ctx, jobs=jobs, part=part, strict=strict,
        retry_bad=retry_bad, global_issues=notes, label_name="class", unit_name="video",
        unit_timeout_s=unit_timeout_s,
    )
