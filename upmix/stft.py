"""Streaming short-time Fourier transform in torch (CPU or CUDA).

Square-root periodic Hann windows for analysis and synthesis at 50 % overlap sum to one, so
`StreamingISTFT(StreamingSTFT(x))` reproduces `x` exactly (to float precision), delayed by
``n_fft - hop`` samples. Frames are complex tensors shaped (channels, frames, bins).
"""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cpu`` and ``cuda`` are taken as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from .errors import UpmixError

        raise UpmixError("{option} cuda was asked for but no CUDA device is available", option="device")
    return torch.device(device)


class StreamingSTFT:
    """Analysis: push samples, get the frames that are complete.

    Args:
        n_fft: frame length in samples (even).
        channels: number of input channels.
        device: torch device.
    """

    def __init__(self, n_fft: int, channels: int, device: torch.device) -> None:
        self.n_fft, self.hop = n_fft, n_fft // 2
        self.window = torch.hann_window(n_fft, periodic=True, device=device).sqrt()
        # the stream starts with n_fft - hop zeros so the first samples get full overlap too
        self._buf = torch.zeros(channels, n_fft - self.hop, device=device)

    @property
    def latency(self) -> int:
        """Samples between an input sample and the same sample after `StreamingISTFT`."""
        return self.n_fft - self.hop

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Add (channels, n) samples; returns (channels, frames, n_fft // 2 + 1) complex frames."""
        self._buf = torch.cat([self._buf, x], dim=1)
        count = max(0, (self._buf.shape[1] - self.n_fft) // self.hop + 1)
        if count == 0:
            return torch.zeros(self._buf.shape[0], 0, self.n_fft // 2 + 1, dtype=torch.complex64,
                               device=self._buf.device)
        frames = self._buf[:, :(count - 1) * self.hop + self.n_fft].unfold(1, self.n_fft, self.hop)
        self._buf = self._buf[:, count * self.hop:]
        return torch.fft.rfft(frames * self.window, dim=-1)

    def flush(self) -> torch.Tensor:
        """Frames that complete the rest of the stream (zero-padded at the end); the synthesis
        then has every input sample, followed by some padding the caller drops."""
        return self.push(torch.zeros(self._buf.shape[0], self.n_fft, device=self._buf.device))


class StreamingISTFT:
    """Synthesis by overlap-add: push frames, get the samples that are complete."""

    def __init__(self, n_fft: int, channels: int, device: torch.device) -> None:
        self.n_fft, self.hop = n_fft, n_fft // 2
        self.window = torch.hann_window(n_fft, periodic=True, device=device).sqrt()
        self._tail = torch.zeros(channels, n_fft - self.hop, device=device)

    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """Add (channels, frames, bins) complex frames; returns (channels, frames * hop) samples."""
        count = frames.shape[1]
        if count == 0:
            return self._tail[:, :0]
        y = torch.fft.irfft(frames, n=self.n_fft, dim=-1) * self.window  # (C, T, n_fft)
        half = self.hop
        out = torch.zeros(y.shape[0], (count + 1) * half, device=y.device)
        out[:, :count * half] += y[..., :half].reshape(y.shape[0], -1)
        out[:, half:] += y[..., half:].reshape(y.shape[0], -1)
        out[:, :half] += self._tail
        self._tail = out[:, count * half:]
        return out[:, :count * half]


def time_constant(seconds: float, hop: int, sample_rate: int) -> float:
    """Per-frame coefficient of a one-pole average with the given time constant."""
    return float(torch.exp(torch.tensor(-hop / (seconds * sample_rate))))


def smooth_frames(x: torch.Tensor, alpha: float, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One-pole average along the frame axis (-2): y_t = alpha y_(t-1) + (1 - alpha) x_t.

    Computed for a whole block at once (a lower-triangular matrix of powers of alpha), carrying
    `state` (the last output, shape x[..., -1, :]) across blocks; None starts from the first frame.
    Returns (y, new state).
    """
    t = x.shape[-2]
    if t == 0:
        return x, state
    if state is None:
        state = x[..., 0, :]
    idx = torch.arange(t, device=x.device)
    lag = (idx[:, None] - idx[None, :]).to(torch.float32)
    weights = torch.where(lag >= 0, (1 - alpha) * alpha ** lag.clamp(min=0), torch.zeros((), device=x.device))
    carry = alpha ** (idx + 1).to(torch.float32)
    if x.is_complex():
        weights, carry = weights.to(x.dtype), carry.to(x.dtype)
    y = torch.matmul(weights, x) + carry[:, None] * state[..., None, :]
    return y, y[..., -1, :]


def smooth_bins(x: torch.Tensor, width: int = 5) -> torch.Tensor:
    """Moving average over `width` (odd) neighbouring frequency bins (last axis); at the edges,
    over the bins there are. (Shifted sums: exact, unlike a running cumulative sum, and faster
    than avg_pool1d here.)"""
    if width <= 1:
        return x
    if x.is_complex():
        return torch.complex(smooth_bins(x.real, width), smooth_bins(x.imag, width))
    half, n = width // 2, x.shape[-1]
    padded = torch.nn.functional.pad(x, (half, half))
    total = padded[..., :n].clone()
    for k in range(1, width):
        total += padded[..., k:k + n]
    count = torch.full((n,), float(width), device=x.device)
    edge = torch.arange(half + 1, width, dtype=torch.float32, device=x.device)
    count[:half], count[n - half:] = edge, edge.flip(0)
    return total / count
