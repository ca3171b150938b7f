"""Shared DSP: loudness against pyloudnorm, block convolution, decorrelation, filters."""

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

from upmix.dsp import BlockConvolver, LoudnessMeter, LowPass, bs1770_weights, decorrelation_filters


@pytest.mark.parametrize("channels,weights", [(1, [1.0]), (2, [1.0, 1.0]), (5, [1, 1, 1, 1.41, 1.41])])
def test_loudness_matches_pyloudnorm(rng, channels, weights):
    x = rng.standard_normal((channels, 48000 * 6)) * 0.05
    x[:, :48000 * 2] *= 0.001  # a quiet stretch the gates must drop
    meter = LoudnessMeter(48000, weights)
    for start in range(0, x.shape[1], 7001):
        meter.process(x[:, start:start + 7001])
    ref = pyloudnorm.Meter(48000).integrated_loudness(x.T)
    assert meter.integrated() == pytest.approx(ref, abs=0.01)


def test_loudness_of_a_1k_sine_is_minus_3_lufs():
    """BS.1770: a 0 dBFS 1 kHz sine in one channel of a stereo pair reads -3.01 LKFS."""
    t = np.arange(48000 * 3) / 48000
    x = np.stack([np.sin(2 * np.pi * 997 * t), np.zeros_like(t)])
    meter = LoudnessMeter(48000)
    meter.process(x)
    assert meter.integrated() == pytest.approx(-3.01, abs=0.05)


def test_silence_and_short_input():
    meter = LoudnessMeter(48000)
    meter.process(np.zeros((2, 48000)))
    assert meter.integrated() == -np.inf
    short = LoudnessMeter(48000)
    short.process(np.ones((1, 1000)))
    assert short.integrated() == -np.inf


def test_bs1770_weights():
    w = bs1770_weights([30, -30, 0, 0, 110, -110, 135, 45], [0, 0, 0, 0, 0, 0, 0, 30],
                       [False, False, False, True, False, False, False, False])
    np.testing.assert_allclose(w, [1, 1, 1, 0, 1.41, 1.41, 1, 1])


def test_block_convolver_equals_full_convolution(rng):
    h = rng.standard_normal((3, 300)).astype(np.float32)
    x = np.concatenate([rng.standard_normal(5000), np.zeros(299)]).astype(np.float32)
    conv = BlockConvolver(h)
    parts = []
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, 700))
        parts.append(conv.process(x[pos:pos + n]))
        pos += n
    np.testing.assert_allclose(np.concatenate(parts, axis=1), np.stack([np.convolve(x[:5000], k) for k in h]),
                               atol=1e-4)
    # several inputs: every output sums its filters over the inputs
    hm = rng.standard_normal((2, 3, 50)).astype(np.float32)
    xm = rng.standard_normal((3, 400)).astype(np.float32)
    y = BlockConvolver(hm).process(np.pad(xm, ((0, 0), (0, 49))))
    ref = np.stack([sum(np.convolve(xm[i], hm[o, i]) for i in range(3)) for o in range(2)])
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_decorrelation_filters_are_allpass_and_decorrelated(rng):
    h = decorrelation_filters(24)
    mag = np.abs(np.fft.rfft(h, axis=1))
    np.testing.assert_allclose(mag / mag.mean(), 1.0, atol=1e-4)
    noise = rng.standard_normal(48000 * 2)
    y = np.stack([scipy.signal.fftconvolve(noise, k) for k in h])
    c = np.corrcoef(y)
    assert np.max(np.abs(c[~np.eye(24, dtype=bool)])) < 0.08
    np.testing.assert_array_equal(h, decorrelation_filters(24))  # deterministic


def test_lowpass_streams_and_cuts(rng):
    x = rng.standard_normal((2, 20000))
    whole = LowPass(48000, 120.0).process(x)
    lp = LowPass(48000, 120.0)
    parts = np.concatenate([lp.process(x[:, i:i + 999]) for i in range(0, 20000, 999)], axis=1)
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    sos = np.vstack([scipy.signal.butter(2, 120, fs=48000, output="sos")] * 2)
    _, resp = scipy.signal.sosfreqz(sos, worN=[120, 1000], fs=48000)
    assert abs(resp[0]) == pytest.approx(0.5, abs=1e-3)  # -6 dB at the cut-off (Linkwitz-Riley)
    assert abs(resp[1]) < 1e-3


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_k_weighting_is_pyloudnorms_filter_pair(rate):
    """The biquads are pyloudnorm's designs (its IIRfilter, which imports scipy.signal), and the
    impulse response the meter convolves with is theirs, cut where nothing is left of it."""
    from pyloudnorm.iirfilter import IIRfilter

    from upmix.dsp import k_weighting, k_weighting_fir

    theirs = [IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf"), IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")]
    for (b, a), f in zip(k_weighting(rate), theirs):
        np.testing.assert_allclose(b, f.b, rtol=1e-12)
        np.testing.assert_allclose(a, f.a, rtol=1e-12)
    fir = k_weighting_fir(rate)
    impulse = np.zeros(8 * len(fir))
    impulse[0] = 1.0
    for f in theirs:
        impulse = scipy.signal.lfilter(f.b, f.a, impulse)
    np.testing.assert_allclose(fir, impulse[:len(fir)], atol=1e-6)
    assert np.sum(impulse[len(fir):] ** 2) < 1e-9 * np.sum(impulse ** 2)


def test_block_convolver_filters_each_channel_with_its_own(rng):
    h = rng.standard_normal((2, 40)).astype(np.float32)
    x = rng.standard_normal((2, 1000)).astype(np.float32)
    conv = BlockConvolver(h, each=True)
    y = np.concatenate([conv.process(x[:, :300]), conv.process(x[:, 300:])], axis=1)
    np.testing.assert_allclose(y, np.stack([np.convolve(x[c], h[c])[:1000] for c in range(2)]), atol=1e-4)
