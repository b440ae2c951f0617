"""The 13 instrument classes shared by Solos and URMP, and the mappings between their names."""

from __future__ import annotations

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


def class_index(name_or_code: str) -> int:
    """Index in SOLOS_CLASSES of a Solos class name or a URMP code.

    >>> class_index("Violin"), class_index("vn")
    (12, 12)
    """
    name = URMP_CODE_TO_CLASS.get(name_or_code, name_or_code)
    try:
        return SOLOS_CLASSES.index(name)
    except ValueError:
        known = ", ".join(SOLOS_CLASSES + tuple(URMP_CODE_TO_CLASS))
        raise ValueError(f"unknown instrument {name_or_code!r} (known: {known})") from None
