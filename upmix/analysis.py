"""Objective measures of an upmix and the test signal of the upmix quality protocol.

- `energy_vector_azimuth`: Gerzon's energy vector over a layout's non-LFE speakers, degrees.
- `fold_down_snr`: the ITU stereo fold-down of a multichannel signal against a reference, dB.
- `protocol_signal`: panned noise bursts, decorrelated and anti-phase noise, and five
  simultaneous panned tones (the protocol of `benchmarks/upmix_quality.py`).
- `reverberation_time`: RT60 of an impulse response in an octave band from its T30 (ISO 3382).
- `out_of_tone_db`: the worst short-time share of energy away from a test tone (clicks, splatter).
- `si_sdr`, `sdr`: separation quality of an estimate against its reference, dB.

Angles are degrees, azimuth anticlockwise from the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from .geometry import cartesian
from .layouts import Layout
from .render.downmix import fold_down_matrix

PANS = (-1.0, -0.3, 0.0, 0.6, 1.0)
"""Pan positions of the protocol (-1 = hard left), constant-power sin/cos law."""

TONES_HZ = (300.0, 700.0, 1100.0, 1900.0, 3100.0)
"""Frequencies of the five simultaneous tones, one at each pan position."""


def pan_gains(p: float) -> tuple[float, float]:
    """(left, right) gains of the constant-power sin/cos law, p = -1 hard left .. +1 hard right."""
    angle = (p + 1) * math.pi / 4
    return math.cos(angle), math.sin(angle)


def stereo_azimuth(p: float, half_angle: float = 30.0) -> float:
    """Energy-vector azimuth (degrees) of a source panned at p on a +-half_angle pair."""
    g_l, g_r = pan_gains(p)
    return math.degrees(math.atan(math.tan(math.radians(half_angle)) * (g_l ** 2 - g_r ** 2)))


def energy_vector_azimuth(energies: np.ndarray, layout: Layout) -> float:
    """Azimuth (degrees) of the energy vector of per-channel energies (all layout channels;
    LFE channels are left out)."""
    e = np.asarray(energies, dtype=float)[layout.main_indices]
    sp = layout.main_speakers
    v = e @ cartesian([s.azimuth for s in sp], [s.elevation for s in sp]).reshape(-1, 3)
    return math.degrees(math.atan2(-v[0], v[1]))


def fold_down(audio: np.ndarray, layout: Layout) -> np.ndarray:
    """ITU fold-down (2, frames) of a (channels, frames) signal in the layout's channel order."""
    return fold_down_matrix(layout) @ audio


def fold_down_snr(audio: np.ndarray, layout: Layout, reference: np.ndarray) -> float:
    """SNR in dB of the fold-down of `audio` against the stereo `reference` (same alignment)."""
    return sdr(fold_down(audio, layout), reference)


@dataclass(frozen=True)
class Segment:
    """A part of the protocol signal: label, start and end (samples), kind ("pan", "decorrelated",
    "antiphase" or "tone"), pan position and tone frequency where they apply."""

    label: str
    start: int
    stop: int
    kind: str
    pan: float | None = None
    freq: float | None = None


def protocol_signal(sample_rate: int = 48000, burst_s: float = 7.0, tone_s: float = 11.0,
                    level: float = 0.1, seed: int = 0) -> tuple[np.ndarray, list[Segment]]:
    """The upmix protocol's stereo test signal and its segments.

    Five white-noise bursts panned at `PANS`, then decorrelated noise, then anti-phase noise
    (L = -R), each `burst_s` long, then `tone_s` of the five tones of `TONES_HZ` sounding together,
    each at its pan position. Noise has RMS `level` per burst; each tone has amplitude `level`.
    """
    rng = np.random.default_rng(seed)
    n = int(burst_s * sample_rate)
    parts, segments, pos = [], [], 0
    for p in PANS:
        g_l, g_r = pan_gains(p)
        x = rng.standard_normal(n) * level
        parts.append(np.stack([g_l * x, g_r * x]))
        segments.append(Segment(f"noise p={p:+.1f}", pos, pos + n, "pan", pan=p))
        pos += n
    parts.append(rng.standard_normal((2, n)) * level / math.sqrt(2))
    segments.append(Segment("decorrelated noise", pos, pos + n, "decorrelated"))
    pos += n
    x = rng.standard_normal(n) * level / math.sqrt(2)
    parts.append(np.stack([x, -x]))
    segments.append(Segment("anti-phase noise", pos, pos + n, "antiphase"))
    pos += n
    m = int(tone_s * sample_rate)
    t = np.arange(m) / sample_rate
    tones = np.zeros((2, m))
    for p, f in zip(PANS, TONES_HZ):
        g_l, g_r = pan_gains(p)
        tone = level * np.sin(2 * np.pi * f * t)
        tones += np.stack([g_l * tone, g_r * tone])
        segments.append(Segment(f"tone {f:g} Hz p={p:+.1f}", pos, pos + m, "tone", pan=p, freq=f))
    parts.append(tones)
    return np.concatenate(parts, axis=1).astype(np.float32), segments


