"""Delay lines with delays and gains that glide sample by sample (torch, CPU or CUDA).

Each voice keeps its recent input; every call reads it back with per-sample fractional delays
(cubic Lagrange interpolation) and gains, both interpolated linearly between values given at
block boundaries. A delay that changes over time shifts the pitch as sound from a moving source
does (Doppler).
"""

from __future__ import annotations

import numpy as np
import torch


def lagrange(d: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cubic Lagrange interpolation weights for taps at offsets -1, 0, 1, 2 around fraction `d`."""
    dm1, dm2, dp1 = d - 1, d - 2, d + 1
    return -d * dm1 * dm2 / 6, dp1 * dm1 * dm2 / 2, -dp1 * d * dm2 / 2, dp1 * d * dm1 / 6


def glide(values: torch.Tensor, block: int) -> torch.Tensor:
    """Per-sample values (..., nb * block) interpolated linearly from boundary values (..., nb + 1)."""
    ramp = (torch.arange(block, device=values.device, dtype=values.dtype) + 0.5) / block
    start, end = values[..., :-1, None], values[..., 1:, None]
    return (start + (end - start) * ramp).reshape(values.shape[:-1] + (-1,))


class DelayLines:
    """Delay lines for `voices` inputs, each read at `taps` delays (e.g. one per ear).

    Args:
        voices: number of input signals.
        max_delay: the largest delay (samples) that will be asked for.
        device: torch device.
    """

    def __init__(self, voices: int, max_delay: float, device: torch.device) -> None:
        self.device = device
        self.history = int(np.ceil(max_delay)) + 4
        self._input = torch.zeros(voices, self.history, device=device)

    def process(self, x: np.ndarray, delays: np.ndarray, gains: np.ndarray, block: int) -> torch.Tensor:
        """Read (voices, n) new samples back delayed: `delays` (voices, taps, nb + 1) in samples and
        `gains` (voices, nb + 1) at the n // block + 1 block boundaries. Returns (voices, taps, n)."""
        dev = self.device
        v, n = x.shape
        buf = torch.cat([self._input, torch.as_tensor(x, dtype=torch.float32, device=dev)], dim=1)
        d = glide(torch.as_tensor(delays, dtype=torch.float32, device=dev), block)  # (v, taps, n)
        g = glide(torch.as_tensor(gains, dtype=torch.float32, device=dev), block)[:, None, :]
        pos = self.history + torch.arange(n, device=dev, dtype=torch.float32) - d
        base = torch.floor(pos)
        idx = base.long().clamp(1, buf.shape[1] - 3)
        src = buf[:, None, :].expand(v, d.shape[1], -1)
        out = sum(w * torch.gather(src, 2, idx + k) for k, w in zip((-1, 0, 1, 2), lagrange(pos - base)))
        self._input = buf[:, -self.history:]
        return out * g
