"""Download Solos videos from YouTube with yt-dlp into RAW/<Class>/<video id>.mp4.

Resumable and idempotent:
- a video whose RAW/<Class>/<id>.mp4 exists is skipped; yt-dlp writes `.part` files and
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
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from avsep.classes import SOLOS_CLASSES

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


YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")


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

    if "{id}" not in url_template:
        raise ValueError(f"--url-template must contain {{id}}: {url_template!r}")
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
    unavailable_path = out / UNAVAILABLE_NAME
    unavailable = _load_unavailable(unavailable_path)
    summary = DownloadSummary()
    todo = []
    root = out.resolve()
    for class_name, video_ids in sorted(ids.items()):
        for video_id in video_ids:
            target = out / class_name / f"{video_id}.mp4"
            if not target.resolve().is_relative_to(root):  # load_ids rules this out already
                raise ValueError(f"{class_name}/{video_id} would be written outside {out}")
            if target.is_file() and target.stat().st_size > 0:
                summary.present.append(video_id)
            elif video_id in unavailable and not retry_unavailable:
                summary.known_unavailable.append(video_id)
            else:
                todo.append((class_name, video_id, target))
    if limit is not None:
        todo = todo[:limit]
    network_errors_in_a_row = 0
    bar = tqdm(todo, unit="video", file=sys.stderr, dynamic_ncols=True)
    for class_name, video_id, target in bar:
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
            bar.write(f"[retry later] {class_name}/{video_id}: {reason}", file=sys.stderr)
            network_errors_in_a_row += 1
            if network_errors_in_a_row >= max_consecutive_network_errors:
                bar.write(f"stopping: {network_errors_in_a_row} network errors in a row "
                          "(is the network reachable?)", file=sys.stderr)
                break
        else:
            summary.unavailable[video_id] = reason
            unavailable[video_id] = {
                "class": class_name, "url": url, "reason": reason,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            _save_json(unavailable_path, unavailable)
            bar.write(f"[unavailable] {class_name}/{video_id}: {reason}", file=sys.stderr)
            network_errors_in_a_row = 0
    bar.close()
    return summary
