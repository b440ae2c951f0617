"""Real music for the stand-ins: music21 corpus scores -> per-part note lists.

Scores come from the corpus that ships inside the music21 wheel (usable offline): Bach
chorales, Monteverdi madrigals (five voices, used for quintets) and Haydn / Mozart string
quartets. Every candidate piece belongs to exactly one of two pools, chosen by a hash of its
corpus path, so the music of the Solos-layout stand-in and the URMP-layout stand-in (the
held-out test music) never overlap, whatever the seed or sizes.

Notes are float64 arrays of shape (N, 4) with columns (start_s, end_s, midi_pitch, velocity),
sorted by start; a `ScorePart` keeps them in quarter lengths until a tempo is chosen.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from .instruments import Instrument

Pool = Literal["solos", "urmp"]
NOTE_COLUMNS = ("start_s", "end_s", "pitch", "velocity")
# One piece in this many goes to the URMP (held-out) pool.
URMP_POOL_SHARE = 4


@dataclass(frozen=True)
class CorpusKind:
    """A family of corpus files and how to perform them (tempi are in quarter notes/min)."""

    name: str
    pattern: re.Pattern[str]
    tempo_range: tuple[float, float]
    fermata_pause_beats: float  # extra time held at each fermata


CORPUS_KINDS: tuple[CorpusKind, ...] = (
    CorpusKind("chorale", re.compile(r"^bach/bwv[\d.]+\.mxl$"), (66.0, 96.0), 1.5),
    CorpusKind("madrigal", re.compile(r"^monteverdi/madrigal\.\d+\.\d+\.mxl$"), (110.0, 150.0), 1.0),
    CorpusKind(
        "quartet",
        re.compile(r"^(haydn/opus(1no1|74no1)|mozart/k(80|155|156|458))/movement\d\.mxl$"),
        (72.0, 120.0),
        1.0,
    ),
)


def corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def kind_of(piece_id: str) -> CorpusKind:
    for kind in CORPUS_KINDS:
        if kind.pattern.match(piece_id):
            return kind
    raise ValueError(f"{piece_id!r} is not a piece the stand-in generator uses")


@lru_cache(maxsize=1)
def corpus_candidates() -> tuple[str, ...]:
    """Corpus-relative paths (e.g. 'bach/bwv66.6.mxl') of every usable piece, sorted."""
    root = corpus_root()
    found = []
    for path in root.rglob("*.mxl"):
        rel = path.relative_to(root).as_posix()
        if any(kind.pattern.match(rel) for kind in CORPUS_KINDS):
            found.append(rel)
    if not found:
        raise RuntimeError(f"no usable scores in the music21 corpus at {root}")
    return tuple(sorted(found))


def pool_of(piece_id: str) -> Pool:
    """The pool a piece belongs to; depends only on its path, so pools never overlap."""
    digest = hashlib.sha256(piece_id.encode()).digest()
    return "urmp" if int.from_bytes(digest[:8], "big") % URMP_POOL_SHARE == 0 else "solos"


def pool(name: Pool, kind: str | None = None) -> tuple[str, ...]:
    """Sorted piece ids of one pool, optionally of one kind ('chorale', 'madrigal', 'quartet')."""
    return tuple(
        p for p in corpus_candidates()
        if pool_of(p) == name and (kind is None or kind_of(p).name == kind)
    )


@dataclass(frozen=True)
class ScorePart:
    """One part of a score, in quarter lengths (ql). Arrays have shape (N,), sorted by onset."""

    name: str
    onset_ql: np.ndarray
    end_ql: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray  # MIDI velocity from the score, or 0 where the score has none

    def __len__(self) -> int:
        return len(self.onset_ql)


@dataclass(frozen=True)
class Piece:
    """A parsed score: parts in score order (highest voice first) and fermata positions."""

    piece_id: str
    parts: tuple[ScorePart, ...]
    fermata_ends_ql: np.ndarray  # sorted unique ql positions where a fermata note ends
    length_ql: float

    @property
    def kind(self) -> CorpusKind:
        return kind_of(self.piece_id)

    @property
    def title(self) -> str:
        return title_for(self.piece_id)


def title_for(piece_id: str) -> str:
    """A URMP-style title (letters and digits only) naming the piece, e.g.
    'bach/bwv66.6.mxl' -> 'ChoraleBwv66x6', 'haydn/opus74no1/movement1.mxl' -> 'QuartetHaydn74n1m1'."""
    kind = kind_of(piece_id).name
    stem = piece_id.rsplit(".", 1)[0]
    for long, short in (("bach/", ""), ("monteverdi/madrigal.", ""), ("/movement", "m"),
                        ("opus", ""), ("no", "n"), ("/", "")):
        stem = stem.replace(long, short)
    stem = re.sub(r"[^A-Za-z0-9]", "x", stem)
    return kind.capitalize() + stem[:1].upper() + stem[1:]


def load_piece(piece_id: str) -> Piece:
    """Parse one corpus score into note arrays (ties merged, chords split, grace notes dropped)."""
    from music21 import converter, expressions, stream

    path = corpus_root() / piece_id
    if not path.is_file():
        raise FileNotFoundError(f"{path}: corpus score not found (is music21 installed fully?)")
    score = converter.parse(path)
    assert isinstance(score, stream.Score)  # the corpus pieces used are scores of parts
    parts = []
    fermata_ends: set[float] = set()
    for index, part in enumerate(score.parts):
        rows: list[list[float]] = []
        open_ties: dict[int, int] = {}  # pitch -> row index of the note a tie continues
        flat = part.flatten()
        for element in flat.notes:
            length = float(element.quarterLength)
            if length <= 0:  # grace notes have no duration of their own
                continue
            onset = float(element.getOffsetBySite(flat))
            velocity = element.volume.velocity or 0
            has_fermata = any(isinstance(e, expressions.Fermata) for e in element.expressions)
            if has_fermata:
                fermata_ends.add(round(onset + length, 6))
            for pitch in element.pitches:
                midi = int(pitch.midi)
                tie = _tie_type(element, pitch)
                if tie in ("stop", "continue") and midi in open_ties:
                    rows[open_ties[midi]][1] = onset + length
                    if tie == "stop":
                        del open_ties[midi]
                    continue
                rows.append([onset, onset + length, midi, velocity])
                if tie == "start":
                    open_ties[midi] = len(rows) - 1
        if not rows:
            continue
        table = np.array(sorted(rows), dtype=np.float64)
        parts.append(ScorePart(
            name=part.partName or f"part{index + 1}",
            onset_ql=table[:, 0], end_ql=table[:, 1], pitch=table[:, 2], velocity=table[:, 3],
        ))
    if not parts:
        raise ValueError(f"{piece_id}: the score has no notes")
    return Piece(
        piece_id=piece_id,
        parts=tuple(parts),
        fermata_ends_ql=np.array(sorted(fermata_ends), dtype=np.float64),
        length_ql=float(max(p.end_ql.max() for p in parts)),
    )


def _tie_type(element, pitch) -> str | None:
    """Tie type of one pitch of a note or chord ('start', 'continue', 'stop' or None)."""
    if hasattr(element, "notes"):  # a chord: ties live on its member notes
        for note in element.notes:
            if note.pitch == pitch and note.tie is not None:
                return note.tie.type
        return None
    return element.tie.type if element.tie is not None else None


def seconds_per_ql(qpm: float) -> float:
    return 60.0 / qpm


def piece_seconds(piece: Piece, qpm: float) -> float:
    """Length of the whole piece in seconds at tempo `qpm`, fermata pauses included."""
    return float(_ql_to_seconds(piece, np.array([piece.length_ql]), qpm)[0])


def _ql_to_seconds(piece: Piece, ql: np.ndarray, qpm: float) -> np.ndarray:
    # Each fermata that has ended at or before a position delays it by the pause; a note that
    # ends on a fermata is therefore held through the pause and the next phrase starts after it.
    spq = seconds_per_ql(qpm)
    pauses = np.searchsorted(piece.fermata_ends_ql, ql + 1e-6, side="right")
    return ql * spq + pauses * piece.kind.fermata_pause_beats * spq


def perform(
    piece: Piece,
    part_index: int,
    qpm: float,
    rng: np.random.Generator,
    *,
    legato: float = 0.92,
    timing_jitter_s: float = 0.008,
    base_velocity: tuple[int, int] = (64, 104),
    velocity_jitter: int = 10,
) -> np.ndarray:
    """One part as notes (N, 4) [start_s, end_s, pitch, velocity] at tempo `qpm`, humanised.

    Notes are shortened to `legato` of their length (so repeated notes are re-articulated and
    onsets stay audible), onsets get a little jitter and velocities a phrase-level level plus
    per-note jitter (chorales carry no dynamics).
    """
    part = piece.parts[part_index]
    start = _ql_to_seconds(piece, part.onset_ql, qpm)
    end = _ql_to_seconds(piece, part.end_ql, qpm)
    start = np.maximum(start + rng.normal(0.0, timing_jitter_s, len(start)), 0.0)
    end = start + np.maximum(end - start, 0.05) * legato
    level = rng.integers(base_velocity[0], base_velocity[1] + 1)
    velocity = np.where(part.velocity > 0, part.velocity, level)
    velocity = velocity + rng.integers(-velocity_jitter, velocity_jitter + 1, len(velocity))
    notes = np.stack([start, end, part.pitch, np.clip(velocity, 30, 127)], axis=1)
    return notes[np.argsort(notes[:, 0], kind="stable")]


def fit_range(notes: np.ndarray, inst: Instrument) -> np.ndarray:
    """Move notes (N, 4) by the whole number of octaves that leaves the fewest pitches outside
    the instrument's range (ties: the shift that puts the median nearest the range centre);
    the rare leftovers are folded in octave by octave."""
    if len(notes) == 0:
        return notes.copy()
    pitch = notes[:, 2]
    best_key, best_shift = None, 0
    for octaves in range(-4, 5):
        shifted = pitch + 12 * octaves
        outside = int(np.sum((shifted < inst.low) | (shifted > inst.high)))
        key = (outside, abs(float(np.median(shifted)) - inst.centre))
        if best_key is None or key < best_key:
            best_key, best_shift = key, octaves
    out = notes.copy()
    shifted = pitch + 12 * best_shift
    while np.any(shifted < inst.low):
        shifted = np.where(shifted < inst.low, shifted + 12, shifted)
    while np.any(shifted > inst.high):
        shifted = np.where(shifted > inst.high, shifted - 12, shifted)
    out[:, 2] = shifted
    return out


def excerpt(notes: np.ndarray, start_s: float, length_s: float, period_s: float) -> np.ndarray:
    """Notes (N, 4) sounding in [start_s, start_s + length_s) of a part that repeats every
    `period_s` seconds, shifted so the excerpt starts at 0; notes are cut at its end."""
    if len(notes) == 0 or length_s <= 0:
        return np.zeros((0, 4))
    first = int(np.floor(start_s / period_s))
    last = int(np.floor((start_s + length_s) / period_s))
    pieces = []
    for rep in range(first, last + 1):
        shifted = notes.copy()
        shifted[:, :2] += rep * period_s - start_s
        keep = (shifted[:, 0] >= 0) & (shifted[:, 0] < length_s)
        pieces.append(shifted[keep])
    out = np.concatenate(pieces)
    out[:, 1] = np.minimum(out[:, 1], length_s)
    return out[np.argsort(out[:, 0], kind="stable")]
