"""A temporal visual path: what moves in a clip's frames, frame by frame and place by place.

One frame cannot tell two violinists apart; how they move can. Each player's bow, fingers
and body move with their own notes, so features that follow the motion over time let the
synthesizer give each player the sound whose onsets match its movements.

`MotionNet` sees every frame of the clip at the video rate (grey level at half the
resolution, its change since the previous frame and the size of that change), through a small strided CNN shared by
all frames and a temporal convolution per location. Its output lies on the vision map's grid (ceil(H/16) x
ceil(W/16)) and is added to the appearance vector before the synthesizer, so a source's
mask logits become sum_k alpha_k (v_k + m_k(t)) s_k(f, t) + beta. The last layer starts at
zero: an untrained motion path leaves the one-frame model as it is.

`video_to_stft` resamples the per-frame features onto the spectrogram's frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Luma weights of RGB (ITU-R BT.601): the grey level the motion path sees.
LUMA = (0.299, 0.587, 0.114)


def _conv(cin: int, cout: int) -> nn.Sequential:
    """3 x 3 convolution with stride 2, BatchNorm and ReLU (halves each side, rounding up)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MotionNet(nn.Module):
    """Frames -> K motion channels per frame and location.

    Args:
        out_channels: K, the synthesizer's channels.
        width: channels of the first layer (then 2x, 2x, 4x).
        kernel: temporal kernel, in video frames (odd).

    Shapes:
        forward(frames (B, 3, T, H, W) uint8 RGB) -> (B, K, T, ceil(H/16), ceil(W/16))
    The output at frame t depends on frames t - kernel // 2 - 1 .. t + kernel // 2 only, and
    the same motion shifted by k frames gives the same features shifted by k.
    """

    def __init__(self, out_channels: int, width: int = 8, kernel: int = 5) -> None:
        super().__init__()
        if width < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"MotionNet: need width >= 1 and an odd kernel, got {width}, "
                             f"{kernel}")
        self.luma: torch.Tensor
        self.register_buffer("luma", torch.tensor(LUMA), persistent=False)
        # half resolution first (the vision net's grid is 1/16): three strided layers remain
        self.spatial = nn.Sequential(_conv(3, width), _conv(width, 2 * width),
                                     _conv(2 * width, 4 * width))
        # over (time, location) planes: 2-D convolutions, which channels-last layouts accept
        self.temporal = nn.Sequential(
            nn.Conv2d(4 * width, 4 * width, (kernel, 1), padding=(kernel // 2, 0)),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * width, out_channels, 1))
        last = self.temporal[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise ValueError(f"MotionNet: expected frames (batch, 3, time, height, width), "
                             f"got shape {tuple(frames.shape)}")
        b, _, t, h, w = frames.shape
        dtype = self.luma.dtype if frames.dtype == torch.uint8 else frames.dtype
        luma = self.luma.to(dtype).view(1, 3, 1, 1, 1) / 255.0
        grey = (frames.to(dtype) * luma).sum(dim=1).reshape(b * t, 1, h, w) - 0.5
        grey = F.avg_pool2d(grey, 2, ceil_mode=True) * 4.0  # about unit spread
        grey = grey.reshape(b, t, 1, *grey.shape[-2:])
        # the change since the previous frame; none before the first
        change = torch.cat([torch.zeros_like(grey[:, :1]), grey[:, 1:] - grey[:, :-1]], dim=1)
        # the size of the change directly: how much moves there follows the note onsets
        planes = torch.cat([grey, change, change.abs()], dim=2).flatten(0, 1)  # (B*T, 3, ..)
        x = self.spatial(planes)  # (B*T, C, h', w')
        c, hh, ww = x.shape[1:]
        x = x.reshape(b, t, c, hh * ww).transpose(1, 2)  # (B, C, T, h'*w')
        out: torch.Tensor = self.temporal(x)
        return out.reshape(b, -1, t, hh, ww)


def video_to_stft(num_video_frames: int, num_stft_frames: int, centre: float,
                  stft_frames_per_video_frame: float) -> torch.Tensor:
    """Linear interpolation weights (Tf, T) from video frames to STFT frames.

    The clip's frames are the video's frames around the audio window's centre (as
    `avsep.geometry.clip_frame_indices` picks them): frame T // 2 lies at STFT frame
    `centre`, and consecutive frames `stft_frames_per_video_frame` STFT frames apart
    (sample_rate / (fps * hop)). STFT frames before the first video frame or after the last
    take that frame's features.

    Returns float32 (Tf, T) whose rows sum to 1.
    """
    if num_video_frames < 1 or num_stft_frames < 1 or stft_frames_per_video_frame <= 0:
        raise ValueError(f"video_to_stft: need frames >= 1 and a positive spacing, got "
                         f"{num_video_frames}, {num_stft_frames}, {stft_frames_per_video_frame}")
    at = (torch.arange(num_stft_frames, dtype=torch.float64) - centre)
    position = (at / stft_frames_per_video_frame + num_video_frames // 2).clamp(
        0, num_video_frames - 1)
    below = position.floor().long()
    above = (below + 1).clamp(max=num_video_frames - 1)
    frac = position - below
    weights = torch.zeros(num_stft_frames, num_video_frames, dtype=torch.float64)
    rows = torch.arange(num_stft_frames)
    weights.index_put_((rows, below), 1 - frac, accumulate=True)
    weights.index_put_((rows, above), frac, accumulate=True)
    return weights.float()
