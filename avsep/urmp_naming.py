"""URMP naming, one home for preparation, evaluation and inference: piece folder names
(`01_Jupiter_vn_vc`) and the players' frame columns (URMP videos show the players side by
side, left to right in part order)."""

from __future__ import annotations

import itertools

from avsep.classes import URMP_CODE_TO_CLASS
from avsep.media import BadInput


def parse_piece_name(name: str) -> tuple[str, str, list[str]]:
    """Split a URMP folder name into (number, title, instrument codes in part order).

    >>> parse_piece_name("01_Jupiter_vn_vc")
    ('01', 'Jupiter', ['vn', 'vc'])

    Raises:
        BadInput: the name does not look like NN_Title_code_code[...].
    """
    tokens = name.split("_")
    codes: list[str] = []
    while len(tokens) > 2 and tokens[-1] in URMP_CODE_TO_CLASS:
        codes.insert(0, tokens.pop())
    if len(tokens) < 2 or not tokens[0].isdigit() or not codes:
        raise BadInput(
            "bad_name",
            f"folder name {name!r} is not NN_Title_code1_code2[...] with URMP instrument codes "
            f"({' '.join(URMP_CODE_TO_CLASS)})",
        )
    return tokens[0], "_".join(tokens[1:]), codes


def boxes_file_name(piece: str) -> str:
    """The stand-in's file of player boxes in a piece folder (not part of the real URMP):
    `Boxes_<piece>.json`, format in docs/contracts.md."""
    return f"Boxes_{piece}.json"


def player_bounds(width: int, players: int) -> list[tuple[int, int]]:
    """Column ranges [x0, x1) of `players` equal-width crops, left to right.

    >>> player_bounds(10, 3)
    [(0, 3), (3, 7), (7, 10)]
    """
    edges = [round(k * width / players) for k in range(players + 1)]
    return list(itertools.pairwise(edges))


def scaled_frame_size(width: int, height: int, players: int, short_side: int) -> tuple[int, int]:
    """Size to decode a P-player frame at so that each player's column has `short_side`.

    Scaling while decoding and then cutting columns equals cutting then scaling, up to the
    filter's blur across a column edge (a pixel or two).

    >>> scaled_frame_size(1920, 1080, 3, 256)  # portrait columns 640 x 1080 -> 256 x 432
    (768, 432)
    """
    column = width / players
    scale = short_side / min(column, height)
    if column <= height:
        return short_side * players, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side
