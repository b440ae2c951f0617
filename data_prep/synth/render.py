"""Note lists -> float audio with libfluidsynth, in process and deterministic.

FluidSynth is driven through pyfluidsynth's ctypes handle and asked for float output, which is
linear (no dithering, no clipping). Settings that break "stems sum to the mix" or repeatable
renders are fixed here:
- reverb and chorus are off (they are shared effects: with them on, separately rendered
  parts do not add up to the rendered ensemble);
- note events are placed on FluidSynth's 64-sample block boundaries and every render is a
  whole number of blocks, so a render does not depend on what was rendered before it;
- every program is primed once (every key x several velocities) after the soundfont is
  loaded, because the first use of a sample renders slightly differently (~ -40 dB);
- polyphony is 1024 so priming many programs never steals voices.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
BLOCK = 64  # FluidSynth's internal block size: events take effect on block boundaries
# Debian packages that install the common General MIDI soundfonts, for error messages.
SOUNDFONT_PACKAGES = {
    "FluidR3_GM.sf2": "fluid-soundfont-gm",
    "TimGM6mb.sf2": "timgm6mb-soundfont",
    "MuseScore_General.sf2": "musescore-general-soundfont",
    "MuseScore_General.sf3": "musescore-general-soundfont-small",
}


class SoundfontError(FileNotFoundError):
    """The soundfont file is missing or FluidSynth cannot load it."""


def check_soundfont(path: str | Path) -> Path:
    """Return `path` as a Path if it is a readable file; otherwise raise SoundfontError
    with a message that says which Debian package provides the usual soundfonts."""
    path = Path(path)
    if path.is_file():
        return path
    package = SOUNDFONT_PACKAGES.get(path.name)
    hint = (
        f"it is installed by the Debian package {package} (sudo apt-get install {package})"
        if package
        else "pass a General MIDI soundfont with --soundfont, e.g. "
        f"{DEFAULT_SOUNDFONT} from the Debian package fluid-soundfont-gm"
    )
    raise SoundfontError(f"soundfont not found: {path}; {hint}")


Track = tuple[np.ndarray, int]  # (notes (N, 4) [start_s, end_s, pitch, velocity], GM program)


class FluidRenderer:
    """A FluidSynth instance with one soundfont loaded, rendering note lists to mono float32.

    Args:
        soundfont: path of a General MIDI .sf2/.sf3 file.
        sample_rate: output rate in Hz.
        programs: GM programs to prime (all that will be rendered).
        gain: FluidSynth master gain (output is linear in it; levels are normalised later).
    """

    def __init__(
        self,
        soundfont: str | Path,
        sample_rate: int,
        programs: Iterable[int],
        gain: float = 0.5,
    ) -> None:
        import fluidsynth

        path = check_soundfont(soundfont)
        self.sample_rate = int(sample_rate)
        self._synth = fluidsynth.Synth(
            gain=gain,
            samplerate=self.sample_rate,
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 1024},
        )
        self._sfid = self._synth.sfload(str(path))
        if self._sfid < 0:
            self._synth.delete()
            raise SoundfontError(f"{path}: FluidSynth could not load this soundfont")
        self._write_float = fluidsynth._fl.fluid_synth_write_float
        self._write_float.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
        ]
        self._write_float.restype = ctypes.c_int
        self._prime(sorted(set(programs)))

    def close(self) -> None:
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    def __enter__(self) -> FluidRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prime(self, programs: Sequence[int]) -> None:
        """Play every key at several velocities once per program (see the module docstring)."""
        step = 0.004
        keys_velocities = [(k, v) for v in (1, 16, 32, 48, 64, 80, 96, 112, 127) for k in range(128)]
        times = np.arange(len(keys_velocities)) * step
        notes = np.array(
            [[t, t + 0.01, k, v] for t, (k, v) in zip(times, keys_velocities)], dtype=np.float64
        )
        length = int((times[-1] + 0.1) * self.sample_rate)
        for program in programs:
            self.render([(notes, program)], length)

    def _write(self, left: np.ndarray, right: np.ndarray, start: int, stop: int) -> None:
        if stop > start:
            self._write_float(
                self._synth.synth, stop - start,
                left[start:].ctypes.data, 0, 1, right[start:].ctypes.data, 0, 1,
            )

    def render(self, tracks: Sequence[Track], num_samples: int) -> np.ndarray:
        """Render tracks together (one MIDI channel each) to mono float32 of shape (num_samples,).

        One track renders a stem; the sum of separately rendered stems equals the joint
        render of the same tracks up to float rounding (reverb and chorus are off).
        """
        if self._synth is None:
            raise RuntimeError("renderer is closed")
        if len(tracks) > 15:
            raise ValueError(f"at most 15 tracks per render, got {len(tracks)}")
        total = -(-int(num_samples) // BLOCK) * BLOCK
        left = np.zeros(total, np.float32)
        right = np.zeros(total, np.float32)
        events: list[tuple[int, int, int, int, int]] = []  # (sample, on?, channel, key, velocity)
        for channel, (notes, program) in enumerate(tracks):
            # channel 9 is percussion in General MIDI; skip it
            channel = channel if channel < 9 else channel + 1
            self._synth.program_select(channel, self._sfid, 0, int(program))
            for start_s, end_s, pitch, velocity in np.asarray(notes, dtype=np.float64):
                on = int(round(start_s * self.sample_rate / BLOCK)) * BLOCK
                off = max(int(round(end_s * self.sample_rate / BLOCK)) * BLOCK, on + BLOCK)
                if on >= total:
                    continue
                events.append((on, 1, channel, int(pitch), int(velocity)))
                events.append((off, 0, channel, int(pitch), 0))
        events.sort()  # at equal times note-offs (0) come before note-ons (1)
        cursor = 0
        for sample, is_on, channel, key, velocity in events:
            sample = min(sample, total)
            self._write(left, right, cursor, sample)
            cursor = max(cursor, sample)
            if is_on:
                self._synth.noteon(channel, key, velocity)
            else:
                self._synth.noteoff(channel, key)
        self._write(left, right, cursor, total)
        self._reset()
        return (0.5 * (left[:num_samples] + right[:num_samples])).astype(np.float32)

    def _reset(self) -> None:
        # Silence every voice and run the synth on until they are freed, so the next render
        # starts from the same state whatever came before.
        self._synth.system_reset()
        scratch = np.zeros(BLOCK * 256, np.float32)
        self._write(scratch, scratch.copy(), 0, len(scratch))
