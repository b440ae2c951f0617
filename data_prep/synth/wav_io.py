"""Float32 WAV files that are byte-identical for identical samples.

libsndfile adds a PEAK chunk with a time stamp to float WAVs, so two writes of the same
samples differ; it is switched off (SFC_SET_ADD_PEAK_CHUNK) before any sample is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

SUBTYPE = "FLOAT"
_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # from libsndfile's sndfile.h


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float32 audio (T,) as a 32-bit float WAV; the file appears when complete."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with sf.SoundFile(partial, "w", sample_rate, 1, subtype=SUBTYPE, format="WAV") as file:
        if sf._snd.sf_command(file._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0) != 0:
            raise RuntimeError(f"{path}: libsndfile refused to drop the PEAK chunk")
        file.write(np.asarray(audio, np.float32))
    os.replace(partial, path)
