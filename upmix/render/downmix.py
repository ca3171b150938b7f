"""ITU-R BS.775-style fold-down of any speaker layout to stereo (Lo/Ro).

Front speakers (|azimuth| <= 60 degrees, on the horizontal plane) go at full level into their side,
the centre at -3 dB into both; every other speaker (sides, backs, heights, bottoms) at -3 dB into its
side, and speakers on the median plane other than the front centre at -3 dB split over both sides
(-6 dB each). LFE channels are left out, as in a Lo/Ro downmix.
"""

from __future__ import annotations

import numpy as np

from ..layouts import Layout

_M3DB = np.sqrt(0.5)


def fold_down_gains(azimuth: float, elevation: float) -> tuple[float, float]:
    """(left, right) fold-down coefficients of a speaker at azimuth/elevation degrees."""
    median = abs(azimuth) < 1.0 or abs(azimuth) > 179.0
    horizontal = abs(elevation) <= 10.0
    if median:
        c = _M3DB if (horizontal and abs(azimuth) < 1.0) else 0.5
        return c, c
    level = 1.0 if (horizontal and abs(azimuth) <= 60.0) else _M3DB
    return (level, 0.0) if azimuth > 0 else (0.0, level)


def fold_down_matrix(layout: Layout) -> np.ndarray:
    """(2, channels) matrix taking a layout's channels to Lo/Ro."""
    m = np.zeros((2, layout.num_channels))
    for i, s in enumerate(layout.speakers):
        if not s.is_lfe:
            m[:, i] = fold_down_gains(s.azimuth, s.elevation)
    return m


def complementary_gains(folds: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Gains that spread one ambience signal A over a front speaker and N others so that the
    fold-down returns A exactly and the energy is kept.

    The others fold into the front speaker's side with coefficients g_i (`folds`); each gets
    alpha_i A + beta_i (d_i * A), with d_i mutually decorrelated all-pass filters, and the front
    speaker gets what makes the fold-down exact, A - sum g_i (alpha_i A + beta_i d_i * A) =
    c A - sum g_i beta_i d_i * A. With alpha_i = g_i c and c = 1 / (1 + sum g_i^2), the terms
    coherent with A cancel in the energy, which is c + sum beta_i^2 (1 + g_i^2); the beta_i take
    the rest, 1 - c, in proportion to `weights`. So the split between front and around is fixed
    by the fold coefficients: with one surround at -3 dB (5.1) the front keeps 5/9 of the
    ambience's energy, with four (7.1.4) 1/3.

    Returns (c, alpha (N,), beta (N,)).
    """
    g = np.asarray(folds, dtype=float)
    w = np.asarray(weights, dtype=float)
    c = 1.0 / (1.0 + np.sum(g ** 2))
    beta = np.sqrt((1.0 - c) * w / np.sum(w) / (1.0 + g ** 2))
    return c, g * c, beta
