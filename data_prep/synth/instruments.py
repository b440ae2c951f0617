"""The 13 instruments of the stand-in datasets: General MIDI program, playable range, family.

Solos class names and URMP codes come from `avsep.classes`, so the generator and the rest of
avsep cannot disagree about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avsep.classes import CLASS_TO_URMP_CODE, SOLOS_CLASSES, URMP_CODE_TO_CLASS

Family = Literal["string", "woodwind", "brass"]


@dataclass(frozen=True)
class Instrument:
    """One instrument class.

    Attributes:
        name: Solos class name, e.g. "Violin".
        code: URMP code, e.g. "vn".
        program: General MIDI program number (0-based) rendered for this class.
        low, high: practical sounding range as MIDI note numbers (inclusive); parts are moved
            by whole octaves into it.
        family: decides how the performer moves (bowing, valves, keys).
    """

    name: str
    code: str
    program: int
    low: int
    high: int
    family: Family

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)


_TABLE: tuple[tuple[str, int, int, int, Family], ...] = (
    # name, GM program, low, high, family. Saxophone is rendered as an alto sax.
    ("Bassoon", 70, 34, 75, "woodwind"),
    ("Cello", 42, 36, 76, "string"),
    ("Clarinet", 71, 50, 91, "woodwind"),
    ("DoubleBass", 43, 28, 67, "string"),
    ("Flute", 73, 60, 96, "woodwind"),
    ("Horn", 60, 34, 77, "brass"),
    ("Oboe", 68, 58, 91, "woodwind"),
    ("Saxophone", 65, 49, 81, "woodwind"),
    ("Trombone", 57, 40, 72, "brass"),
    ("Trumpet", 56, 54, 82, "brass"),
    ("Tuba", 58, 28, 65, "brass"),
    ("Viola", 41, 48, 88, "string"),
    ("Violin", 40, 55, 100, "string"),
)

INSTRUMENTS: dict[str, Instrument] = {
    name: Instrument(name, CLASS_TO_URMP_CODE[name], program, low, high, family)
    for name, program, low, high, family in _TABLE
}
assert tuple(INSTRUMENTS) == SOLOS_CLASSES


def instrument(name_or_code: str) -> Instrument:
    """The instrument for a Solos class name ("Violin") or a URMP code ("vn")."""
    name = URMP_CODE_TO_CLASS.get(name_or_code, name_or_code)
    try:
        return INSTRUMENTS[name]
    except KeyError:
        known = ", ".join(list(INSTRUMENTS) + list(URMP_CODE_TO_CLASS))
        raise ValueError(f"unknown instrument {name_or_code!r} (known: {known})") from None


def all_programs() -> tuple[int, ...]:
    """GM programs of all 13 classes, in class order (what a renderer primes)."""
    return tuple(inst.program for inst in INSTRUMENTS.values())
