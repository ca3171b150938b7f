"""Shared signal processing: loudness and true-peak metering, the true-peak limiter, decorrelation
filters, block convolution, filters, polyphase resampling (whole and streamed).

Everything here streams: objects keep the state that carries across blocks, and feeding a signal
in blocks gives the same result as feeding it whole. Audio is float32 ``(channels, frames)``.

scipy.signal and scipy.ndimage are imported where they are used: scipy.signal alone takes 0.8 s
to import, most of what ffmpeg needs to upmix a minute of audio, and a plain `upmix run` needs
neither.
"""

from __future__ import annotations

import math
import threading
from array import array

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike


def bs1770_weights(azimuth: ArrayLike, elevation: ArrayLike, is_lfe: ArrayLike) -> np.ndarray:
    """ITU-R BS.1770-4 channel weights: 1.41 for |elevation| < 30 and 60 <= |azimuth| <= 120
    degrees, 0 for LFE channels, 1.0 otherwise."""
    az, el = np.abs(np.asarray(azimuth, float)), np.abs(np.asarray(elevation, float))
    w = np.where((el < 30) & (az >= 60) & (az <= 120), 1.41, 1.0)
    return np.where(np.asarray(is_lfe, bool), 0.0, w)


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads (b, a; a[0] = 1) of the BS.1770-4 K-weighting at `sample_rate`: a +4 dB high shelf at
    1500 Hz (Q 1/sqrt 2) and a high pass at 38 Hz (Q 0.5), by the RBJ cookbook formulas exactly as
    pyloudnorm designs them (`pyloudnorm.iirfilter.IIRfilter`, which cannot be imported without
    scipy.signal, 0.8 s of start-up; the tests check these against it)."""
    w0 = 2 * np.pi * np.array([1500.0, 38.0]) / sample_rate
    cos, alpha = np.cos(w0), np.sin(w0) / (2 * np.array([1 / np.sqrt(2), 0.5]))
    a = 10 ** (4.0 / 40)
    root = 2 * np.sqrt(a) * alpha[0]
    shelf = (a * np.array([(a + 1) + (a - 1) * cos[0] + root, -2 * ((a - 1) + (a + 1) * cos[0]),
                           (a + 1) + (a - 1) * cos[0] - root]),
             np.array([(a + 1) - (a - 1) * cos[0] + root, 2 * ((a - 1) - (a + 1) * cos[0]),
                       (a + 1) - (a - 1) * cos[0] - root]))
    highpass = (np.array([(1 + cos[1]) / 2, -(1 + cos[1]), (1 + cos[1]) / 2]),
                np.array([1 + alpha[1], -2 * cos[1], 1 - alpha[1]]))
    return [(b / a[0], a / a[0]) for b, a in (shelf, highpass)]


def k_weighting_fir(sample_rate: int) -> np.ndarray:
    """The K-weighting's impulse response, float32, cut where it has decayed below 1e-9 of its
    energy: 2 ** ceil(log2(0.08 s x rate)) taps (4096 at 48 kHz, where the rest holds 7e-19)."""
    taps = 2 ** math.ceil(math.log2(0.08 * sample_rate))
    grid = 8 * taps  # the response sampled this finely folds back only what lies past it
    z = np.exp(-1j * np.pi * np.arange(grid // 2 + 1) / (grid // 2))
    response = np.ones_like(z)
    for b, a in k_weighting(sample_rate):
        response *= (b[0] + b[1] * z + b[2] * z ** 2) / (a[0] + a[1] * z + a[2] * z ** 2)
    return np.fft.irfft(response, grid)[:taps].astype(np.float32)


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770-4, LUFS) of a multichannel stream.

    The K-weighting is pyloudnorm's filter pair (`k_weighting`), applied as its impulse response
    by FFT convolution (`k_weighting_fir`: 10-40 % slower than scipy's IIR filter, measured, but
    without importing scipy.signal, 0.8 s of every run's start-up). The gating is done here on
    100 ms energy sums so any channel count and weights work and memory stays small for long files
    (pyloudnorm's Meter takes at most five channels in a fixed order and needs the whole signal in
    memory).

    Args:
        sample_rate: Hz.
        weights: per-channel weights (see `bs1770_weights`); default 1.0 for every channel.
    """

    def __init__(self, sample_rate: int, weights: ArrayLike | None = None) -> None:
        self.sample_rate = sample_rate
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self._filter: BlockConvolver | None = None
        self._hop = int(round(0.1 * sample_rate))
        self._partial = None  # energy summed so far in the unfinished 100 ms block, per channel
        self._partial_len = 0
        self._quarters = array("d")  # weighted K-weighted energy of every finished 100 ms block

    def process(self, block: np.ndarray) -> None:
        """Add a (channels, frames) block."""
        if self.weights is None:
            self.weights = np.ones(block.shape[0])
        counted = self.weights > 0  # weight 0 (LFE) never counts
        x = np.asarray(block, dtype=np.float32)[counted]
        if self._filter is None:
            self._filter = BlockConvolver(np.repeat(k_weighting_fir(self.sample_rate)[None], x.shape[0], axis=0),
                                          each=True)
        y = self._filter.process(x)
        np.square(y, out=y)  # float32 sums are pairwise: 1e-7 relative over a 100 ms block
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
            sums.append(rest[:, :n * self._hop].reshape(rest.shape[0], n, self._hop).sum(-1).astype(np.float64))
            self._partial = rest[:, n * self._hop:].sum(axis=1).astype(np.float64)
            self._partial_len = rest.shape[1] - n * self._hop
            self._quarters.extend(self.weights[counted] @ np.concatenate(sums, axis=1))

    def block_powers(self) -> np.ndarray:
        """Weighted mean-square power of every 400 ms gating block (75 % overlap, one per 100 ms),
        K-weighted; loudness in LUFS is -0.691 + 10 log10(power)."""
        q = np.array(self._quarters, dtype=np.float64)  # a copy: the array may grow on
        if len(q) < 4:
            return np.zeros(0)
        return (q[:-3] + q[1:-2] + q[2:-1] + q[3:]) / (4 * self._hop)

    def integrated(self, where: np.ndarray | None = None) -> float:
        """Gated integrated loudness in LUFS; -inf for silence or less than 400 ms of audio.
        `where` (bool per gating block, see `block_powers`) restricts the measurement to some
        blocks before the absolute and relative gates (dialogue gating)."""
        power = self.block_powers()
        if where is not None:
            power = power[np.asarray(where, bool)[:len(power)]]
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10 * np.log10(power)
        gated = loud >= -70.0
        if not gated.any():
            return -math.inf
        rel = -0.691 + 10 * np.log10(power[gated].mean()) - 10.0
        gated &= loud > rel
        return float(-0.691 + 10 * np.log10(power[gated].mean()))


