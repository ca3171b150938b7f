"""Shared signal processing: loudness metering, decorrelation filters, block convolution, filters.

Everything here streams: objects keep the state that carries across blocks, and feeding a signal
in blocks gives the same result as feeding it whole. Audio is float32 ``(channels, frames)``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.signal
from numpy.typing import ArrayLike
from pyloudnorm.iirfilter import IIRfilter


def bs1770_weights(azimuth: ArrayLike, elevation: ArrayLike, is_lfe: ArrayLike) -> np.ndarray:
    """ITU-R BS.1770-4 channel weights: 1.41 for |elevation| < 30 and 60 <= |azimuth| <= 120
    degrees, 0 for LFE channels, 1.0 otherwise."""
    az, el = np.abs(np.asarray(azimuth, float)), np.abs(np.asarray(elevation, float))
    w = np.where((el < 30) & (az >= 60) & (az <= 120), 1.41, 1.0)
    return np.where(np.asarray(is_lfe, bool), 0.0, w)


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770-4, LUFS) of a multichannel stream.

    The K-weighting filters are pyloudnorm's; the gating is done here on 100 ms energy sums so any
    channel count and weights work and memory stays small for long files (pyloudnorm's Meter takes
    at most five channels in a fixed order and needs the whole signal in memory).

    Args:
        sample_rate: Hz.
        weights: per-channel weights (see `bs1770_weights`); default 1.0 for every channel.
    """

    def __init__(self, sample_rate: int, weights: ArrayLike | None = None) -> None:
        self.sample_rate = sample_rate
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf")
        highpass = IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
        self._sos = np.vstack([scipy.signal.tf2sos(f.b, f.a) for f in (shelf, highpass)])
        self._gain = shelf.passband_gain * highpass.passband_gain
        self._zi = None
        self._hop = int(round(0.1 * sample_rate))
        self._partial = None  # energy summed so far in the unfinished 100 ms block, per channel
        self._partial_len = 0
        self._quarters: list[np.ndarray] = []

    def process(self, block: np.ndarray) -> None:
        """Add a (channels, frames) block."""
        if self.weights is None:
            self.weights = np.ones(block.shape[0])
        x = np.asarray(block, dtype=np.float64)[self.weights > 0]  # weight 0 (LFE) never counts
        if self._zi is None:
            self._zi = np.zeros((self._sos.shape[0], x.shape[0], 2))
        y, self._zi = scipy.signal.sosfilt(self._sos, x, axis=-1, zi=self._zi)
        np.square(y, out=y)
        if self._partial is None:
            self._partial = np.zeros(y.shape[0])
        first = min(self._hop - self._partial_len, y.shape[1])  # completes the unfinished block
        self._partial += y[:, :first].sum(axis=1)
        self._partial_len += first
        sums = []
        if self._partial_len == self._hop:
            sums.append(self._partial[:, None])
            rest = y[:, first:]
            n = rest.shape[1] // self._hop
            sums.append(rest[:, :n * self._hop].reshape(rest.shape[0], n, self._hop).sum(-1))
            self._partial = rest[:, n * self._hop:].sum(axis=1)
            self._partial_len = rest.shape[1] - n * self._hop
            self._quarters.append(np.concatenate(sums, axis=1) * self._gain ** 2)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; -inf for silence or less than 400 ms of audio."""
        if not self._quarters:
            return -math.inf
        q = np.concatenate(self._quarters, axis=1)
        if q.shape[1] < 4:
            return -math.inf
        # 400 ms blocks with 75 % overlap: four consecutive 100 ms sums
        z = (q[:, :-3] + q[:, 1:-2] + q[:, 2:-1] + q[:, 3:]) / (4 * self._hop)
        power = self.weights[self.weights > 0] @ z
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10 * np.log10(power)
        gated = loud >= -70.0
        if not gated.any():
            return -math.inf
        rel = -0.691 + 10 * np.log10(power[gated].mean()) - 10.0
        gated &= loud > rel
        return float(-0.691 + 10 * np.log10(power[gated].mean()))


def decorrelation_filters(n: int, length: int = 512, seed: int = 2051, candidates: int = 256
                          ) -> np.ndarray:
    """`n` mutually decorrelated all-pass FIR filters, shape (n, length).

    Each filter has a flat magnitude response and random phase per frequency bin (real at DC and
    Nyquist), so it keeps the spectrum. Purely random phases leave a broadband correlation of about
    1/sqrt(length/2) between two outputs; each filter is therefore picked from `candidates` random
    ones as the one least correlated with those already chosen (deterministic for a given seed).
    """
    rng = np.random.default_rng(seed)
    bins = length // 2 + 1
    chosen: list[np.ndarray] = []
    for _ in range(n):
        phase = rng.uniform(-np.pi, np.pi, size=(candidates, bins))
        phase[:, 0] = 0.0
        if length % 2 == 0:
            phase[:, -1] = 0.0
        cand = np.fft.irfft(np.exp(1j * phase), n=length, axis=-1)
        cand /= np.linalg.norm(cand, axis=-1, keepdims=True)
        if chosen:
            worst = np.max(np.abs(cand @ np.array(chosen).T), axis=1)
            chosen.append(cand[np.argmin(worst)])
        else:
            chosen.append(cand[0])
    return np.array(chosen, dtype=np.float32)


class BlockConvolver:
    """Overlap-add FFT convolution: every output is the sum of its filters applied to the inputs.

    Args:
        filters: (outputs, taps) for one input, or (outputs, inputs, taps).
    """

    def __init__(self, filters: np.ndarray) -> None:
        f = np.asarray(filters, dtype=np.float32)
        self.filters = f[:, None, :] if f.ndim == 2 else f
        outputs, _, taps = self.filters.shape
        self.taps = taps
        self._tail = np.zeros((outputs, taps - 1), dtype=np.float32)
        self._spectra: dict[int, np.ndarray] = {}  # filter spectra by FFT size

    def process(self, x: np.ndarray) -> np.ndarray:
        """Convolve an (inputs, frames) block (or a mono (frames,) one); returns (outputs, frames)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float32))
        n, taps = x.shape[1], self.taps
        nfft = scipy.fft.next_fast_len(n + taps - 1, real=True)
        if nfft not in self._spectra:
            self._spectra[nfft] = scipy.fft.rfft(self.filters, nfft, axis=-1)
        h = self._spectra[nfft]
        xs = scipy.fft.rfft(x, nfft, axis=-1)
        spec = h[:, 0] * xs[0] if h.shape[1] == 1 else np.einsum("oik,ik->ok", h, xs)
        y = scipy.fft.irfft(spec, nfft, axis=-1)[:, :n + taps - 1].astype(np.float32)
        y[:, :taps - 1] += self._tail
        out, self._tail = y[:, :n], y[:, n:].copy()
        return out


