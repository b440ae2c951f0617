"""Which instruments are heard, frame by frame: a small audio tagger.

Sound of Pixels' heatmap is the energy of the sound its masks separate at each location.
Masks trained by mix-and-separate always find *some* sound for a picture, since every
training mixture holds the shown instruments; so the heat stays for audio that no shown
player makes (noise, another piece: docs/results/2026-12-05-localization.md). A tagger says, per
STFT frame, how likely each instrument class is to be sounding; `SoundOfPixels` with
`audio_tagging` > 0 scales each location's mask by the probability that the instrument its
visual vector shows (the visual class head) is heard. The tagger reads the mixture's
log-magnitude with its own layers and its own loss, so separation does not train it and it
does not train separation.
"""

from __future__ import annotations

import torch
from torch import nn

TAGGER_CHANNELS = (16, 32, 64)
# The warped (log-frequency) bins are averaged in groups of this many first: 64 bands keep
# the timbre at a quarter of the cost of the full axis (docs/results/2026-12-05-localization.md,
# the audio tagger's section).
TAGGER_BAND = 4
# A source counts as heard in an STFT frame when it holds at least this share of the
# mixture's energy there (the same share `avsep.evaluation.localization` scores players at).
HEARD_SHARE = 0.1


class AudioTagger(nn.Module):
    """Frame-wise instrument presence from a log-magnitude spectrogram.

    The bins are averaged in bands of `TAGGER_BAND`; each convolution then halves the
    frequency axis and keeps the time axis; the features are maxed over frequency and a
    temporal convolution gives one logit per class and frame.

    forward(log_mag (B, 1, Fw, Tf)) -> logits (B, C, Tf).
    """

    def __init__(self, num_classes: int, channels: tuple[int, ...] = TAGGER_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.AvgPool2d((TAGGER_BAND, 1)), nn.BatchNorm2d(1)]
        c_in = 1
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=(2, 1), padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv1d(c_in, num_classes, 5, padding=2)

    def forward(self, log_mag: torch.Tensor) -> torch.Tensor:
        if log_mag.dim() != 4 or log_mag.shape[1] != 1:
            raise ValueError(f"AudioTagger: expected a log-magnitude (batch, 1, freq, frames), "
                             f"got shape {tuple(log_mag.shape)}")
        logits: torch.Tensor = self.head(self.features(log_mag).amax(dim=2))
        return logits


def heard_targets(source_power: torch.Tensor, mix_power: torch.Tensor, labels: torch.Tensor,
                  num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-wise presence targets of each mixture's instrument classes.

    Args:
        source_power: (B, N, Tf) each source's energy per STFT frame.
        mix_power: (B, Tf) the mixture's energy per frame.
        labels: (B, N) class indices, -1 unknown.
        num_classes: C.

    Returns:
        targets (B, C, Tf) in {0, 1}: class c is heard at frame t when a source of class c
        holds at least `HEARD_SHARE` of the mixture's energy there; and known (B,) bool:
        mixtures whose every class is known (the others cannot say what is absent).
    """
    if labels.shape != source_power.shape[:2]:
        raise ValueError(f"expected labels (batch, sources) = {tuple(source_power.shape[:2])}, "
                         f"got {tuple(labels.shape)}")
    heard = (source_power >= HEARD_SHARE * mix_power.unsqueeze(1)) & (source_power > 0)
    targets = source_power.new_zeros(labels.shape[0], num_classes, source_power.shape[2])
    index = labels.clamp_min(0).long().unsqueeze(2).expand_as(heard)
    targets.scatter_reduce_(1, index, heard.to(targets.dtype), reduce="amax")
    return targets, (labels >= 0).all(dim=1)
