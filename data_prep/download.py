"""Download Solos and MUSIC videos from YouTube with yt-dlp (RAW/<Class>/<video id>.mp4 for
Solos; RAW/solo/<class>/ and RAW/duet/<a b>/ for MUSIC, see `data_prep.music_ids`).

Resumable and idempotent:
- a video whose .mp4 exists is skipped; yt-dlp writes `.part` files and
  renames (or merges) only once a download is complete, so an existing .mp4 is whole, and an
  interrupted download continues from its `.part` next time;
- ids that cannot be downloaded for good (removed, private, 404, ...) are recorded with the
  reason in RAW/unavailable.json and not tried again unless asked (`retry_unavailable`);
- network failures (no connection, time-outs) are *not* recorded: the id is simply tried
  again next run, and many in a row stop the run.

The Solos playing-span file is copied next to the videos (RAW/solos_timestamps.json), where
`avsep prepare solos` looks for it. Its spans count frames at 25 fps whatever the frame rate
of the downloaded file: preparation converts them to seconds and picks frames by time, so
nothing is re-encoded here.
"""

from __future__ import annotations

import json
import shutil
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from avsep.classes import SOLOS_CLASSES
from data_prep.music_ids import YOUTUBE_ID, load_music_ids

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_IDS = PACKAGE_DIR / "solos_ids.json"
DEFAULT_TIMESTAMPS = PACKAGE_DIR / "solos_timestamps.json"
DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={id}"
UNAVAILABLE_NAME = "unavailable.json"

# Substrings of yt-dlp errors that mean "try again later" rather than "gone for good".
TRANSIENT_ERRORS = (
    "timed out", "connection refused", "connection reset", "temporary failure in name",
    "name or service not known", "network is unreachable", "no route to host",
    "remote end closed", "http error 5", "http error 429", "too many requests",
)


@dataclass
class DownloadSummary:
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # this run's new ones
    known_unavailable: list[str] = field(default_factory=list)  # skipped, recorded earlier
    failed: dict[str, str] = field(default_factory=dict)  # transient, retried next run

    def line(self) -> str:
        return (
            f"downloaded {len(self.downloaded)}, already present {len(self.present)}, "
            f"newly unavailable {len(self.unavailable)}, skipped as unavailable "
            f"{len(self.known_unavailable)}, failed (will retry) {len(self.failed)}"
        )




def load_ids(
    path: Path | None = None, known_classes: tuple[str, ...] = SOLOS_CLASSES
) -> dict[str, list[str]]:
    """{Class: [video id, ...]} from an id file (default: the packaged Solos one).

    Every class must be one of `known_classes` and every id must look like a YouTube id
    (11 characters of [A-Za-z0-9_-]): both become file names under RAW, so anything else
    (a '../' above all) could write outside it.

    Raises:
        ValueError: the file cannot be read, or names unknown classes or malformed ids.
    """
    path = Path(path) if path is not None else DEFAULT_IDS
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read id file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path}: expected {{Class: [video id, ...]}}")
    unknown = sorted(str(name) for name in data if name not in known_classes)
    if unknown:
        raise ValueError(f"{path}: unknown classes {unknown} (known: {', '.join(known_classes)})")
    malformed = [f"{name}: {video_id!r}" for name, ids in data.items() for video_id in ids
                 if not isinstance(video_id, str) or not YOUTUBE_ID.fullmatch(video_id)]
    if malformed:
        shown = "; ".join(malformed[:5]) + (f"; and {len(malformed) - 5} more"
                                            if len(malformed) > 5 else "")
        raise ValueError(f"{path}: not YouTube video ids (11 characters of A-Z a-z 0-9 _ -): "
                         f"{shown}")
    return data


