"""SpecAugment-style masking of training features (Park et al. 2019): frequency and time
bands set to zero, the mean of z-normalized features."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpecAugment:
    """``freq_masks`` bands of up to ``freq_width`` mel bins, and one time band of up to
    ``time_width`` frames per ``time_every`` frames. Uses torch's global generator."""

    freq_masks: int = 2
    freq_width: int = 15
    time_width: int = 20
    time_every: int = 100

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mask a ``(batch, mels, time)`` batch in place (padding beyond ``lengths`` kept)."""
        n_mels = x.shape[1]
        for b, length in enumerate(lengths.tolist()):
            for _ in range(self.freq_masks):
                w = int(torch.randint(0, self.freq_width + 1, ()))
                f0 = int(torch.randint(0, max(n_mels - w, 1), ()))
                x[b, f0 : f0 + w, :length] = 0
            for _ in range(max(1, length // self.time_every)):
                w = int(torch.randint(0, min(self.time_width, length // 4) + 1, ()))
                t0 = int(torch.randint(0, max(length - w, 1), ()))
                x[b, :, t0 : t0 + w] = 0
        return x
