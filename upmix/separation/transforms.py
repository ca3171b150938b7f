"""STFT geometry of the separation model at any sample rate.

The model was trained on a fixed frame duration and bin spacing (`ModelConfig`: 2048 samples and
a 512-sample hop at 22.05 kHz, i.e. 92.9 ms frames, 23.2 ms hop, 10.8 Hz bins). At another rate
the frame length and hop are scaled to keep those durations, so the first `ModelConfig.bins` bins
of the spectrum are what the model saw in training (up to 11.025 kHz; the frame
being rounded to a fast FFT length, within 1 %); bins above are left
to `upmix.separation.orchestra`, and a lower rate pads the missing ones with zeros. A periodic Hann
window and `torch.istft`'s overlap normalisation make analysis and resynthesis exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.fft
import torch

from .model import ModelConfig


@dataclass(frozen=True)
class Geometry:
    """STFT frame length and hop (samples) at a sample rate for a model."""

    n_fft: int
    hop: int

    @classmethod
    def at(cls, config: ModelConfig, sample_rate: int) -> Geometry:
        """The geometry at a rate: frame length rounded up to an FFT-friendly size (about 1 % at
        most, so bins stay within 1 % of the model's frequencies)."""
        scale = sample_rate / config.sample_rate
        n_fft = round(config.n_fft * scale) if scale == 1 else scipy.fft.next_fast_len(round(config.n_fft * scale))
        return cls(max(16, n_fft), max(4, round(config.hop * scale)))

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """(..., samples) real -> (..., bins, frames) complex."""
        shape = x.shape
        window = torch.hann_window(self.n_fft, device=x.device, dtype=x.dtype)
        spec = torch.stft(x.reshape(-1, shape[-1]), self.n_fft, self.hop, window=window, center=True,
                          return_complex=True)
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """(..., bins, frames) complex -> (..., length) real."""
        shape = spec.shape
        window = torch.hann_window(self.n_fft, device=spec.device, dtype=spec.real.dtype)
        x = torch.istft(spec.reshape(-1, *shape[-2:]), self.n_fft, self.hop, window=window, center=True,
                        length=length)
        return x.reshape(*shape[:-2], length)
