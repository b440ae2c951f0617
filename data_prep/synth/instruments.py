"""The instruments of the stand-in datasets: General MIDI program, playable range, family.

The 13 Solos / URMP classes (`INSTRUMENTS`) and the 21 MUSIC-21 classes
(`MUSIC_INSTRUMENTS`). Class names and URMP codes come from `avsep.classes`, so the
generator and the rest of avsep cannot disagree about them. MUSIC names are lower case and
Solos names capitalised, so one lookup (`instrument`) serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avsep.classes import CLASS_TO_URMP_CODE, MUSIC21_CLASSES, SOLOS_CLASSES, URMP_CODE_TO_CLASS

Family = Literal["string", "woodwind", "brass", "plucked", "percussion", "keyboard"]


@dataclass(frozen=True)
class Instrument:
    """One instrument class.

    Attributes:
        name: Solos or MUSIC class name, e.g. "Violin", "erhu".
        code: URMP code, e.g. "vn" (MUSIC classes: the name itself).
        program: General MIDI program number (0-based) rendered for this class.
        low, high: practical sounding range as MIDI note numbers (inclusive); parts are moved
            by whole octaves into it.
        family: what kind of instrument it is (descriptive; the picture's motion comes
            from its sprite, `sprites.SPECS`).
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

# MUSIC-21: name, GM program (0-based), low, high, family, and the program's name (with the
# reason where General MIDI has no such instrument and the closest program stands in).
_MUSIC_TABLE: tuple[tuple[str, int, int, int, Family, str], ...] = (
    ("accordion", 21, 53, 89, "keyboard", "Accordion"),
    ("acoustic_guitar", 24, 40, 83, "plucked", "Acoustic Guitar (nylon)"),
    ("bagpipe", 109, 55, 81, "woodwind", "Bag pipe"),
    ("banjo", 105, 48, 84, "plucked", "Banjo"),
    ("bassoon", 70, 34, 75, "woodwind", "Bassoon"),
    ("cello", 42, 36, 76, "string", "Cello"),
    ("clarinet", 71, 50, 91, "woodwind", "Clarinet"),
    ("congas", 117, 48, 72, "percussion", "Melodic Tom (congas exist only on the drum channel)"),
    ("drum", 116, 36, 60, "percussion", "Taiko Drum (no drum-kit program)"),
    ("electric_bass", 33, 28, 67, "plucked", "Electric Bass (finger)"),
    ("erhu", 110, 55, 93, "string", "Fiddle (no erhu; the closest bowed program)"),
    ("flute", 73, 60, 96, "woodwind", "Flute"),
    ("guzheng", 107, 43, 91, "plucked", "Koto (no guzheng; the closest plucked zither)"),
    ("piano", 0, 33, 96, "keyboard", "Acoustic Grand Piano"),
    ("pipa", 106, 45, 88, "plucked", "Shamisen (no pipa; the closest plucked lute)"),
    ("saxophone", 65, 49, 81, "woodwind", "Alto Sax"),
    ("trumpet", 56, 54, 82, "brass", "Trumpet"),
    ("tuba", 58, 28, 65, "brass", "Tuba"),
    ("ukulele", 24, 60, 81, "plucked", "Acoustic Guitar (nylon), high (no ukulele)"),
    ("violin", 40, 55, 100, "string", "Violin"),
    ("xylophone", 13, 65, 108, "percussion", "Xylophone"),
)

MUSIC_INSTRUMENTS: dict[str, Instrument] = {
    name: Instrument(name, name, program, low, high, family)
    for name, program, low, high, family, _ in _MUSIC_TABLE
}
assert tuple(MUSIC_INSTRUMENTS) == MUSIC21_CLASSES

MUSIC_PROGRAM_NAMES: dict[str, str] = {name: label for name, *_, label in _MUSIC_TABLE}
"""The General MIDI program each MUSIC class is rendered with, by name (and why, where it
stands in for an instrument General MIDI lacks)."""


def instrument(name_or_code: str) -> Instrument:
    """The instrument for a Solos class name ("Violin"), a URMP code ("vn") or a MUSIC class
    name ("erhu")."""
    name = URMP_CODE_TO_CLASS.get(name_or_code, name_or_code)
    found = INSTRUMENTS.get(name) or MUSIC_INSTRUMENTS.get(name)
    if found is None:
        known = ", ".join(list(INSTRUMENTS) + list(URMP_CODE_TO_CLASS) + list(MUSIC_INSTRUMENTS))
        raise ValueError(f"unknown instrument {name_or_code!r} (known: {known})")
    return found


def all_programs() -> tuple[int, ...]:
    """GM programs of every class, Solos then MUSIC, without repeats (what a renderer primes)."""
    programs = [inst.program for inst in (*INSTRUMENTS.values(), *MUSIC_INSTRUMENTS.values())]
    return tuple(dict.fromkeys(programs))
