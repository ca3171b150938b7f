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
