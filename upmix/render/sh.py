"""Real spherical harmonics in the AmbiX convention (ACN channel order, SN3D normalisation).

The harmonics come from spaudiopy, which calls `scipy.special.sph_harm`; SciPy 1.17 removed that
function in favour of `sph_harm_y` (degree first, polar angle before azimuth). `spaudiopy()` puts
a shim with the old signature in place before spaudiopy is used: this is the one place that
knows about it.

Angles here are scene directions (unit vectors); ACN index of degree n, order m is n^2 + n + m.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from functools import lru_cache
from types import ModuleType

import numpy as np

from ..geometry import from_sofa_cartesian, to_spaudiopy


def _sph_harm(m, n, azimuth, colatitude):
    """scipy.special.sph_harm's old signature on top of sph_harm_y (SciPy >= 1.15)."""
    import scipy.special

    return scipy.special.sph_harm_y(n, m, colatitude, azimuth)


def spaudiopy() -> ModuleType:
    """The spaudiopy module, with the SciPy compatibility shim installed."""
    import scipy.special  # here, not at the top: `upmix run` of a stereo file needs none of it (0.13 s)

    if not hasattr(scipy.special, "sph_harm"):
        scipy.special.sph_harm = _sph_harm
    # spaudiopy's optional playback module prints and warns when PortAudio is missing; upmix does
    # not play audio, so both are kept off the user's screen
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import spaudiopy as spa
    return spa


def channels(order: int) -> int:
    """Number of Ambisonic channels of an order, (order + 1)^2."""
    return (order + 1) ** 2


ORDERS = range(1, 6)
"""Supported Ambisonic orders."""

AMBIX_ORDERS = {channels(n): n for n in ORDERS}
"""Ambisonic order by channel count."""


def degrees(order: int) -> np.ndarray:
    """Degree n of every ACN channel up to `order`."""
    return np.array([n for n in range(order + 1) for _ in range(2 * n + 1)])


def sn3d(order: int, directions: np.ndarray) -> np.ndarray:
    """SN3D real spherical harmonics, ACN order: (N, (order + 1)^2) for directions (N, 3)."""
    azi, colat = to_spaudiopy(np.asarray(directions, dtype=float).reshape(-1, 3))
    y_n3d = spaudiopy().sph.sh_matrix(order, azi, colat, "real")  # orthonormal
    return y_n3d * np.sqrt(4 * math.pi / (2 * degrees(order) + 1))


def max_re_weights(order: int) -> np.ndarray:
    """max-rE weight of every ACN channel (Zotter & Frank 2012)."""
    return spaudiopy().sph.max_rE_weights(order)[degrees(order)]


@lru_cache(maxsize=8)
def t_design(degree: int) -> np.ndarray:
    """Directions (Q, 3) of a spherical t-design of at least `degree` (Hardin & Sloane)."""
    return from_sofa_cartesian(spaudiopy().grids.load_t_design(min(max(degree, 1), 21)))
