"""The MUSIC / MUSIC-21 video id lists and the raw layout they describe.

The lists are published with the Sound of Pixels dataset (github.com/hangzhaomit/MUSIC_dataset:
`MUSIC_solo_videos.json`, `MUSIC_duet_videos.json`, `MUSIC21_solo_videos.json`), all in one
format: `{"videos": {"<class>": [youtube id, ...], "<class> <class>": [...]}}`. A key with
one class name lists solo performances, a key with two (space-separated) lists duets.

Raw layout, one folder per key:

    RAW/solo/<class>/<id>.mp4
    RAW/duet/<class> <class>/<id>.mp4

Class names are those of `avsep.classes.MUSIC21_CLASSES` (MUSIC-11 is a subset).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from avsep.classes import MUSIC21_CLASSES

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
SOLO, DUET = "solo", "duet"


@dataclass(frozen=True)
class MusicGroup:
    """The videos of one key of an id list.

    Attributes:
        key: the list's key, e.g. "violin" or "acoustic_guitar violin".
        classes: the class names in the key (one for a solo, two for a duet).
        ids: YouTube ids, in the list's order.
    """

    key: str
    classes: tuple[str, ...]
    ids: tuple[str, ...]

    @property
    def kind(self) -> str:
        return SOLO if len(self.classes) == 1 else DUET

    @property
    def folder(self) -> str:
        """Where its videos go, relative to RAW: 'solo/violin', 'duet/flute violin'."""
        return f"{self.kind}/{self.key}"


def parse_key(key: object) -> tuple[str, ...] | None:
    """The classes of an id-list key ('violin' -> 1, 'flute violin' -> 2), None if invalid."""
    if not isinstance(key, str):
        return None
    names = tuple(key.split(" "))
    if len(names) not in (1, 2) or not all(name in MUSIC21_CLASSES for name in names):
        return None
    return names


def parse_music_ids(data: object, where: str) -> list[MusicGroup]:
    """The groups of one id list (already parsed JSON), validated.

    Every key must be one MUSIC-21 class or two separated by one space, and every id a
    YouTube id: both become names under RAW, so anything else (a '../' above all) could
    write outside it.

    Raises:
        ValueError: the content does not match the format; the message says what is wrong.
    """
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(v, list) for v in videos.values()):
        raise ValueError(f'{where}: expected {{"videos": {{"<class>" or "<class> <class>": '
                         "[youtube id, ...]}}")
    bad_keys = sorted(str(key) for key in videos if parse_key(key) is None)
    if bad_keys:
        raise ValueError(f"{where}: unknown classes {bad_keys} (a key is one of "
                         f"{', '.join(MUSIC21_CLASSES)}, or two of them separated by a space)")
    malformed = [f"{key}: {video_id!r}" for key, ids in videos.items() for video_id in ids
                 if not isinstance(video_id, str) or not YOUTUBE_ID.fullmatch(video_id)]
    if malformed:
        shown = "; ".join(malformed[:5]) + (f"; and {len(malformed) - 5} more"
                                            if len(malformed) > 5 else "")
        raise ValueError(f"{where}: not YouTube video ids (11 characters of A-Z a-z 0-9 _ -): "
                         f"{shown}")
    groups = []
    for key, ids in videos.items():
        classes = parse_key(key)
        assert classes is not None  # bad keys were refused above
        groups.append(MusicGroup(key, classes, tuple(ids)))
    return groups


def load_music_ids(paths: list[Path]) -> list[MusicGroup]:
    """The groups of one or more id-list files, in file and key order.

    Raises:
        ValueError: a file cannot be read or does not match the format.
    """
    groups: list[MusicGroup] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read id file {path}: {exc}") from None
        groups += parse_music_ids(data, str(path))
    return groups
