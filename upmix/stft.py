"""Streaming short-time Fourier transform, on numpy arrays (CPU) or torch tensors (CUDA).

The code is written once against the array API standard: `array_api_compat` gives numpy and torch
the same namespace (`array_namespace`), so the CPU path never imports torch (1.5 s of start-up,
more than ffmpeg takes to upmix a minute of audio) and a CUDA device runs the same code.

Square-root periodic Hann windows for analysis and synthesis at 50 % overlap sum to one, so
`StreamingISTFT(StreamingSTFT(x))` reproduces `x` exactly (to float precision), delayed by
``n_fft - hop`` samples. Frames are complex arrays shaped (channels, frames, bins).
"""

from __future__ import annotations

import math
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

if TYPE_CHECKING:
    import torch

Array = Any
"""A numpy array or a torch tensor."""

NVIDIA_DRIVER = ("/proc/driver/nvidia/version", "/dev/dxg")
"""Files whose presence means the machine has an NVIDIA driver (Linux, WSL): without one no CUDA
device can exist, and ``auto`` settles on the CPU without importing torch."""


def _cuda_available() -> bool:
    if "torch" not in sys.modules and not any(os.path.exists(p) for p in NVIDIA_DRIVER):
        return False
    import torch

    return torch.cuda.is_available()


def device_kind(device: str = "auto") -> str:
    """``cpu`` or ``cuda``: ``auto`` picks CUDA when available, else the CPU; ``cpu`` and ``cuda``
    are taken as given (UpmixError when CUDA is asked for and missing)."""
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if device == "cuda" and not _cuda_available():
        from .errors import UpmixError

        raise UpmixError("{option} cuda was asked for but no CUDA device is available", option="device")
    return device


def resolve_device(device: str = "auto") -> torch.device:
    """`device_kind` as a torch.device, for the torch-only code (models, moving sources)."""
    import torch

    return torch.device(device_kind(device))


def array_module(device: str, torch: bool = False) -> ModuleType:
    """The array namespace that runs on `device` (`device_kind`): numpy's on the CPU, torch's on
    CUDA, or torch's on either with `torch`."""
    if device == "cpu" and not torch:
        import array_api_compat.numpy as xp
    else:
        import array_api_compat.torch as xp
    return xp


def to_device(x: np.ndarray, xp: ModuleType, device: Any) -> Array:
    """A numpy array moved into `xp` on `device` (no copy for numpy)."""
    return x if xp.__name__.endswith("numpy") else xp.asarray(x, device=device)


def to_numpy(x: Array) -> np.ndarray:
    """An array of either namespace as a numpy array on the host."""
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def fft_module(xp: ModuleType) -> ModuleType:
    """The FFT functions for arrays of `xp`: scipy.fft for numpy (faster than numpy.fft here, per
    10 minutes of a 7.1.4 upmix: rfft 0.24 against 0.44 s, irfft 1.1 against 1.3 s), else `xp.fft`."""
    if xp.__name__.endswith("numpy"):
        import scipy.fft

        return scipy.fft
    return xp.fft


def hann_sqrt(n_fft: int, xp: ModuleType, device: str) -> Array:
    """Square root of the periodic Hann window of `n_fft` samples, float32."""
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    return to_device(window, xp, device)