class LowPass:
    """Streaming Linkwitz-Riley (two cascaded Butterworth) low-pass, for LFE feeds.

    Args:
        sample_rate: Hz.
        cutoff: -6 dB frequency in Hz.
        order: total order (4 = LR4).
    """

    def __init__(self, sample_rate: int, cutoff: float = 120.0, order: int = 4) -> None:
        sos = scipy.signal.butter(order // 2, cutoff, fs=sample_rate, output="sos")
        self._sos = np.vstack([sos, sos])
        self._zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter a block along its last axis."""
        x = np.asarray(x, dtype=np.float64)
        if self._zi is None:
            self._zi = np.zeros((self._sos.shape[0],) + x.shape[:-1] + (2,))
        y, self._zi = scipy.signal.sosfilt(self._sos, x, axis=-1, zi=self._zi)
        return y.astype(np.float32)


class SignalStats:
    """Per-channel sample peak and integrated loudness of a stream (for reports and `upmix info`).

    Args:
        sample_rate: Hz.
        weights: BS.1770 channel weights (see `bs1770_weights`).
    """

    def __init__(self, sample_rate: int, weights: ArrayLike) -> None:
        self.loudness = LoudnessMeter(sample_rate, weights)
        self.peak = np.zeros(len(np.asarray(weights)))
        self.frames = 0

    def process(self, block: np.ndarray) -> None:
        if block.shape[1] == 0:
            return
        self.peak = np.maximum(self.peak, np.abs(block).max(axis=1))
        self.loudness.process(block)
        self.frames += block.shape[1]

    @property
    def peak_dbfs(self) -> list[float | None]:
        """Sample peak per channel in dBFS (None for a silent channel)."""
        return [round(float(20 * np.log10(p)), 2) if p > 0 else None for p in self.peak]

    @property
    def integrated_lufs(self) -> float | None:
        value = self.loudness.integrated()
        return round(value, 2) if math.isfinite(value) else None