def band(audio: np.ndarray, sample_rate: int, freq: float, width_octaves: float = 0.25) -> np.ndarray:
    """Zero-phase band-pass around `freq` (to take one tone out of a mix)."""
    lo, hi = freq * 2 ** (-width_octaves / 2), freq * 2 ** (width_octaves / 2)
    sos = scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, audio, axis=-1)


def reverberation_time(ir: np.ndarray, sample_rate: int, centre: float) -> float:
    """RT60 in seconds from the T30 of an impulse response (channels, frames) in the octave band
    around `centre` Hz: the -5 to -35 dB slope of the Schroeder decay of all channels' energy."""
    sos = scipy.signal.butter(3, [centre / math.sqrt(2), centre * math.sqrt(2)], "bandpass", fs=sample_rate,
                              output="sos")
    energy = (scipy.signal.sosfiltfilt(sos, np.atleast_2d(ir).astype(float), axis=-1) ** 2).sum(axis=0)
    decay = np.cumsum(energy[::-1])[::-1]
    decay = 10 * np.log10(decay / decay[0] + 1e-30)
    a, b = int(np.argmax(decay < -5)), int(np.argmax(decay < -35))
    slope = np.polyfit(np.arange(a, b) / sample_rate, decay[a:b], 1)[0]
    return -60.0 / slope


def out_of_tone_db(audio: np.ndarray, sample_rate: int, freq: float, guard: float = 400.0) -> float:
    """The worst frame's energy more than `guard` Hz away from a tone at `freq` Hz, in dB relative
    to the energy near it (all channels, 1024-sample Blackman-Harris frames every 128 samples).
    A clean, slowly changing tone scores below -80 dB; a click or a switched filter shows up."""
    f, _, spec = scipy.signal.stft(np.atleast_2d(audio), sample_rate, window="blackmanharris", nperseg=1024,
                                   noverlap=1024 - 128, boundary=None)
    power = (np.abs(spec) ** 2).sum(axis=0)
    near = np.abs(f - freq) < guard
    return float(10 * np.log10((power[~near].sum(axis=0) / power[near].sum(axis=0)).max()))


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019) of an estimate of
    a reference (same shape; channels are concatenated)."""
    e, r = np.ravel(estimate).astype(float), np.ravel(reference).astype(float)
    e, r = e - e.mean(), r - r.mean()
    target = (e @ r) / max(r @ r, 1e-20) * r
    return float(10 * np.log10(max(target @ target, 1e-20) / max((e - target) @ (e - target), 1e-20)))


def sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-distortion ratio (SNR) in dB as the music separation challenges report it (the
    reference's energy over the error's, no scaling)."""
    e, r = np.ravel(estimate).astype(float), np.ravel(reference).astype(float)
    return float(10 * np.log10(max(r @ r, 1e-30) / max((e - r) @ (e - r), 1e-30)))


@dataclass(frozen=True)
class SegmentResult:
    """Measures of one segment: energy-vector azimuth and its expected value (degrees), output /
    input energy (dB), fold-down SNR (dB), share of the energy on side/back/height speakers."""

    segment: Segment
    azimuth: float
    expected: float | None
    energy_db: float
    fold_down_snr_db: float
    surround_share: float


def measure(output: np.ndarray, reference: np.ndarray, layout: Layout, segments: list[Segment],
            sample_rate: int, width: float = 30.0, guard_s: float = 0.5) -> list[SegmentResult]:
    """Measure each segment of an aligned (output, stereo reference) pair.

    `guard_s` seconds are left out at both ends of every segment (filter and smoothing settling).
    Tones are band-passed out of output and reference first.
    """
    guard = int(guard_s * sample_rate)
    surround = [i for i, s in enumerate(layout.speakers) if not s.is_lfe and
                (abs(s.elevation) >= 20 or abs(s.azimuth) > 60)]
    results = []
    for seg in segments:
        lo, hi = seg.start + guard, seg.stop - guard
        out, ref = output[:, lo:hi].astype(float), reference[:, lo:hi].astype(float)
        if seg.kind == "tone":
            # filter the whole segment, then drop the guard, so the band-pass edges do not count
            out = band(output[:, seg.start:seg.stop], sample_rate, seg.freq)[:, guard:-guard]
            ref = band(reference[:, seg.start:seg.stop], sample_rate, seg.freq)[:, guard:-guard]
        e = np.sum(out ** 2, axis=1)
        expected = stereo_azimuth(seg.pan) * width / 30.0 if seg.pan is not None else None
        results.append(SegmentResult(
            segment=seg, azimuth=energy_vector_azimuth(e, layout), expected=expected,
            energy_db=10 * math.log10(e.sum() / np.sum(ref ** 2)),
            fold_down_snr_db=fold_down_snr(out, layout, ref), surround_share=float(e[surround].sum() / e.sum())))
    return results
