"""Media decoding, one home for preparation, evaluation and inference: probe a file, decode
its audio and frames, resample, resize for storage, encode JPEG.

One decoder and one resampler for every dataset and for users' own videos, so that Solos
videos, URMP stems, URMP mixtures and a video given to `avsep separate` line up sample for
sample:

- containers are probed with PyAV (stream presence, sizes, rates, declared durations);
- video frames and mp4 audio are decoded with decord, audio at the file's *native* rate
  (decord's own resampling delays audio by ~16 samples at 44.1 kHz -> 11025 Hz);
  preparation decodes frames with PyAV instead (`avsep.stream_frames.StreamFrameReader`:
  the same frames and pixels, less decoding work);
- WAVs are read with soundfile;
- every track is resampled with `torchaudio.functional.resample` (a zero-phase windowed
  sinc), whatever its source.

Anything that cannot be decoded raises `BadInput`, whose message is shown to the user and
written to the report; nothing here ever substitutes zeros for missing data.

The compiled libraries (PyAV, decord, soundfile, OpenCV, torch/torchaudio) are imported where
they are used, not at the top: this module is imported by every command and by the
preparation workers, and a broken build of one of them must fail only the work that needs it,
named as an environment fault (the preparation runner imports the decoders itself before it
starts its workers, to report such a fault once).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsep.faults import InputError


class BadInput(InputError):
    """A source that cannot be prepared.

    Args:
        code: a short key for counting in the summary (e.g. 'no_audio', 'truncated').
        message: a one-line reason for the user (str(exc)).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VideoStreamInfo:
    width: int
    height: int
    fps: float
    duration_s: float


@dataclass(frozen=True)
class AudioStreamInfo:
    sample_rate: int
    channels: int
    duration_s: float


@dataclass(frozen=True)
class MediaInfo:
    """What a container declares (before decoding anything)."""

    duration_s: float
    video: VideoStreamInfo | None
    audio: AudioStreamInfo | None


def _stream_duration(stream, container_duration_s: float) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container_duration_s


def probe(path: str | Path) -> MediaInfo:
    """Streams, sizes, rates and declared durations of a media file.

    Raises:
        BadInput: the file is missing, empty, not a media container, or unreadable.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise BadInput("missing", "file not found")
    if path.stat().st_size == 0:
        raise BadInput("empty_file", "empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            total = container.duration / 1e6 if container.duration else 0.0
            video = audio = None
            if container.streams.video:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or 0
                video = VideoStreamInfo(
                    width=int(stream.codec_context.width),
                    height=int(stream.codec_context.height),
                    fps=float(rate),
                    duration_s=_stream_duration(stream, total),
                )
            if container.streams.audio:
                stream = container.streams.audio[0]
                audio = AudioStreamInfo(
                    sample_rate=int(stream.codec_context.sample_rate),
                    channels=int(stream.codec_context.channels),
                    duration_s=_stream_duration(stream, total),
                )
    except av.error.FFmpegError as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        message = f"not a readable media file (corrupt or truncated?): {detail}"
        raise BadInput("unreadable", message) from None
    return MediaInfo(duration_s=total, video=video, audio=audio)


def _truncation_tolerance_s(declared_s: float) -> float:
    # Encoders pad the last audio frame and containers round durations: allow a little slack,
    # but a file cut short loses far more than this.
    return max(0.5, 0.02 * declared_s)


def decode_audio(path: str | Path, info: AudioStreamInfo) -> np.ndarray:
    """The whole audio track of a video file as float32 mono at its native rate.

    Channels are averaged here (not by the decoder) so that no hidden resampler or
    rematrixing step sits between the file and the shards.

    Returns:
        (T,) float32 at `info.sample_rate`.

    Raises:
        BadInput: decoding fails or stops well before the declared duration.
    """
    import decord

    try:
        reader = decord.AudioReader(str(path), ctx=decord.cpu(0), sample_rate=-1, mono=False)
        channels = reader[:].asnumpy()
    except (decord.DECORDError, RuntimeError) as exc:  # messages carry C++ context
        raise BadInput("decode_error", f"audio decoding failed: {_first_line(exc)}") from None
    audio = np.ascontiguousarray(channels.mean(axis=0), dtype=np.float32)
    decoded_s = len(audio) / info.sample_rate
    if decoded_s + _truncation_tolerance_s(info.duration_s) < info.duration_s:
        raise BadInput(
            "truncated",
            f"audio stops at {decoded_s:.2f} s but the file declares {info.duration_s:.2f} s "
            "(truncated or corrupt file)"
        )
    return audio


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV (or any soundfile format) as float32 mono and its rate.

    Returns:
        ((T,) float32, sample_rate)
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise BadInput("missing", "file not found")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as exc:
        raise BadInput("unreadable", f"not a readable audio file: {_first_line(exc)}") from None
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample with torchaudio's zero-phase windowed-sinc resampler (no delay).

    Args:
        audio: (T,) float32.

    Returns:
        (ceil(T * rate_out / rate_in),) float32.
    """
    if rate_in == rate_out:
        return np.array(audio, dtype=np.float32, copy=True)
    import torch
    import torchaudio.functional as F

    with torch.no_grad():
        out = F.resample(torch.from_numpy(np.ascontiguousarray(audio)), rate_in, rate_out)
    return out.numpy().astype(np.float32, copy=False)


def peak_dbfs(audio: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


class TimedFrames:
    """What a frame reader knows of its video's frames: their display intervals,
    `frame_start_s` and `frame_end_s` (N,) seconds, set by the reader."""

    frame_start_s: np.ndarray
    frame_end_s: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_start_s)

    @property
    def end_s(self) -> float:
        """End of the last frame's display interval (the video's decodable duration)."""
        return float(self.frame_end_s[-1])

    def nearest_frames(self, times_s: np.ndarray) -> np.ndarray:
        """Index of the frame whose presentation time is nearest to each time.

        Args:
            times_s: (N,) seconds.

        Returns:
            (N,) int64 frame indices.
        """
        return nearest_frames(self.frame_start_s, times_s)