# ITU-R BS.1770-4 Annex 2: the 4x interpolation filter of the true-peak meter, 4 phases x 12 taps
_TRUE_PEAK_PHASES = np.array([
    [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
     0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500],
    [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
     0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375],
    [-0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
     0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875],
    [-0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
     0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750],
])
_TRUE_PEAK_TAPS = _TRUE_PEAK_PHASES.shape[1]
_TRUE_PEAK_WINDOWS = _TRUE_PEAK_PHASES[:, ::-1].T.astype(np.float32)  # (taps, 4): x[n-11..n] @ it = y[4n..4n+3]
_TRUE_PEAK_GAIN = float(np.max(np.sum(np.abs(_TRUE_PEAK_PHASES), axis=1)))  # the largest phase's L1 norm
_TRUE_PEAK_CHUNK = 1024
"""Windows per chunk that `TruePeakMeter` skips or filters together."""


def _oversampled(z: np.ndarray) -> np.ndarray:
    """|y| at 4x rate (BS.1770-4 Annex 2) for (..., n) input with `_TRUE_PEAK_TAPS` - 1 samples of
    history in front: (..., n - 11, 4), the four points of each sample after the history, 6 samples
    late. (One matrix product of the sliding windows, 48 multiplies per sample, faster here than
    scipy's upfirdn.)"""
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(z, dtype=np.float32), _TRUE_PEAK_TAPS, axis=-1)
    return np.abs(windows @ _TRUE_PEAK_WINDOWS)


def _oversampled_peaks(z: np.ndarray) -> np.ndarray:
    """`_oversampled`, the maximum over channels and over the four points of each sample: (n - 11,)."""
    return _oversampled(z).max(axis=(0, 2))


