"""Ambisonics: encoding objects to AmbiX (ACN, SN3D) at orders 1-5, decoding AmbiX to speakers
(AllRAD with max-rE) and to headphones (MagLS).

- Encoding gains are the SN3D spherical harmonics of the direction (W = 1 for a source).
  A spread source averages them over its cap, which lowers the higher orders smoothly.
- `allrad_decoder`: a max-rE sampling decoder onto a t-design of virtual speakers, each panned to
  the real layout by the point-source panner (Zotter & Frank 2012, "All-round Ambisonic panning
  and decoding"); the panner's virtual speakers fill layouts without bottom or top speakers.
  `speaker_decoder` refines it: on layouts without a lower layer the max-rE lobe of a source on
  the horizon lands partly on the height speakers and lifts its energy vector (8.7 degrees at
  order 3 on 4+7+0); a few L-BFGS steps on the decoding matrix, starting from AllRAD and held
  close to it, bring the energy-vector direction back onto the source over the layout's coverage
  and flatten the decoded energy (1.8 degrees and 1.7 dB spread there, against 8.7 and 3.1).
- `magls_decoder`: spaudiopy's magnitude-least-squares binaural decoder (Schoerkhuber, Zaunschirm &
  Hoeldrich 2018; Hold et al. 2023) on the HRTF set, which keeps the high-frequency magnitudes
  that a plain least-squares fit at low orders loses.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..cache import cached_arrays
from ..geometry import to_spaudiopy
from ..layouts import Layout
from .binaural import Hrtf
from .panning import panner_for
from .sh import channels, degrees, max_re_weights, sn3d, spaudiopy, t_design

_REFINEMENT = 1
"""Version of `speaker_decoder`'s refinement, part of its cache key."""


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


@lru_cache(maxsize=16)
def speaker_decoder(layout: Layout, order: int) -> np.ndarray:
    """Decoding matrix (layout channels, (order + 1)^2): AllRAD max-rE, refined so the energy
    vector points at the source and the decoded energy is even over directions the layout covers
    (elevation from -15 degrees up), with extra weight at the speakers' own directions.

    The refinement takes a second or two; its result is kept in the disk cache (`upmix.cache`)."""
    key = f"{layout!r}:{order}:{_REFINEMENT}".encode()
    return cached_arrays("decoder", key, lambda: {"decoder": _refined_decoder(layout, order)},
                         ("decoder",))["decoder"]


def _refined_decoder(layout: Layout, order: int) -> np.ndarray:
    import torch

    start = allrad_decoder(layout, order)[layout.main_indices]
    probe = np.concatenate([t_design(21), layout.positions])
    probe = probe[np.degrees(np.arcsin(np.clip(probe[:, 2], -1, 1))) >= -15.0]
    y = torch.tensor(sn3d(order, probe))
    u = torch.tensor(layout.positions)
    target = torch.tensor(probe)
    weight = torch.ones(len(probe), dtype=torch.float64)
    weight[-len(layout.positions):] = 5.0
    d0 = torch.tensor(start)
    d = d0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([d], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        e = (y @ d.T) ** 2
        total = e.sum(dim=1)
        r_e = (e @ u) / total[:, None]
        direction = r_e / r_e.norm(dim=1, keepdim=True)
        value = (50 * (weight * ((direction - target) ** 2).sum(dim=1)).mean()
                 + 0.5 * (torch.log(total) ** 2).mean()
                 + ((1 - r_e.norm(dim=1)) ** 2).mean()
                 + 0.05 * ((d - d0) ** 2).sum() / (d0 ** 2).sum())
        value.backward()
        return value

    for _ in range(3):
        opt.step(loss)
    decoder = np.zeros((layout.num_channels, channels(order)))
    decoder[layout.main_indices] = d.detach().numpy()
    return decoder


def decoding_mixer(target, order: int, sample_rate: int):
    """A mixer (see `upmix.render.targets`) that decodes order-`order` AmbiX to `target`."""
    from .targets import AmbisonicsTarget, BinauralTarget, FilterMixer, GainMixer

    if isinstance(target, BinauralTarget):
        return FilterMixer(magls_decoder(target.prepared(sample_rate), order))
    if isinstance(target, AmbisonicsTarget):  # change of order: keep the common channels
        return GainMixer(np.eye(target.num_channels, channels(order)))
    return GainMixer(speaker_decoder(target.layout, order))


class AmbixRenderer:
    """Decode a stream of AmbiX blocks (ACN, SN3D) to a target, block by block."""

    def __init__(self, blocks, target, order: int, sample_rate: int) -> None:
        self._blocks, self.order = blocks, order
        self._mixer = decoding_mixer(target, order, sample_rate)

    def blocks(self):
        """Decoded (channels, frames) blocks, then the decoder filters' tail."""
        for block in self._blocks:
            yield self._mixer.process(block)
        if self._mixer.tail:
            yield self._mixer.process(np.zeros((channels(self.order), self._mixer.tail), dtype=np.float32))
