"""Published MUSIC test pair lists, and plain lists of video ids.

iQuery (CVPR 2023) and DAVIS (ACCV 2024) publish their MUSIC test mixtures as
`testsepmusic.csv`, iQuery its MUSIC-21 ones as `testsepmusic21.csv`: one mixture per line,
two solo recordings named by class and YouTube id, separated by a comma (and a space):

    /flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav

A list may name the same pair on several lines; every line is one mixture, as in the papers'
loaders, so a repeated pair counts as often as it is listed. The user supplies the file
(avsep bundles none). Every name is checked before anything else happens: the class must be
a MUSIC-21 class and the id a YouTube id, so nothing in a list can name a path outside the
shards (`/flute/../../x.wav`, an absolute path); a bad line is an error naming `file:line`.

`avsep prepare music --test-ids FILE` also takes a plain list, one id per line.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from avsep.classes import MUSIC21_CLASSES
from avsep.faults import UsageError

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_SOURCE = re.compile(r"/(?P<class_name>[^/]*)/(?P<video_id>[^/]*)\.wav")
LINE_FORMAT = "/<class>/<YouTube id>.wav, /<class>/<YouTube id>.wav"


class PairListError(UsageError):
    """A pair list or id list does not match its format; the message starts `file:line: `."""


@dataclass(frozen=True)
class ListedVideo:
    """One solo recording named by a list: its MUSIC-21 class and YouTube id."""

    class_name: str
    video_id: str


@dataclass(frozen=True)
class ListedPair:
    """One line of a pair list: a mixture of two solo recordings.

    Attributes:
        line: its line number in the file (1-based), to name it in messages and reports.
        sources: the two recordings, in the order of the line.
    """

    line: int
    sources: tuple[ListedVideo, ListedVideo]


@dataclass(frozen=True)
class PairList:
    """A parsed pair list.

    Attributes:
        path: the file as given.
        sha1: SHA-1 of its bytes (recorded with results, so a figure names its list).
        pairs: one entry per non-blank line, in file order.
    """

    path: str
    sha1: str
    pairs: tuple[ListedPair, ...]

    @property
    def videos(self) -> dict[str, str]:
        """Video id -> class of every recording the list names, in order of appearance."""
        return {s.video_id: s.class_name for pair in self.pairs for s in pair.sources}

    @property
    def distinct_pairs(self) -> int:
        """Pairs of videos named at least once, whatever their order on the line."""
        return len({frozenset(s.video_id for s in pair.sources) for pair in self.pairs})


def _read_lines(path: str | os.PathLike) -> tuple[bytes, list[str]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PairListError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PairListError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                            ) from None
    return data, text.splitlines()


def parse_source(text: str, where: str) -> ListedVideo:
    """A `/<class>/<YouTube id>.wav` name; anything else is an error starting with `where`.

    >>> parse_source(" /flute/kbTy_5o6AB4.wav", "list.csv:1")
    ListedVideo(class_name='flute', video_id='kbTy_5o6AB4')
    """
    name = text.strip()
    match = _SOURCE.fullmatch(name)
    if match is None:
        raise PairListError(f"{where}: {name!r} is not /<class>/<YouTube id>.wav")
    class_name, video_id = match["class_name"], match["video_id"]
    if class_name not in MUSIC21_CLASSES:
        raise PairListError(f"{where}: unknown class {class_name!r} in {name!r} (MUSIC-21 "
                            f"classes: {', '.join(MUSIC21_CLASSES)})")
    if not YOUTUBE_ID.fullmatch(video_id):
        raise PairListError(f"{where}: {video_id!r} in {name!r} is not a YouTube id (11 "
                            "characters of A-Z a-z 0-9 _ -)")
    return ListedVideo(class_name, video_id)


def _parse_pair(line: str, where: str) -> tuple[ListedVideo, ListedVideo]:
    fields = line.split(",")
    if len(fields) != 2:
        raise PairListError(f"{where}: expected two recordings separated by a comma "
                            f"({LINE_FORMAT}), got {len(fields)} field(s)")
    a, b = (parse_source(f, where) for f in fields)
    if a.video_id == b.video_id:
        raise PairListError(f"{where}: mixes video {a.video_id} with itself")
    return a, b


def _check_classes(seen: dict[str, tuple[str, str]], video: ListedVideo, where: str) -> None:
    """One video, one class: a list naming an id under two classes is inconsistent."""
    first = seen.setdefault(video.video_id, (video.class_name, where))
    if first[0] != video.class_name:
        raise PairListError(f"{where}: video {video.video_id} is {video.class_name} here but "
                            f"{first[0]} at {first[1]}")


def read_pair_csv(path: str | os.PathLike) -> PairList:
    """Parse a published pair list (module docstring); blank lines are ignored.

    Raises:
        PairListError: the file cannot be read, a line is malformed, names an unknown class,
            something that is not a YouTube id, a video twice, or one id under two classes;
            the message names `file:line`.
    """
    data, lines = _read_lines(path)
    pairs = []
    seen: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        sources = _parse_pair(line, where)
        for video in sources:
            _check_classes(seen, video, where)
        pairs.append(ListedPair(number, sources))
    if not pairs:
        raise PairListError(f"{path}: the list holds no pairs ({LINE_FORMAT} per line)")
    return PairList(str(path), hashlib.sha1(data).hexdigest(), tuple(pairs))


def read_video_ids(path: str | os.PathLike) -> dict[str, str | None]:
    """The videos a test-id file names: id -> class (None where only the id is given).

    Each non-blank line is either a pair-list line (`read_pair_csv`'s format, so a published
    list can be given as it is) or a bare YouTube id.

    Raises:
        PairListError: as `read_pair_csv`, naming `file:line`.
    """
    _, lines = _read_lines(path)
    ids: dict[str, str | None] = {}
    seen: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        where = f"{path}:{number}"
        if "," in text or "/" in text:
            for video in _parse_pair(text, where):
                _check_classes(seen, video, where)
                ids[video.video_id] = video.class_name
        elif YOUTUBE_ID.fullmatch(text):
            ids.setdefault(text, None)
        else:
            raise PairListError(f"{where}: {text!r} is neither a YouTube id (11 characters "
                                f"of A-Z a-z 0-9 _ -) nor a pair line ({LINE_FORMAT})")
    if not ids:
        raise PairListError(f"{path}: the file names no video (one YouTube id per line, or "
                            f"{LINE_FORMAT})")
    return ids
