"""Telling a fault of the environment or of avsep's code from a fault of the input.

Code that processes users' files (preparation, evaluation, separation, localization) turns
every problem *with the input* into an explicit exception of its own (`BadInput` in data
preparation). Any other exception (a native library that fails to load, an ImportError, a
MemoryError, a bug) is not the input's fault: it must stop the work, name where it came
from and point to `avsep doctor`, and must never be recorded against the input.

Every exception about the input derives from `InputError`: the command line prints its
message as one line and exits with 2 (a bad input), while anything else exits with 1 and is
described by `describe_fault` (an environment fault names the library; a bug keeps its
traceback). `describe_fault` turns such an exception into a picklable `Fault` (worker
processes send it to the parent), and `Fault.message` is the text shown to the user.
"""

from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

OUR_PACKAGES = ("avsep", "data_prep")
DOCTOR_HINT = "Run `avsep doctor` to check the installation."


class InputError(Exception):
    """Something the user gave (a file, a folder, a flag, a config value) is wrong.

    The message is one line that names the file or value and says what is wrong with it;
    the command line prints it after 'error: ' and exits with 2, with no traceback.
    """


class UsageError(InputError, ValueError):
    """A value the user gave (a flag, an argument of a library call) is out of range or
    does not apply; the message names it."""


@dataclass(frozen=True)
class Fault:
    """An exception that is not about the input, described for the user.

    Attributes:
        error: '<ExceptionType>: <message>' (first 500 characters).
        origin: 'package/file.py:line' of the frame that raised it (inside a library when
            one is involved).
        library: the third-party package it came from ('torchaudio'), '' when it came from
            avsep's own code.
        kind: 'library' (a dependency failed), 'memory' (out of memory) or 'internal' (a bug
            in avsep).
        traceback: the formatted traceback, for bug reports.
    """

    error: str
    origin: str
    library: str
    kind: str
    traceback: str

    def message(self, doing: str) -> str:
        """Lines for the user; `doing` says what was going on ('preparing Cello/abc')."""
        if self.kind == "library":
            cause = f"the library {self.library} failed (at {self.origin})"
            advice = DOCTOR_HINT
        elif self.kind == "memory":
            cause = f"out of memory (at {self.origin})"
            advice = "Use fewer parallel jobs or a machine with more memory. " + DOCTOR_HINT
        else:
            cause = f"an internal error in avsep (at {self.origin})"
            advice = ("Please report it with the traceback above. " + DOCTOR_HINT)
        return (
            f"error: {doing} failed for a reason that is not about the input: {cause}\n"
            f"  {self.error}\n  {advice}"
        )

    def report(self, doing: str) -> None:
        """Print the traceback, then `message(doing)`, to stderr."""
        print(self.traceback, file=sys.stderr, end="")
        print(self.message(doing), file=sys.stderr)


def _package_of(filename: str) -> str | None:
    """The top-level package of a file installed in site-packages / dist-packages."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            index = parts.index(marker)
            if index + 1 < len(parts):
                return re.sub(r"\.py$", "", parts[index + 1])
    return None


def _short(filename: str, lineno: int | None) -> str:
    parts = Path(filename).parts
    for root in ("site-packages", "dist-packages", *OUR_PACKAGES):
        if root in parts:
            start = parts.index(root) + (1 if root in ("site-packages", "dist-packages") else 0)
            return f"{'/'.join(parts[start:])}:{lineno}"
    return f"{Path(filename).name}:{lineno}"


def _shared_library_name(message: str) -> str | None:
    """'torchaudio' from '.../torchaudio/lib/libtorchaudio.so: undefined symbol: ...'."""
    match = re.search(r"(?:site|dist)-packages/([A-Za-z0-9_]+)/", message)
    if match:
        return match.group(1)
    match = re.search(r"lib([A-Za-z0-9_]+?)(?:[-.][^/\s]*)?\.(?:so|dylib|dll)\b", message)
    return match.group(1) if match else None


def describe_fault(exc: BaseException) -> Fault:
    """Describe an exception that is not about the input: where it came from and why."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = " ".join(str(exc).split())[:500]
    error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in message:
        # e.g. "Could not load this library: ..." caused by "...: undefined symbol: ..."
        error += f" (caused by {type(cause).__name__}: {' '.join(str(cause).split())[:500]})"
    innermost = frames[-1] if frames else None
    origin = _short(innermost.filename, innermost.lineno) if innermost else "unknown"
    library = ""
    # The innermost frame inside a third-party package names the library that failed...
    for frame in reversed(frames):
        package = _package_of(frame.filename)
        if package is not None and package not in OUR_PACKAGES:
            library, origin = package, _short(frame.filename, frame.lineno)
            break
    if isinstance(exc, ImportError) and exc.name:
        library = library or exc.name.split(".")[0]
    if isinstance(exc, OSError):
        # ...unless a shared library failed to load: torch's loader raises for torchaudio.
        library = _shared_library_name(error) or library
    if isinstance(exc, MemoryError):
        kind = "memory"
    elif library:
        kind = "library"
    else:
        kind = "internal"
    return Fault(error=error, origin=origin, library=library, kind=kind, traceback=text)


def report_fault(exc: BaseException, doing: str) -> None:
    """Print the traceback and the user-facing explanation of a fault to stderr."""
    describe_fault(exc).report(doing)
