"""Drawing families of the stand-ins, and leave-one-family-out splits of them.

A drawing family is one "hand" that draws performers, instruments and backgrounds (the
drawing code is in `looks.py` and `look_*.py`, chosen by name in `performers.LOOKS`):

- "classic": the original look (flat fills with a darker rim, cluttered panning background).
  It draws byte for byte what the stand-in drew before families existed.
- "lineart": ink outlines on paper, much detail, seated full figures, a still camera.
- "shaded": shaded volumes, realistic materials, instruments seen at an angle, a close camera
  in a furnished room under a directional light.
- "pictogram": flat geometric silhouettes, little detail, small standing figures anywhere in
  the frame, a flat poster background.

A model trained on some families and tested on another measures whether what it learned
transfers to pictures drawn by another hand. The "studio" style (`presets.STYLES`) is not a
family: it stays an evaluation-only change of scene.

This module is pure (names and bookkeeping only), so settings can check family names without
loading the drawing code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CLASSIC = "classic"
# Every family, in the order of the fixed leave-one-family-out rotation (`rotation`).
FAMILIES: tuple[str, ...] = (CLASSIC, "lineart", "shaded", "pictogram")
DEFAULT_FAMILIES: tuple[str, ...] = (CLASSIC,)  # what the stand-ins drew before families


def check_families(families: Sequence[str]) -> tuple[str, ...]:
    """`families` as a tuple, after checking that it names known families, each once.

    Raises:
        TypeError: a bare string (it would read as a sequence of one-letter names).
        ValueError: empty, unknown or repeated names.
    """
    if isinstance(families, str):
        raise TypeError(f"families must be a sequence of names, got the string {families!r}")
    families = tuple(families)
    if not families:
        raise ValueError("at least one drawing family is needed")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown drawing families {unknown} (known: {', '.join(FAMILIES)})")
    if len(set(families)) != len(families):
        raise ValueError(f"drawing families repeat: {list(families)}")
    return families


def split_families(families: Sequence[str], held_out: str) -> tuple[tuple[str, ...], str]:
    """(training families, held-out family): `families` without `held_out`, in their order.

    Raises:
        ValueError: `held_out` is not one of `families` (holding out a family that was never
            in the set would silently test on a look the split knows nothing of), or it is
            the only one (nothing would be left to train on).
    """
    families = check_families(families)
    if held_out not in families:
        raise ValueError(f"held-out family {held_out!r} is not one of {list(families)}")
    training = tuple(f for f in families if f != held_out)
    if not training:
        raise ValueError(f"holding out {held_out!r}, the only family, leaves none to train on")
    return training, held_out


def rotation(families: Sequence[str] = FAMILIES) -> list[tuple[tuple[str, ...], str]]:
    """The fixed leave-one-family-out rotation: fold k holds out `families[k]` and trains on
    the others (in their given order). With the default, fold 0 holds out "classic", fold 1
    "lineart", fold 2 "shaded" and fold 3 "pictogram"."""
    return [split_families(families, held_out) for held_out in check_families(families)]


def family_for(families: Sequence[str], seed_words: Sequence[int], position: int) -> str:
    """The family of video number `position` (0, 1, ...) of a group (a class, or all pieces).

    Videos are dealt in blocks of len(families): each block is a random permutation drawn
    from `seed_words` and the block number, so every family comes up equally often in a
    group (within one video) and a video's family depends neither on how many videos the
    group has nor on the order they are made in. One family needs no random draw.
    """
    families = check_families(families)
    if len(families) == 1:
        return families[0]
    block, offset = divmod(position, len(families))
    order = np.random.default_rng([*seed_words, block]).permutation(len(families))
    return families[int(order[offset])]
