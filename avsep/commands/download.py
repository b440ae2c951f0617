"""`avsep download solos|music`: fetch the Solos or MUSIC videos from YouTube with yt-dlp."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  avsep download solos --out data/solos
  avsep download solos --out data/solos --classes Violin Cello --limit 5
  avsep download solos --out data/solos --retry-unavailable

Writes RAW/<Class>/<id>.mp4 and copies the playing spans to RAW/solos_timestamps.json.
Run it again to resume: videos already present are skipped; ids that cannot be downloaded
are listed with the reason in RAW/unavailable.json and skipped next time. URMP is not on
YouTube: download it from its authors' site and unpack it as RAW/NN_Title_c1_c2/.
"""

MUSIC_EPILOG = """\
examples:
  avsep download music --out data/music --ids MUSIC21_solo_videos.json MUSIC_duet_videos.json
  avsep download music --out data/music --ids MUSIC_solo_videos.json --classes violin cello

The id lists are published with the Sound of Pixels dataset
(https://github.com/hangzhaomit/MUSIC_dataset): MUSIC_solo_videos.json (11 classes),
MUSIC_duet_videos.json and MUSIC21_solo_videos.json (21 classes); all have the format
{"videos": {"<class>" or "<class> <class>": [youtube id, ...]}}. Writes
RAW/solo/<class>/<id>.mp4 and RAW/duet/<class> <class>/<id>.mp4 and copies the lists to
RAW. Resumable as `avsep download solos`: videos present are skipped, ids that cannot be
downloaded are listed with the reason in RAW/unavailable.json and skipped next time.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download", help="download the Solos or MUSIC videos (yt-dlp)",
        description="Download the Solos or MUSIC videos with yt-dlp.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    solos = datasets.add_parser(
        "solos", help="Solos (YouTube)", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    solos.add_argument("--out", type=Path, required=True, help="RAW folder")
    solos.add_argument("--ids", type=Path,
                       help="{Class: [video id, ...]} JSON (default: the packaged Solos list)")
    solos.add_argument("--url-template", default="https://www.youtube.com/watch?v={id}",
                       help="video URL with {id} for the id (default: YouTube)")
    solos.add_argument("--classes", nargs="+", help="only these classes")
    solos.add_argument("--limit", type=int, help="at most this many download attempts")
    solos.add_argument("--retry-unavailable", action="store_true",
                       help="try again the ids recorded in RAW/unavailable.json")
    solos.set_defaults(func=run)

    music = datasets.add_parser(
        "music", help="MUSIC / MUSIC-21 (YouTube; pass the published id lists)",
        epilog=MUSIC_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    music.add_argument("--out", type=Path, required=True, help="RAW folder")
    music.add_argument("--ids", type=Path, nargs="+", required=True, metavar="FILE",
                       help='id lists {"videos": {...}} (MUSIC_solo_videos.json, ...)')
    music.add_argument("--url-template", default="https://www.youtube.com/watch?v={id}",
                       help="video URL with {id} for the id (default: YouTube)")
    music.add_argument("--classes", nargs="+",
                       help="only solos of these classes and duets of two of them")
    music.add_argument("--limit", type=int, help="at most this many download attempts")
    music.add_argument("--retry-unavailable", action="store_true",
                       help="try again the ids recorded in RAW/unavailable.json")
    music.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from data_prep.download import download_music, download_solos

    download = download_music if args.dataset == "music" else download_solos
    try:
        summary = download(
            args.out, args.ids, url_template=args.url_template,
            retry_unavailable=args.retry_unavailable, classes=args.classes, limit=args.limit,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.line(), file=sys.stderr)
    if summary.unavailable or summary.known_unavailable:
        print(f"unavailable ids and reasons: {args.out / 'unavailable.json'}", file=sys.stderr)
    wanted = summary.downloaded or summary.present
    return 0 if wanted and not summary.failed else 1