def _load_unavailable(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ValueError(f"{path} is not valid JSON: fix or delete it") from None


def _save_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


class _QuietLogger:
    """Collects yt-dlp's messages instead of letting it print over the progress bar."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        pass

    info = debug

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        self.errors.append(message)


def _clean_error(message: str) -> str:
    message = message.replace("ERROR: ", "").strip()
    return " ".join(message.split())[:500]


def is_transient(reason: str) -> bool:
    lowered = reason.lower()
    return any(marker in lowered for marker in TRANSIENT_ERRORS)


def download_one(url: str, target: Path, extra_options: dict | None = None) -> str | None:
    """Download `url` to `target` (an .mp4 path); return None on success or the reason."""
    import yt_dlp

    logger = _QuietLogger()
    options = {
        "outtmpl": str(target.with_suffix("")) + ".%(ext)s",
        # mp4 video + m4a audio merged into mp4, or a single mp4, or anything remuxed to mp4.
        "format": "bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/bv*+ba/b",
        "merge_output_format": "mp4",
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "noplaylist": True,
        "continuedl": True,
        "retries": 3,
        "socket_timeout": 30,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        **(extra_options or {}),
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([url])
    except yt_dlp.utils.DownloadError as exc:
        return _clean_error(str(exc))
    if not target.is_file():
        produced = sorted(p.name for p in target.parent.glob(target.stem + ".*"))
        return f"download finished but {target.name} was not produced (found: {produced})"
    return None


def download_solos(
    out: Path,
    ids_file: Path | None = None,
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    retry_unavailable: bool = False,
    classes: list[str] | None = None,
    limit: int | None = None,
    max_consecutive_network_errors: int = 10,
    extra_options: dict | None = None,
) -> DownloadSummary:
    """Download every Solos id not yet in RAW (see the module docstring).

    Args:
        out: RAW; videos go to RAW/<Class>/<id>.mp4.
        ids_file: {Class: [ids]} (default: the packaged solos_ids.json).
        url_template: URL of a video with `{id}` in place of the id.
        retry_unavailable: try again ids recorded in RAW/unavailable.json.
        classes: only these classes.
        limit: at most this many download attempts (for trying things out).
    """

    _check_template(url_template)
    ids = load_ids(ids_file)
    if classes:
        unknown = sorted(set(classes) - set(ids))
        if unknown:
            raise ValueError(f"unknown classes {unknown} (known: {', '.join(sorted(ids))})")
        ids = {c: ids[c] for c in classes}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "solos_timestamps.json").exists():
        shutil.copyfile(DEFAULT_TIMESTAMPS, out / "solos_timestamps.json")
    wanted = [(name, name, video_id) for name, video_ids in sorted(ids.items())
              for video_id in video_ids]
    return download_videos(
        out, wanted, url_template=url_template, retry_unavailable=retry_unavailable,
        limit=limit, max_consecutive_network_errors=max_consecutive_network_errors,
        extra_options=extra_options)


def download_music(
    out: Path,
    ids_files: list[Path],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    retry_unavailable: bool = False,
    classes: list[str] | None = None,
    limit: int | None = None,
    max_consecutive_network_errors: int = 10,
    extra_options: dict | None = None,
) -> DownloadSummary:
    """Download the videos of MUSIC id lists into RAW/solo/<class>/ and RAW/duet/<a b>/.

    Args:
        out: RAW (layout: `data_prep.music_ids`); the id lists are copied next to the videos.
        ids_files: MUSIC_solo_videos.json, MUSIC_duet_videos.json, MUSIC21_solo_videos.json
            or any file of their format.
        classes: only solos of these classes and duets of two of them.
        Other arguments as `download_solos`.
    """
    _check_template(url_template)
    if not ids_files:
        raise ValueError("give at least one id list (--ids MUSIC_solo_videos.json ...)")
    groups = load_music_ids(ids_files)
    if classes:
        known = {name for group in groups for name in group.classes}
        unknown = sorted(set(classes) - known)
        if unknown:
            raise ValueError(f"unknown classes {unknown} (known: {', '.join(sorted(known))})")
        groups = [g for g in groups if set(g.classes) <= set(classes)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for path in ids_files:  # `avsep prepare music` and later readers see what was asked for
        if not (out / Path(path).name).exists():
            shutil.copyfile(path, out / Path(path).name)
    seen: set[tuple[str, str]] = set()
    wanted = []
    for group in groups:
        for video_id in group.ids:
            if (group.folder, video_id) not in seen:  # MUSIC-21 repeats the MUSIC solos
                seen.add((group.folder, video_id))
                wanted.append((group.key, group.folder, video_id))
    return download_videos(
        out, wanted, url_template=url_template, retry_unavailable=retry_unavailable,
        limit=limit, max_consecutive_network_errors=max_consecutive_network_errors,
        extra_options=extra_options)


def _check_template(url_template: str) -> None:
    """`url_template` has `{id}` and no other placeholder (`str.format` would fail on one at
    the first download, or read attributes of the id for `{id.attr}`)."""
    try:
        fields = [field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                  for _, field, spec, conversion in string.Formatter().parse(url_template)
                  if field is not None]
    except ValueError as exc:
        raise ValueError(f"--url-template {url_template!r}: {exc} (write {{{{ and }}}} for a "
                         "literal brace)") from None
    others = sorted({f"{{{field}}}" for field in fields if field != "id"})
    if others:
        raise ValueError(f"--url-template {url_template!r}: unknown placeholder "
                         f"{', '.join(others)} (only {{id}} is replaced; write {{{{ and }}}} "
                         "for a literal brace)")
    if "id" not in fields:
        raise ValueError(f"--url-template must contain {{id}}: {url_template!r}")


def download_videos(
    out: Path,
    wanted: list[tuple[str, str, str]],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    retry_unavailable: bool = False,
    limit: int | None = None,
    max_consecutive_network_errors: int = 10,
    extra_options: dict | None = None,
) -> DownloadSummary:
    """Download every (label, folder, id) of `wanted` to RAW/<folder>/<id>.mp4 that is not
    there yet, recording ids gone for good in RAW/unavailable.json (module docstring).

    `label` (a class, or a duet's pair of classes) is what unavailable.json and the
    messages name; ids and folders must already be checked (they become file names).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unavailable_path = out / UNAVAILABLE_NAME
    unavailable = _load_unavailable(unavailable_path)
    summary = DownloadSummary()
    todo = []
    root = out.resolve()
    for label, folder, video_id in wanted:
        target = out / folder / f"{video_id}.mp4"
        if not target.resolve().is_relative_to(root):  # the id loaders rule this out already
            raise ValueError(f"{folder}/{video_id} would be written outside {out}")
        if target.is_file() and target.stat().st_size > 0:
            summary.present.append(video_id)
        elif video_id in unavailable and not retry_unavailable:
            summary.known_unavailable.append(video_id)
        else:
            todo.append((label, folder, video_id, target))
    if limit is not None:
        todo = todo[:limit]
    network_errors_in_a_row = 0
    bar = tqdm(todo, unit="video", file=sys.stderr, dynamic_ncols=True)
    for label, folder, video_id, target in bar:
        target.parent.mkdir(parents=True, exist_ok=True)
        url = url_template.format(id=video_id)
        reason = download_one(url, target, extra_options)
        if reason is None:
            summary.downloaded.append(video_id)
            network_errors_in_a_row = 0
            if unavailable.pop(video_id, None) is not None:
                _save_json(unavailable_path, unavailable)
        elif is_transient(reason):
            summary.failed[video_id] = reason
            bar.write(f"[retry later] {folder}/{video_id}: {reason}", file=sys.stderr)
            network_errors_in_a_row += 1
            if network_errors_in_a_row >= max_consecutive_network_errors:
                bar.write(f"stopping: {network_errors_in_a_row} network errors in a row "
                          "(is the network reachable?)", file=sys.stderr)
                break
        else:
            summary.unavailable[video_id] = reason
            unavailable[video_id] = {
                "class": label, "folder": folder, "url": url, "reason": reason,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            _save_json(unavailable_path, unavailable)
            bar.write(f"[unavailable] {folder}/{video_id}: {reason}", file=sys.stderr)
            network_errors_in_a_row = 0
    bar.close()
    return summary
