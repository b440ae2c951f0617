"""Frames picked by time from a video file, decoded in one pass with PyAV: what preparation
reads, where most of a video's frames are passed over (`StreamFrameReader`). The frames and
pixels equal `avsep.media.FrameReader`'s; the compiled decoder is imported where it is used,
as in `avsep.media`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avsep.media import BadInput, TimedFrames


class StreamFrameReader(TimedFrames):
    """Frames of a video file picked by presentation time, decoded in order with PyAV: what
    preparation uses, where most frames of a video are passed over.

    Gives the frames `FrameReader` gives (the same indices, timestamps and pixels: FFmpeg's
    bilinear scaler, as decord's filter graph uses it), at less decoding work:

    - only frames to be kept are scaled and converted to RGB;
    - frames that no other frame refers to (most B-frames of H.264) are not decoded at all
      unless they are kept (`keep` names every index the caller will ask for);
    - a gap that spans a keyframe is jumped over by seeking to it.

    Args:
        path: the video file.
        threads: decoder threads (1 when several files are decoded in parallel).
        size: (width, height) to scale kept frames to, or None for the native size.
        keep: every frame index that will be read, or None (then every frame is decoded);
            can also be given later with `keep_only`.

    `read` must be called with indices in increasing order across calls (sorted batches
    that may repeat the last index of the previous batch); going back seeks.
    """

    def __init__(self, path: str | Path, threads: int = 1, size: tuple[int, int] | None = None,
                 keep: Sequence[int] | np.ndarray | None = None) -> None:
        import av

        self.path = Path(path)
        self._av = av
        try:
            self._container = av.open(str(path))
            stream = self._container.streams.video[0]
            packets = [(packet.pts, packet.is_keyframe)
                       for packet in self._container.demux(stream) if packet.pts is not None]
        except (av.error.FFmpegError, IndexError) as exc:
            raise BadInput("decode_error", f"video decoding failed: {exc}") from None
        if not packets:
            raise BadInput("no_frames", "video stream has no frames")
        if stream.time_base is None:
            raise BadInput("decode_error", "video stream has no time base")
        self._stream = stream
        pts = np.array(sorted(p for p, _ in packets), dtype=np.int64)
        base = float(stream.time_base)
        # decord's timestamps (float32 seconds of pts * time_base), so that frames are picked
        # exactly as `FrameReader` picks them.
        duration = np.diff(pts, append=pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1))
        self.frame_start_s = (pts * base).astype(np.float32).astype(np.float64)
        self.frame_end_s = ((pts + duration) * base).astype(np.float32).astype(np.float64)
        self._pts = pts
        self._index_of = {int(p): i for i, p in enumerate(pts)}
        self._keyframes = np.array(sorted(self._index_of[p] for p, key in packets if key),
                                   dtype=np.int64)
        self._keep: set[int] | None = None
        if keep is not None:
            self.keep_only(keep)
        self._size = size
        self._graph: Any = None  # av.filter.Graph, made at the first kept frame
        context = stream.codec_context
        context.thread_count = max(1, threads)
        if threads > 1:
            context.thread_type = "AUTO"
        self._frames: Iterator = iter(())
        self._position = -1  # index of the last frame taken from the decoder
        self._pending: dict[int, np.ndarray] = {}
        self._seek(0)


    def keep_only(self, indices: Sequence[int] | np.ndarray) -> None:
        """Name every frame index that will be read (frames nothing refers to and that are
        not among them are then not decoded)."""
        self._keep = {int(self._pts[i]) for i in indices}

    def close(self) -> None:
        self._container.close()

    def _seek(self, index: int) -> None:
        """Restart decoding at the keyframe at or before frame `index`."""
        key = int(self._keyframes[max(0, np.searchsorted(self._keyframes, index, "right") - 1)]
                  ) if len(self._keyframes) else 0
        pts = int(self._pts[key])
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._decode()
        self._position = -1
        self._pending.clear()

    def _decode(self) -> Iterator:
        context = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            if self._keep is not None:
                # Frames nothing refers to need no decoding unless they are kept.
                context.skip_frame = "DEFAULT" if packet.pts in self._keep else "NONREF"
            yield from packet.decode()

    def _convert(self, frame) -> np.ndarray:
        if self._graph is None:
            graph = self._av.filter.Graph()
            source = graph.add_buffer(template=self._stream)
            chain = [source]
            if self._size is not None:
                chain.append(graph.add("scale", f"{self._size[0]}:{self._size[1]}:flags=bilinear"))
            chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
            for a, b in itertools.pairwise(chain):
                a.link_to(b)
            graph.configure()
            self._graph = graph
        self._graph.push(frame)
        image: np.ndarray = self._graph.pull().to_ndarray()
        return image

    def read(self, indices: Sequence[int] | np.ndarray) -> Iterator[np.ndarray]:
        """Decode frames in order.

        Yields:
            (H, W, 3) uint8 RGB frames, one per index.
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            return
        first = wanted[0]
        key_between = np.any((self._keyframes > self._position) & (self._keyframes <= first))
        if first < self._position or (first > self._position + 1 and key_between
                                      and first not in self._pending):
            self._seek(first)
        for index in wanted:
            try:
                while index not in self._pending:
                    frame = next(self._frames, None)
                    if frame is None:
                        raise BadInput("decode_error", f"video decoding stopped before "
                                       f"{self.frame_start_s[index]:.2f} s")
                    found = self._index_of.get(int(frame.pts)) if frame.pts is not None else None
                    if found is None or found <= self._position:
                        continue
                    self._position = found
                    if found in wanted:
                        self._pending[found] = self._convert(frame)
            except self._av.error.FFmpegError as exc:
                raise BadInput("decode_error", f"video decoding failed near "
                               f"{self.frame_start_s[index]:.2f} s: {exc}") from None
            yield self._pending[index]
        # keep the last frame: the next batch may start with it
        self._pending = {wanted[-1]: self._pending[wanted[-1]]}
