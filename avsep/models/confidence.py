"""Do no harm: how sure the model is of each source, and the fall back to an even share.

A Sound of Pixels mask is conditioned on a player's picture. When the picture is misread (a
drawing style the vision net never saw), the mask can confidently take another instrument's
sound, and the estimate then scores below the unprocessed mixture. A source's confidence
here is the class head's (`visual_class_loss`) probability of its most likely instrument:
how clearly the picture shows one instrument. Below a threshold t the source's mask is
blended toward the even share 1/N with weight w = c / t (1 at and above t); the estimate of
mask 1/N is the mixture scaled by 1/N, and BSS-eval's SDR allows a gain, so that estimate
scores what the unprocessed mixture does.

Why this measure and a soft blend: docs/results/2026-12-07-fallback.md (chosen on
validation pieces; agreement with the audio tagger cost several dB there, because the class
head often names another instrument where the masks separate well).
"""

from __future__ import annotations

import torch


def source_confidence(class_logits: torch.Tensor) -> torch.Tensor:
    """How clearly each source's picture shows one instrument.

    Args:
        class_logits: (B, N, C) the class head's logits for each source's picture.

    Returns:
        (B, N) in [1/C, 1]: the softmax's largest probability.
    """
    confidence: torch.Tensor = torch.softmax(class_logits.float(), dim=-1).amax(dim=-1)
    return confidence


def blend_weights(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """How much of each source's own mask to keep: confidence (B, N) -> weights (B, N).

    min(1, confidence / threshold): 1 at and above `threshold` (the mask as trained),
    falling linearly to 0 (the even share) as the confidence does; threshold 0 keeps every
    mask.
    """
    if threshold <= 0:
        return torch.ones_like(confidence)
    return (confidence / threshold).clamp(0.0, 1.0)


def fallback_logits(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sigmoid-mask logits (B, N, Fw, Tf) blended toward the even share 1/N.

    The mask w * sigmoid(logit) + (1 - w) / N for each source's weight w (B, N), returned
    as logits so that the model's reconstruction (sigmoid, unwarp, times the mixture) stays
    the one it was trained with; where w is 1 the logits are returned bit for bit.
    """
    n = logits.shape[1]
    w = weights.to(logits.dtype)[..., None, None]
    blended = w * torch.sigmoid(logits) + (1 - w) / n
    keep = (w == 1).expand_as(logits)
    return torch.where(keep, logits, torch.logit(blended))
