"""Pieces of planning shared by both layouts: seeds, tempo choice, loading music in parallel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .music import Piece, load_piece
from .workers import WorkerPool

DATA_DIR = Path(__file__).resolve().parent.parent  # data_prep/, which ships the Solos lists

# Second seed word per purpose, so streams for music, pictures and pool order never coincide.
SOLOS_MUSIC, SOLOS_PICTURE, URMP_MUSIC, URMP_PICTURE, POOL_ORDER = 11, 12, 21, 22, 31
SOLOS_FAMILY, URMP_FAMILY = 13, 23  # which drawing family draws each video


def rng_for(seed: int, purpose: int, *index: int) -> np.random.Generator:
    """An independent random stream for (seed, purpose, index...): what a file gets does
    not depend on how many other files are made or in which order."""
    return np.random.default_rng([seed, purpose, *index])


def choose_tempo(piece: Piece, rng: np.random.Generator) -> float:
    low, high = piece.kind.tempo_range
    return float(rng.uniform(low, high))


def load_pieces(workers: WorkerPool, piece_ids: Sequence[str]) -> dict[str, Piece]:
    """Parse pieces in the worker processes; {piece id: Piece}."""
    unique = list(dict.fromkeys(piece_ids))
    return dict(zip(unique, workers.map(load_piece, unique, "reading scores")))


def solos_ids() -> dict[str, list[str]]:
    """The real Solos video ids per class (solos_ids.json, shipped with data_prep)."""
    return json.loads((DATA_DIR / "solos_ids.json").read_text())


def write_json(path: Path, data: object, indent: int | None = 1) -> None:
    """Write JSON so that the file appears only when complete."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=indent) + "\n")
    partial.replace(path)
