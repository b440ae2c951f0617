"""`avsep synth`: write offline stand-ins for Solos, URMP and MUSIC in their real raw layouts."""

from __future__ import annotations

import argparse
import sys

PRESET_NAMES = ("tiny", "bench", "hd")  # data_prep.synth.presets.PRESETS, without importing it here
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"

DESCRIPTION = """\
Make stand-in datasets offline: videos of procedural performers playing real music
(music21 corpus: Bach chorales, Monteverdi madrigals, Haydn/Mozart quartets) rendered with
FluidSynth through a General MIDI soundfont, written in the exact raw layouts of Solos and
URMP so that `avsep prepare` treats them like the real data. The pieces used for the Solos
layout and for the URMP layout never overlap. The same seed and options give byte-identical
WAVs. Sizes come from --preset (tiny: for tests, seconds to make; bench: enough to train a
small demo model on CPU, a few minutes to make; hd: a little of each layout at 1280 x 720, for
measuring preparation at the size of real videos); the size options override the preset.
"""

SOLOS_HELP = """\
Solos layout: OUT/<Class>/<youtube_id>.mp4 for the 13 classes (real ids from
solos_ids.json), H.264 + AAC 44.1 kHz, 25 fps, one performer per clip, plus
OUT/solos_timestamps.json ({Class: {id: [[start_frame, end_frame], ...]}} at 25 fps) listing
the playing spans; between spans the clip is silent and the instrument rests.
OUT/synth_manifest.json records the music and settings used.
"""

URMP_HELP = """\
URMP layout: OUT/NN_Title_c1_c2[...]/ with Vid_NN_Title_c1_c2.mp4 (players side by side at
equal widths in part order, 29.97 fps, the mixture as AAC audio), AuSep_k_<code>_NN_Title.wav
per player and AuMix_NN_Title_c1_c2.wav = sum of the stems (48 kHz float32 WAVs). Piece 02 is
a violin duet (vn_vn). OUT/synth_manifest.json records the music and settings used.
"""

MUSIC_HELP_HEAD = """\
MUSIC layout (as the MUSIC / MUSIC-21 id lists lay it out): OUT/solo/<class>/<id>.mp4, one
performer playing throughout, and OUT/duet/<class> <class>/<id>.mp4, two performers side by
side playing two parts of one piece (the URMP music pool); 25 fps, H.264 + AAC 44.1 kHz.
Also OUT/MUSIC21_solo_videos.json and OUT/MUSIC_duet_videos.json in the published format
({"videos": {key: [id, ...]}}), so `avsep download music --ids` can fetch the stand-in from
a local server, and OUT/synth_manifest.json. Ids depend on the class and clip number only.

General MIDI programs (0-based) of the classes; where General MIDI lacks the instrument,
the closest program stands in:
"""