class StreamingSTFT:
    """Analysis: push samples, get the frames that are complete.

    Args:
        n_fft: frame length in samples (even).
        channels: number of input channels.
        xp: array namespace (`array_module`).
        device: its device.
    """

    def __init__(self, n_fft: int, channels: int, xp: ModuleType, device: Any) -> None:
        self.xp, self.device, self._fft = xp, device, fft_module(xp)
        self.n_fft, self.hop = n_fft, n_fft // 2
        self.window = hann_sqrt(n_fft, self.xp, self.device)
        # the stream starts with n_fft - hop zeros so the first samples get full overlap too
        self._buf = self.xp.zeros((channels, n_fft - self.hop), dtype=self.xp.float32, device=self.device)

    @property
    def latency(self) -> int:
        """Samples between an input sample and the same sample after `StreamingISTFT`."""
        return self.n_fft - self.hop

    def push(self, x: Array) -> Array:
        """Add (channels, n) samples; returns (channels, frames, n_fft // 2 + 1) complex frames."""
        xp = self.xp
        buf = xp.concat([self._buf, x], axis=1)
        count = max(0, (buf.shape[1] - self.n_fft) // self.hop + 1)
        self._buf = buf[:, count * self.hop:]
        if count == 0:
            return xp.zeros((buf.shape[0], 0, self.n_fft // 2 + 1), dtype=xp.complex64, device=self.device)
        # at 50 % overlap, frame k is halves k and k + 1 of the buffer
        halves = xp.reshape(buf[:, :(count + 1) * self.hop], (buf.shape[0], count + 1, self.hop))
        frames = xp.concat([halves[:, :-1], halves[:, 1:]], axis=2)
        return self._fft.rfft(frames * self.window, axis=-1)

    def flush(self) -> Array:
        """Frames that complete the rest of the stream (zero-padded at the end); the synthesis
        then has every input sample, followed by some padding the caller drops."""
        return self.push(self.xp.zeros((self._buf.shape[0], self.n_fft), dtype=self.xp.float32, device=self.device))


class StreamingISTFT:
    """Synthesis by overlap-add: push frames, get the samples that are complete (arguments as
    `StreamingSTFT`'s)."""

    def __init__(self, n_fft: int, channels: int, xp: ModuleType, device: Any) -> None:
        self.xp, self.device, self._fft = xp, device, fft_module(xp)
        self.n_fft, self.hop = n_fft, n_fft // 2
        self.window = hann_sqrt(n_fft, self.xp, self.device)
        self._tail = self.xp.zeros((channels, n_fft - self.hop), dtype=self.xp.float32, device=self.device)

    def push(self, frames: Array) -> Array:
        """Add (channels, frames, bins) complex frames; returns (channels, frames * hop) samples."""
        xp, count, half = self.xp, frames.shape[1], self.hop
        if count == 0:
            return self._tail[:, :0]
        y = self._fft.irfft(frames, n=self.n_fft, axis=-1)  # (C, T, n_fft)
        channels = y.shape[0]
        # the windowed halves, each contiguous: out = first halves, plus the second halves one hop on
        out = xp.reshape(y[..., :half] * self.window[:half], (channels, count * half))
        second = y[..., half:] * self.window[half:]
        out[:, :half] += self._tail
        out[:, half:] += xp.reshape(second[:, :-1], (channels, (count - 1) * half))
        self._tail = second[:, -1]
        return out


def time_constant(seconds: float, hop: int, sample_rate: int) -> float:
    """Per-frame coefficient of a one-pole average with the given time constant."""
    return math.exp(-hop / (seconds * sample_rate))


def smooth_frames(x: Array, alpha: float, state: Array | None) -> tuple[Array, Array]:
    """One-pole average along the frame axis (-2): y_t = alpha y_(t-1) + (1 - alpha) x_t.

    Computed for a whole block at once (a lower-triangular matrix of powers of alpha), carrying
    `state` (the last output, shape x[..., -1, :]) across blocks; None starts from the first frame.
    Returns (y, new state).
    """
    t = x.shape[-2]
    if t == 0:
        return x, state
    xp = array_namespace(x)
    if state is None:
        state = x[..., 0, :]
    lag = np.arange(t)[:, None] - np.arange(t)[None, :]
    weights = np.where(lag >= 0, (1 - alpha) * alpha ** np.maximum(lag, 0), 0.0).astype(np.float32)
    carry = (alpha ** np.arange(1, t + 1)).astype(np.float32)[:, None]
    weights, carry = to_device(weights, xp, device_of(x)), to_device(carry, xp, device_of(x))
    if xp.isdtype(x.dtype, "complex floating"):
        weights, carry = xp.astype(weights, x.dtype), xp.astype(carry, x.dtype)
    y = xp.matmul(weights, x) + carry * state[..., None, :]
    return y, y[..., -1, :]


def smooth_bins(x: Array, width: int = 5) -> Array:
    """Moving average over `width` (odd) neighbouring frequency bins (last axis); at the edges,
    over the bins there are. (Shifted sums: exact, unlike a running cumulative sum.)"""
    if width <= 1:
        return x
    xp = array_namespace(x)
    half, n = width // 2, x.shape[-1]
    pad = xp.zeros(tuple(x.shape[:-1]) + (half,), dtype=x.dtype, device=device_of(x))
    padded = xp.concat([pad, x, pad], axis=-1)
    total = padded[..., :n] + padded[..., 1:n + 1]
    for k in range(2, width):
        total += padded[..., k:k + n]
    count = np.full(n, float(width), dtype=np.float32)
    edge = np.arange(half + 1, width, dtype=np.float32)
    count[:half], count[n - half:] = edge, edge[::-1]
    return total * to_device(1 / count, xp, device_of(x))
