"""Note lists -> float audio with libfluidsynth, in process and deterministic.

FluidSynth is driven through pyfluidsynth's ctypes handle and asked for float output, which is
linear (no dithering, no clipping). What makes renders exactly repeatable, whatever was
rendered before in the same process (measured: otherwise renders differ by up to ~1e-4):
- reverb and chorus are off (shared effects: with them on, separately rendered parts do not
  add up to the ensemble);
- every render uses a fresh synth that shares the one loaded soundfont, because a synth
  remembers state across renders even after a reset (previous notes per channel, voice slots);
- note events are placed on FluidSynth's 64-sample block boundaries and renders are whole
  blocks long (events only take effect at block boundaries anyway);
- every program is primed once after loading (every key at several velocities), so that
  FluidSynth's lazy set-up of a sample on its first use cannot make a first render differ
  from later ones;
- polyphony is 1024 so dense renders never steal voices.
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
_CHANNELS = [c for c in range(16) if c != 9]  # channel 9 (10 in MIDI terms) is percussion
_FLUID_WARN = 2


def _bind(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object):
    function = getattr(lib, name)
    function.argtypes = list(argtypes)
    function.restype = restype
    return function


class FluidRenderer:
    """One loaded soundfont, rendering note lists to mono float32 audio.

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
        lib = fluidsynth._fl
        void_p, c_int = ctypes.c_void_p, ctypes.c_int
        # Fresh synths warn about every channel before a soundfont is attached: keep errors only.
        _bind(lib, "fluid_set_log_function", void_p, c_int, void_p, void_p)(_FLUID_WARN, None, None)
        self._write_float = _bind(
            lib, "fluid_synth_write_float", c_int,
            void_p, c_int, void_p, c_int, c_int, void_p, c_int, c_int,
        )
        self._add_sfont = _bind(lib, "fluid_synth_add_sfont", c_int, void_p, void_p)
        self._remove_sfont = _bind(lib, "fluid_synth_remove_sfont", c_int, void_p, void_p)
        get_sfont = _bind(lib, "fluid_synth_get_sfont_by_id", void_p, void_p, c_int)
        self._fluidsynth = fluidsynth
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self._owner = self._new_synth()  # owns the loaded soundfont
        sfid = self._owner.sfload(str(path))
        if sfid < 0:
            self._owner.delete()
            raise SoundfontError(f"{path}: FluidSynth could not load this soundfont")
        self._sfid = sfid
        self._sfont = get_sfont(self._owner.synth, sfid)
        self._prime(sorted(set(programs)))

    def _new_synth(self):
        return self._fluidsynth.Synth(
            gain=self.gain, samplerate=self.sample_rate, channels=16,
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 1024},
        )

    def close(self) -> None:
        if self._owner is not None:
            self._owner.delete()
            self._owner = None

    def _prime(self, programs: Sequence[int]) -> None:
        """Start every key at several velocities once per program (see the module docstring).

        The lazy per-sample set-up happens when a voice starts, so notes are cut after one
        block, which keeps priming fast (~0.2 s for 13 programs).
        """
        synth = self._owner
        block = np.zeros(BLOCK, np.float32), np.zeros(BLOCK, np.float32)
        for program in programs:
            synth.program_select(0, self._sfid, 0, int(program))
            for key in range(128):
                for velocity in (1, 16, 32, 48, 64, 80, 96, 112, 127):
                    synth.noteon(0, key, velocity)
                self._write(synth, *block, 0, BLOCK)
                synth.all_sounds_off(0)
                self._write(synth, *block, 0, BLOCK)

    def _write(self, synth, left: np.ndarray, right: np.ndarray, start: int, stop: int) -> None:
        if stop > start:
            self._write_float(
                synth.synth, stop - start,
                left[start:].ctypes.data, 0, 1, right[start:].ctypes.data, 0, 1,
            )

    def render(self, tracks: Sequence[Track], num_samples: int) -> np.ndarray:
        """Render tracks together (one MIDI channel each) to mono float32 of shape (num_samples,).

        One track renders one stem. The same tracks always give the same samples, bit for bit.
        """
        if self._owner is None:
            raise RuntimeError("renderer is closed")
        if len(tracks) > len(_CHANNELS):
            raise ValueError(f"at most {len(_CHANNELS)} tracks per render, got {len(tracks)}")
        total = -(-int(num_samples) // BLOCK) * BLOCK
        left = np.zeros(total, np.float32)
        right = np.zeros(total, np.float32)
        synth = self._new_synth()
        try:
            sfid = self._add_sfont(synth.synth, self._sfont)
            events: list[tuple[int, int, int, int, int]] = []  # (sample, on?, channel, key, vel)
            for channel, (notes, program) in zip(_CHANNELS, tracks):
                synth.program_select(channel, sfid, 0, int(program))
                for start_s, end_s, pitch, velocity in np.asarray(notes, dtype=np.float64):
                    on = round(start_s * self.sample_rate / BLOCK) * BLOCK
                    off = max(round(end_s * self.sample_rate / BLOCK) * BLOCK, on + BLOCK)
                    if on >= total:
                        continue
                    events.append((on, 1, channel, int(pitch), int(velocity)))
                    events.append((off, 0, channel, int(pitch), 0))
            events.sort()  # at equal times note-offs (0) come before note-ons (1)
            cursor = 0
            for sample, is_on, channel, key, velocity in events:
                sample = min(sample, total)
                self._write(synth, left, right, cursor, sample)
                cursor = max(cursor, sample)
                if is_on:
                    synth.noteon(channel, key, velocity)
                else:
                    synth.noteoff(channel, key)
            self._write(synth, left, right, cursor, total)
        finally:
            # detach the shared soundfont first: deleting a synth frees the fonts it holds
            self._remove_sfont(synth.synth, self._sfont)
            synth.delete()
        return (0.5 * (left[:num_samples] + right[:num_samples])).astype(np.float32)