ALL_HELP = "Both layouts of one preset: OUT/solos and OUT/urmp, sharing one worker pool."


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="bench",
                        help="sizes to start from (default: bench)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for music, timing and pictures (default: 0)")
    parser.add_argument("--soundfont", default=DEFAULT_SOUNDFONT, metavar="PATH",
                        help="General MIDI .sf2/.sf3 soundfont (default: %(default)s, from the "
                             "Debian package fluid-soundfont-gm)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="worker processes, one file each at a time (default: CPU count)")
    parser.add_argument("--level-dbfs", type=float, default=-20.0, metavar="DB",
                        help="loudness of every stem over its active part (default: -20)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _families(parser: argparse.ArgumentParser) -> None:
    """--families and --hold-out: which drawing families the videos are drawn in."""
    from data_prep.synth.families import FAMILIES

    parser.add_argument(
        "--families", nargs="+", choices=FAMILIES, default=None, metavar="FAMILY",
        help="drawing families to draw the videos in, each video in one of them (dealt at "
             "random and evenly: per class for Solos, over the pieces for URMP): classic "
             "(the original look), lineart (ink outlines on paper, seated whole figures), "
             "shaded (lit volumes, a close camera, a room under a side light), pictogram "
             "(flat silhouettes, small standing figures, a poster background) "
             f"(default: classic; choices: {', '.join(FAMILIES)})")
    parser.add_argument(
        "--hold-out", choices=FAMILIES, default=None, metavar="FAMILY",
        help="leave one family out: draw in every family of --families (all families when "
             "not given) except FAMILY, for training; its test set is made with "
             "--families FAMILY. The fixed rotation holds out classic, lineart, shaded and "
             "pictogram in turn (docs/unseen-looks.md)")


def _chosen_families(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The families asked for (None: the preset's)."""
    from data_prep.synth.families import FAMILIES, split_families

    if args.hold_out is not None:
        return split_families(args.families or FAMILIES, args.hold_out)[0]
    return tuple(args.families) if args.families else None


def _frame_height(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--frame-height", type=int, default=None, metavar="PX",
                        help=f"video height in pixels (default: 240); {what}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="make offline stand-ins for Solos, URMP and MUSIC (same raw layouts)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    layouts = parser.add_subparsers(dest="layout", metavar="LAYOUT")
    _register_solos(layouts)
    _register_urmp(layouts)
    _register_music(layouts)
    both = layouts.add_parser("all", help=ALL_HELP, description=ALL_HELP)
    _common(both)
    _families(both)
    both.set_defaults(func=run_all)
    parser.set_defaults(func=lambda args: _usage(parser))


def _layout(layouts: argparse._SubParsersAction, name: str, help: str,
            description: str) -> argparse.ArgumentParser:
    """The subcommand of one layout, with the options every layout takes."""
    parser: argparse.ArgumentParser = layouts.add_parser(
        name, help=help, description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser)
    return parser


def _register_solos(layouts: argparse._SubParsersAction) -> None:
    solos = _layout(layouts, "solos", "Solos layout: one performer per clip", SOLOS_HELP)
    solos.add_argument("--clips-per-class", type=int, default=None, metavar="N",
                       help="clips per class (tiny: 1, bench: 16)")
    solos.add_argument("--seconds", type=float, default=None, metavar="S",
                       help="length of every clip (tiny: 8, bench: 18)")
    solos.add_argument("--music-pieces", type=int, default=None, metavar="N",
                       help="pieces of the Solos music pool to draw excerpts from "
                            "(tiny: 4, bench: 40)")
    _frame_height(solos, "the width is 4/3 of it")
    _families(solos)
    solos.set_defaults(func=run_solos)


def _register_urmp(layouts: argparse._SubParsersAction) -> None:
    urmp = _layout(layouts, "urmp", "URMP layout: ensemble pieces with separate stems",
                   URMP_HELP)
    urmp.add_argument("--pieces", type=int, default=None, metavar="N",
                      help="number of pieces (tiny: 3, bench: 10)")
    urmp.add_argument("--seconds", type=float, default=None, metavar="S",
                      help="longest piece; shorter scores are used whole (tiny: 12, bench: 45)")
    urmp.add_argument("--min-players", type=int, default=None, metavar="N",
                      help="smallest ensemble, 2..5 (default: 2)")
    urmp.add_argument("--max-players", type=int, default=None, metavar="N",
                      help="largest ensemble, 2..5 (default: 3); duets are the most common")
    urmp.add_argument("--same-instrument", nargs="+", default=None, metavar="CLASS",
                      help="a duet of two players of each of these classes, pieces 02, 03, "
                           "... (default: Violin, one vn_vn duet as URMP has); e.g. Violin "
                           "Cello Flute Trumpet for a same-instrument evaluation set")
    _frame_height(urmp, "each player's cell is 5/6 of it wide")
    _families(urmp)
    urmp.add_argument("--style", choices=["default", "studio"], default=None,
                      help="how the videos look: default (the look of every training "
                           "stand-in: cluttered, textured, panning backgrounds), or studio, "
                           "a look the model never trains on, for evaluation only: a dark "
                           "stage with spotlights, a still camera, concert dress, smaller "
                           "players, instruments in another palette")
    urmp.add_argument("--music", choices=["urmp", "solos"], default="urmp",
                      help="music pool: urmp (default; music no Solos-layout clip plays, for "
                           "held-out evaluation) or solos (the training music, for "
                           "validation pieces that share no music with the held-out ones)")
    urmp.set_defaults(func=run_urmp)


def _register_music(layouts: argparse._SubParsersAction) -> None:
    music = _layout(layouts, "music", "MUSIC layout: solo and duet videos", _music_help())
    music.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                       help="MUSIC-21 classes to make (tiny: 6 classes, bench: all 21)")
    music.add_argument("--clips-per-class", type=int, default=None, metavar="N",
                       help="solo videos per class (tiny: 2, bench: 8)")
    music.add_argument("--duets", type=int, default=None, metavar="N",
                       help="duet videos (tiny: 2, bench: 6)")
    music.add_argument("--seconds", type=float, default=None, metavar="S",
                       help="length of every solo and longest duet (tiny: 7, bench: 16)")
    _frame_height(music, "a multiple of 12; solos are 4/3 of it wide")
    music.set_defaults(func=run_music)


def _music_help() -> str:
    from data_prep.synth.instruments import MUSIC_INSTRUMENTS, MUSIC_PROGRAM_NAMES

    rows = [f"  {name:<16} {inst.program:>3}  {MUSIC_PROGRAM_NAMES[name]}"
            for name, inst in MUSIC_INSTRUMENTS.items()]
    return MUSIC_HELP_HEAD + "\n".join(rows) + "\n"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _options(args: argparse.Namespace):
    import os

    from data_prep.synth import RunOptions

    return RunOptions(seed=args.seed, soundfont=args.soundfont,
                      jobs=args.jobs if args.jobs is not None else os.cpu_count() or 1, level_dbfs=args.level_dbfs,
                      progress=not args.quiet)


def _run(make) -> int:
    from data_prep.synth import SoundfontError

    try:
        summaries = make()
    except (SoundfontError, ValueError) as exc:
        print(f"avsep synth: error: {exc}", file=sys.stderr)
        return 2
    for summary in summaries:
        print(summary)
    return 0


def run_solos(args: argparse.Namespace) -> int:
    def make():
        from data_prep.synth import generate_solos, solos_settings

        settings = solos_settings(args.preset, clips_per_class=args.clips_per_class,
                                  seconds=args.seconds, music_pieces=args.music_pieces,
                                  frame_height=args.frame_height,
                                  families=_chosen_families(args))
        return [generate_solos(args.out, settings, _options(args))]

    return _run(make)


def run_urmp(args: argparse.Namespace) -> int:
    def make():
        from data_prep.synth import generate_urmp, urmp_settings

        settings = urmp_settings(args.preset, pieces=args.pieces, seconds=args.seconds,
                                 min_players=args.min_players, max_players=args.max_players,
                                 frame_height=args.frame_height, style=args.style,
                                 families=_chosen_families(args),
                                 same_instrument=(tuple(args.same_instrument)
                                                  if args.same_instrument else None))
        return [generate_urmp(args.out, settings, _options(args), music=args.music)]

    return _run(make)


def run_music(args: argparse.Namespace) -> int:
    def make():
        from data_prep.synth import generate_music, music_settings

        settings = music_settings(
            args.preset, classes=tuple(args.classes) if args.classes else None,
            clips_per_class=args.clips_per_class, duets=args.duets, seconds=args.seconds,
            frame_height=args.frame_height)
        return [generate_music(args.out, settings, _options(args))]

    return _run(make)


def run_all(args: argparse.Namespace) -> int:
    def make():
        from data_prep.synth import generate

        return list(generate(args.out, args.preset, _options(args),
                             _chosen_families(args)).values())

    return _run(make)