class FrameReader(TimedFrames):
    """Frames of a video file picked by presentation time, decoded with decord.

    Args:
        path: the video file.
        threads: decoder threads (1 when several files are decoded in parallel).
        size: (width, height) to scale frames to while decoding (FFmpeg's scaler; about
            twice as fast as converting full HD frames and resizing them afterwards), or
            None for the native size.
    """

    def __init__(
        self, path: str | Path, threads: int = 1, size: tuple[int, int] | None = None
    ) -> None:
        import decord

        self.path = Path(path)
        self._decord = decord
        width, height = size if size is not None else (-1, -1)
        try:
            self._reader = decord.VideoReader(
                str(path), ctx=decord.cpu(0), num_threads=threads, width=width, height=height
            )
            stamps = self._reader.get_frame_timestamp(range(len(self._reader)))
        except (decord.DECORDError, RuntimeError) as exc:
            raise BadInput("decode_error", f"video decoding failed: {_first_line(exc)}") from None
        if len(stamps) == 0:
            raise BadInput("no_frames", "video stream has no frames")
        self.frame_start_s = np.asarray(stamps[:, 0], dtype=np.float64)
        self.frame_end_s = np.asarray(stamps[:, 1], dtype=np.float64)


    def read(
        self, indices: Sequence[int] | np.ndarray, batch: int = 16
    ) -> Iterator[np.ndarray]:
        """Decode frames in order, `batch` at a time (bounded memory for HD video).

        Yields:
            (H, W, 3) uint8 RGB frames, one per index.
        """
        for begin in range(0, len(indices), batch):
            wanted = [int(i) for i in indices[begin:begin + batch]]
            try:
                frames = self._reader.get_batch(wanted).asnumpy()
            except (self._decord.DECORDError, RuntimeError) as exc:
                raise BadInput(
                    "decode_error",
                    f"video decoding failed near {self.frame_start_s[wanted[0]]:.2f} s: "
                    f"{_first_line(exc)}"
                ) from None
            yield from frames


def nearest_frames(starts: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """(N,) indices into the sorted frame start times `starts` nearest to `times_s` (N,)."""
    right = np.clip(np.searchsorted(starts, times_s), 0, len(starts) - 1)
    left = np.clip(right - 1, 0, len(starts) - 1)
    pick_left = np.abs(times_s - starts[left]) <= np.abs(starts[right] - times_s)
    return np.where(pick_left, left, right).astype(np.int64)


def short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is `short_side`, aspect kept.

    >>> short_side_size(1920, 1080, 256)
    (455, 256)
    """
    scale = short_side / min(width, height)
    if height <= width:
        return max(1, round(width * scale)), short_side
    return short_side, max(1, round(height * scale))


# The short side of stored frames (`avsep prepare --short-side`); inference resizes a user's
# frames to it first so that the model sees frames made the way its training frames were.
STORED_SHORT_SIDE = 256


def resize_for_storage(image: np.ndarray, short_side: int = STORED_SHORT_SIDE) -> np.ndarray:
    """Resize a decoded frame so that min(H, W) == short_side, keeping the aspect ratio.

    This is the first of two resizes every frame goes through: decoded video (often HD) ->
    the stored size, with area averaging (no aliasing when shrinking a lot; bilinear-like when
    growing). The second, `avsep.frames.resize_short_side` (bicubic, as The Sound of Pixels'
    torchvision Resize), makes the model's input from a stored-size frame.

    Args:
        image: (H, W, 3) uint8.

    Returns:
        (H', W', 3) uint8 with min(H', W') == short_side.
    """
    import cv2

    height, width = image.shape[:2]
    if min(height, width) == short_side:
        return image
    size = short_side_size(width, height, short_side)
    shrink = short_side < min(height, width)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image."""
    import cv2

    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


# FFmpeg's error codes that reach us as bare numbers inside decord's messages
# (`av_read_frame failed with 1094995529`, `(-1094995529 vs. 0)`): FFERRTAG values.
_FFMPEG_ERRORS = {
    1094995529: "invalid data found when decoding (corrupt file)",  # AVERROR_INVALIDDATA
    541478725: "unexpected end of file (truncated file)",  # AVERROR_EOF
    1414092869: "the file asks for a decoder FFmpeg does not have",  # AVERROR_DECODER_NOT_FOUND
}


def _first_line(exc: BaseException) -> str:
    """decord errors carry a C++ stack and FFmpeg's error codes as numbers; keep the one
    meaningful line, with a known code said in words."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    located = [line for line in lines if "] " in line and ".cc:" in line]
    message = located[0] if located else (lines[0] if lines else type(exc).__name__)
    # "[04:36:42] /path/src/audio/audio_reader.cc:136: Can't find audio stream" -> the
    # tail; a rethrown error carries several such locations in a row.
    message = re.sub(r"\[[^\]]*\] \S+\.cc:\d+: ", "", message)
    # "Check failed: call(...) >= 0 (-22 vs. 0) Error while feeding the filter graph"
    check = re.match(r"Check failed: .*\((-?\d+) vs\. -?\d+\)\s*(.*)", message)
    if check:
        message = check.group(2) or f"FFmpeg error {check.group(1)}"
    for code in re.findall(r"-?\d{6,}", str(exc)):
        if abs(int(code)) in _FFMPEG_ERRORS:
            return _FFMPEG_ERRORS[abs(int(code))]
    return message[:300]
