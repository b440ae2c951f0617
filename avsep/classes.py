"""Instrument class lists (Solos / URMP, MUSIC-11, MUSIC-21) and the mappings between names.

A shard's `class_index` is the position of its class in its dataset's list
(`DATASET_CLASSES`): SOLOS_CLASSES for Solos and URMP, MUSIC21_CLASSES for MUSIC (MUSIC-11
is a subset of MUSIC-21, so one index space serves both).
"""

from __future__ import annotations

from avsep.faults import UsageError

# Solos class names, in the order used for class indices (alphabetical, as in solos_ids.json).
SOLOS_CLASSES: tuple[str, ...] = (
    "Bassoon", "Cello", "Clarinet", "DoubleBass", "Flute", "Horn", "Oboe",
    "Saxophone", "Trombone", "Trumpet", "Tuba", "Viola", "Violin",
)

# URMP instrument codes -> Solos class names.
URMP_CODE_TO_CLASS: dict[str, str] = {
    "bn": "Bassoon", "vc": "Cello", "cl": "Clarinet", "db": "DoubleBass", "fl": "Flute",
    "hn": "Horn", "ob": "Oboe", "sax": "Saxophone", "tbn": "Trombone", "tpt": "Trumpet",
    "tba": "Tuba", "va": "Viola", "vn": "Violin",
}
CLASS_TO_URMP_CODE: dict[str, str] = {v: k for k, v in URMP_CODE_TO_CLASS.items()}

# MUSIC-21 (Zhao et al., ICCV 2019), spelled as the keys of MUSIC21_solo_videos.json,
# alphabetical: the order of class indices in MUSIC shards.
MUSIC21_CLASSES: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet",
    "congas", "drum", "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa",
    "saxophone", "trumpet", "tuba", "ukulele", "violin", "xylophone",
)

# MUSIC (Sound of Pixels, ECCV 2018): the 11 classes of MUSIC_solo_videos.json.
MUSIC11_CLASSES: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone",
    "trumpet", "tuba", "violin", "xylophone",
)
assert set(MUSIC11_CLASSES) <= set(MUSIC21_CLASSES)

DATASET_CLASSES: dict[str, tuple[str, ...]] = {"solos": SOLOS_CLASSES, "music": MUSIC21_CLASSES}


def class_index(name_or_code: str, classes: tuple[str, ...] = SOLOS_CLASSES) -> int:
    """Index in `classes` of a class name (or, for Solos classes, a URMP code).

    >>> class_index("Violin"), class_index("vn"), class_index("violin", MUSIC21_CLASSES)
    (12, 12, 19)
    """
    if classes is SOLOS_CLASSES:
        name_or_code = URMP_CODE_TO_CLASS.get(name_or_code, name_or_code)
    try:
        return classes.index(name_or_code)
    except ValueError:
        known = classes + (tuple(URMP_CODE_TO_CLASS) if classes is SOLOS_CLASSES else ())
        raise UsageError(f"unknown instrument {name_or_code!r} (known: {', '.join(known)})"
                         ) from None