def to_db(value: float) -> float | None:
    """20 log10 of an amplitude, rounded to 0.01 dB; None for silence."""
    return round(float(20 * np.log10(value)), 2) if value > 0 else None


class TruePeakMeter:
    """True peak of a multichannel stream (ITU-R BS.1770-4 Annex 2: 4x oversampling with the
    standard's 48-tap interpolation filter, float arithmetic so no 12 dB headroom step).

    `peak` is linear (1.0 = full scale); `dbtp` the same in dB true peak.
    """

    def __init__(self) -> None:
        self._history: np.ndarray | None = None
        self.peak = 0.0

    def process(self, block: np.ndarray) -> None:
        """Add a (channels, frames) block."""
        x = np.asarray(block, dtype=np.float32)  # float32 arithmetic: 4x faster, 1e-7 relative
        if self._history is None:
            self._history = np.zeros((x.shape[0], _TRUE_PEAK_TAPS - 1), dtype=np.float32)
        z = np.concatenate([self._history, x], axis=1)
        n = x.shape[1]
        if n:
            # an interpolated point is at most the phase's L1 norm times the largest sample under
            # the filter, so a chunk of windows whose samples all lie that far below the peak so
            # far cannot raise it and is skipped (most of a programme once its peak has passed)
            size, chunks = _TRUE_PEAK_CHUNK, -(-n // _TRUE_PEAK_CHUNK)
            padded = np.zeros((z.shape[0], (chunks + 1) * size), dtype=np.float32)
            padded[:, :z.shape[1]] = z
            top = np.abs(padded).reshape(z.shape[0], chunks + 1, size).max(axis=2)
            self.peak = max(self.peak, float(top.max()))  # the sample peak (the history was seen before)
            bound = np.maximum(top[:, :-1], top[:, 1:]) * np.float32(_TRUE_PEAK_GAIN * (1 + 1e-4))
            channel, chunk = np.nonzero(bound > np.float32(self.peak))
            if len(channel):
                start = chunk[:, None] * size + np.arange(size + _TRUE_PEAK_TAPS - 1)
                points = _oversampled(padded[channel[:, None], start])  # (chunks, size, 4)
                inside = start[:, :size, None] < n  # windows past the block's last sample wait for the next
                self.peak = max(self.peak, float(np.where(inside, points, 0).max()))
        self._history = z[:, -(_TRUE_PEAK_TAPS - 1):]

    @property
    def dbtp(self) -> float | None:
        """True peak in dBTP (None for silence), including the filter's ring after the last sample."""
        peak = self.peak
        if self._history is not None:
            tail = np.concatenate([self._history, np.zeros_like(self._history)], axis=1)
            peak = max(peak, float(_oversampled_peaks(tail).max()))
        return to_db(peak)


class TruePeakLimiter:
    """Look-ahead limiter that keeps the true peak (4x oversampled, as `TruePeakMeter` measures it)
    at or below `ceiling_db` dBTP.

    The gain needed at each sample (ceiling over the true-peak envelope, at most 1) goes through a
    minimum filter and then a moving average, both `ramp_s` / 2 wide either side: the average of
    minima taken over windows that each contain the sample is never above what the sample needs,
    so no overshoot, and the gain moves in ramps of `ramp_s` seconds (attack and release alike)
    without steps. The output is late by `latency` samples; `process` returns what is ready and
    `flush` the rest, so the output has as many frames as the input.

    Args:
        sample_rate: Hz.
        ceiling_db: the highest true peak allowed, dBTP.
        ramp_s: gain ramp length, seconds.
    """

    def __init__(self, sample_rate: int, ceiling_db: float = -1.0, ramp_s: float = 0.01) -> None:
        self.ceiling = 10 ** (ceiling_db / 20)
        self._half = max(1, int(round(ramp_s * sample_rate / 2)))
        self._ahead = 2 * self._half + _TRUE_PEAK_TAPS  # future samples an output sample needs
        self._behind = 2 * self._half + _TRUE_PEAK_TAPS  # past samples it needs (history included)
        self._buffer: np.ndarray | None = None
        self.reduction_db = 0.0  # the deepest gain reduction so far (negative dB)

    @property
    def latency(self) -> int:
        return self._ahead

    def process(self, block: np.ndarray) -> np.ndarray:
        """Limit a (channels, frames) block; returns the frames that are ready (fewer at the start)."""
        x = np.asarray(block, dtype=np.float32)
        if self._buffer is None:
            self._buffer = np.zeros((x.shape[0], self._behind + self._ahead), dtype=np.float32)
            self._pending = self._ahead  # zeros at the end of the buffer that are not input
        z = np.concatenate([self._buffer, x], axis=1)
        return self._run(z, x.shape[1])

    def flush(self) -> np.ndarray:
        """The held-back frames."""
        if self._buffer is None:
            return np.zeros((0, 0), dtype=np.float32)
        channels = self._buffer.shape[0]
        z = np.concatenate([self._buffer, np.zeros((channels, self._ahead), np.float32)], axis=1)
        return self._run(z, self._ahead)

    def _run(self, z: np.ndarray, new: int) -> np.ndarray:
        import scipy.ndimage

        env = np.zeros(z.shape[1])
        env[_TRUE_PEAK_TAPS // 2 - 1:z.shape[1] - _TRUE_PEAK_TAPS // 2] = _oversampled_peaks(z)
        env = np.maximum(env, np.abs(z).max(axis=0))
        env = scipy.ndimage.maximum_filter1d(env, 3)  # the points between a sample and its neighbours
        need = np.minimum(1.0, self.ceiling / np.maximum(env, 1e-12))
        width = 2 * self._half + 1
        gain = scipy.ndimage.uniform_filter1d(scipy.ndimage.minimum_filter1d(need, width, mode="nearest"), width,
                                              mode="nearest")
        start = self._behind
        out = z[:, start:start + new] * gain[start:start + new].astype(np.float32)
        if new:
            self.reduction_db = min(self.reduction_db, float(20 * np.log10(gain[start:start + new].min())))
        self._buffer = z[:, new:]
        skip = min(self._pending, new)  # leading zeros of the start-up buffer are not output
        self._pending -= skip
        return out[:, skip:]


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
        each: (channels, taps) filters, each for its own input channel (outputs = inputs).
    """

    def __init__(self, filters: np.ndarray, each: bool = False) -> None:
        f = np.asarray(filters, dtype=np.float32)
        self.each = each
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
        spec = h[:, 0] * xs if self.each else h[:, 0] * xs[0] if h.shape[1] == 1 else np.einsum("oik,ik->ok", h, xs)
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
        import scipy.signal

        sos = scipy.signal.butter(order // 2, cutoff, fs=sample_rate, output="sos")
        self._sos = np.vstack([sos, sos])
        self._zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter a block along its last axis."""
        import scipy.signal

        x = np.asarray(x, dtype=np.float64)
        if self._zi is None:
            self._zi = np.zeros((self._sos.shape[0],) + x.shape[:-1] + (2,))
        y, self._zi = scipy.signal.sosfilt(self._sos, x, axis=-1, zi=self._zi)
        return y.astype(np.float32)


class SignalStats:
    """Per-channel sample peak, integrated loudness and (optionally) true peak of a stream (for
    reports and `upmix info`).

    Args:
        sample_rate: Hz.
        weights: BS.1770 channel weights (see `bs1770_weights`).
        true_peak: also measure the true peak (`TruePeakMeter`).
    """

    def __init__(self, sample_rate: int, weights: ArrayLike, true_peak: bool = False) -> None:
        self.loudness = LoudnessMeter(sample_rate, weights)
        self.true_peak = TruePeakMeter() if true_peak else None
        self.peak = np.zeros(len(np.asarray(weights)))
        self.frames = 0

    def process(self, block: np.ndarray) -> None:
        if block.shape[1] == 0:
            return
        self.peak = np.maximum(self.peak, np.abs(block).max(axis=1))
        self.loudness.process(block)
        if self.true_peak is not None:
            self.true_peak.process(block)
        self.frames += block.shape[1]

    @property
    def peak_dbfs(self) -> list[float | None]:
        """Sample peak per channel in dBFS (None for a silent channel)."""
        return [to_db(p) for p in self.peak]

    @property
    def integrated_lufs(self) -> float | None:
        value = self.loudness.integrated()
        return round(value, 2) if math.isfinite(value) else None

    @property
    def true_peak_dbtp(self) -> float | None:
        """True peak over all channels in dBTP (None when not measured or silent)."""
        return None if self.true_peak is None else self.true_peak.dbtp


def _resample_filter(up: int, down: int) -> np.ndarray:
    """Anti-aliasing FIR for polyphase resampling by up/down.

    A Kaiser-windowed sinc (beta 9, 32 zero crossings each side, cut-off at 0.98 of the lower
    Nyquist frequency): in-band error about -100 dB, where scipy's default design (beta 5, 10 zero
    crossings) leaves about -60 dB.
    """
    import scipy.signal

    max_rate = max(up, down)
    return scipy.signal.firwin(2 * 32 * max_rate + 1, 0.98 / max_rate, window=("kaiser", 9.0))


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy's resample_poly with `_resample_filter`);
    float32 out."""
    if rate_in == rate_out:
        return np.asarray(audio, dtype=np.float32)
    import scipy.signal

    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    out = scipy.signal.resample_poly(audio, up, down, axis=-1, window=_resample_filter(up, down))
    return out.astype(np.float32)


class StreamResampler:
    """Block-by-block polyphase resampling whose output equals `resample` on the whole signal.

    Each call resamples the new input with enough neighbouring samples on both sides that the
    kept outputs never see the zero padding at the edges of the piece.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        g = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        self.h = _resample_filter(self.up, self.down)
        half_in = (len(self.h) // 2) // self.up + 2
        self.pad = -(-half_in // self.down) * self.down  # input samples of context, multiple of down
        self._buf: np.ndarray | None = None
        self._buf_start = 0  # input index of _buf[:, 0]
        self._in_done = 0  # input index up to which output has been produced (multiple of down)

    def _run(self, start: int, stop: int, keep_from: int, keep_to: int | None) -> np.ndarray:
        import scipy.signal

        seg = self._buf[:, start - self._buf_start:stop - self._buf_start]
        y = scipy.signal.resample_poly(seg, self.up, self.down, axis=-1, window=self.h)
        a = (keep_from - start) * self.up // self.down
        b = None if keep_to is None else (keep_to - start) * self.up // self.down
        return y[:, a:b].astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed (channels, frames) input; returns the output that is now complete."""
        x = np.asarray(x, dtype=np.float64)
        self._buf = x if self._buf is None else np.concatenate([self._buf, x], axis=1)
        total = self._buf_start + self._buf.shape[1]
        end = (total - self.pad) // self.down * self.down
        if end <= self._in_done:
            return np.zeros((x.shape[0], 0), dtype=np.float32)
        start = max(0, self._in_done - self.pad)
        y = self._run(start, end + self.pad, self._in_done, end)
        self._in_done = end
        drop = self._in_done - self.pad - self._buf_start
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return y

    def flush(self) -> np.ndarray:
        """The remaining output at the end of the stream."""
        if self._buf is None:
            return np.zeros((0, 0), dtype=np.float32)
        total = self._buf_start + self._buf.shape[1]
        if total <= self._in_done:
            return np.zeros((self._buf.shape[0], 0), dtype=np.float32)
        start = max(0, self._in_done - self.pad)
        y = self._run(start, total, self._in_done, None)
        self._in_done = total
        return y


class SnrMeter:
    """Running SNR (dB) of a processed stream against the input it should give back (a fold-down,
    a sum of stems), which arrives earlier: `feed` the input blocks, `check` each output block as
    written to the file (already mapped back to the input's channels; a mono input stands for each
    of them)."""

    def __init__(self) -> None:
        self._pending: list[np.ndarray] = []
        self._lock = threading.Lock()  # `feed` and `check` may run on different threads
        self.signal = self.error = 0.0

    def feed(self, block: np.ndarray) -> None:
        with self._lock:
            self._pending.append(block)

    def check(self, estimate: np.ndarray) -> None:
        n = estimate.shape[1]
        with self._lock:
            ref = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
            self._pending = [ref[:, n:]]
        ref = np.broadcast_to(ref[:, :n], estimate.shape)  # mono input: every channel
        # float32 sums are pairwise: 1e-7 relative, far below what an SNR of 150 dB needs
        self.signal += float(np.square(ref).sum())
        self.error += float(np.square(estimate - ref).sum())

    @property
    def snr_db(self) -> float | None:
        return None if self.signal == 0 else round(10 * np.log10(self.signal / max(self.error, 1e-30)), 2)
