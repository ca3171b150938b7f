"""Ambisonics: encoding objects to AmbiX (ACN, SN3D) at orders 1-5, decoding AmbiX to speakers
(AllRAD with max-rE) and to headphones (MagLS).

- Encoding gains are the SN3D spherical harmonics of the direction (W = 1 for a source).
  A spread source averages them over its cap, which lowers the higher orders smoothly.
- `allrad_decoder`: a max-rE sampling decoder onto a t-design of virtual speakers, each panned to
  the real layout by the point-source panner (Zotter & Frank 2012, "All-round Ambisonic panning
  and decoding"); the panner's virtual speakers fill layouts without bottom or top speakers.
- `magls_decoder`: spaudiopy's magnitude-least-squares binaural decoder (Schoerkhuber, Zaunschirm &
  Hoeldrich 2018; Hold et al. 2023) on the HRTF set, which keeps the high-frequency magnitudes
  that a plain least-squares fit at low orders loses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..geometry import to_spaudiopy
from ..layouts import Layout
from .binaural import Hrtf
from .panning import panner_for
from .sh import channels, degrees, max_re_weights, sn3d, spaudiopy, t_design

ORDERS = range(1, 6)
"""Supported Ambisonic orders."""


def encode(order: int, directions: np.ndarray) -> np.ndarray:
    """Encoding gains (N, (order + 1)^2) for point sources in `directions` (N, 3)."""
    return sn3d(order, directions)


@lru_cache(maxsize=16)
def allrad_decoder(layout: Layout, order: int) -> np.ndarray:
    """Decoding matrix (layout channels, (order + 1)^2) for SN3D/ACN signals, max-rE, AllRAD.

    Normalised so that a source encoded from any direction decodes to unit energy on average.
    """
    virtual = t_design(2 * order + 2)
    y = sn3d(order, virtual)  # (Q, K)
    w = max_re_weights(order) * (2 * degrees(order) + 1)
    sampling = y * w / len(virtual)  # virtual speaker q <- channel k
    pan = panner_for(layout).gains(virtual)  # (Q, main speakers)
    main = pan.T @ sampling  # (main, K)
    probe = t_design(21)
    energy = np.mean(np.sum((sn3d(order, probe) @ main.T) ** 2, axis=1))
    decoder = np.zeros((layout.num_channels, channels(order)))
    decoder[layout.main_indices] = main / np.sqrt(energy)
    return decoder


def magls_decoder(hrtf: Hrtf, order: int) -> np.ndarray:
    """Binaural decoding filters (2 ears, (order + 1)^2, taps) for SN3D/ACN signals (MagLS)."""
    spa = spaudiopy()
    irs = hrtf.hrirs(hrtf.directions)
    azi, colat = to_spaudiopy(hrtf.directions)
    filters = spa.decoder.magls_bin(spa.sig.HRIRs(irs[:, 0], irs[:, 1], azi, colat, hrtf.sample_rate), order)
    # the decoder expects orthonormal (N3D / sqrt(4 pi)) coefficients: scale SN3D input up
    return filters * np.sqrt((2 * degrees(order) + 1) / (4 * np.pi))[None, :, None]
