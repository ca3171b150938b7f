"""Stereo spatial decomposition: direct sound located per time-frequency bin, plus ambience.

Per STFT bin, the smoothed 2x2 inter-channel covariance (auto spectra and cross spectrum, averaged
over about 150 ms and five neighbouring bins) is decomposed as in principal-component
primary-ambient extraction (Merimaa, Goodwin & Jot 2007; He, Tan & Gan 2014; the coherence model of
Avendano & Jot 2004): the principal eigenvector gives the panning of the dominant (primary) source,
(cos theta, sin theta e^(j phi)), its level and phase relation between the channels; the eigenvalue
spread gives how much of the bin is directional, 2 sqrt(((a-b)/2)^2 + |c|^2) / lambda_1. Components
whose channels are out of phase count as ambience (as in matrix decoders), so anti-phase and
decorrelated sound both end up in the ambience.

The primary part of each bin is projected onto its panning direction (a mono "virtual source" per
bin, like the azimuth discrimination of ADRess, Barry et al. 2004, but continuous) and re-panned
by `upmix.placement.Stage`: to the stage azimuth its stereo energy vector maps to, or to the centre
speaker when it is panned to the middle. The rest of the bin, left and right, is the ambience,
spread decorrelated over the side, back and height speakers.
"""

from __future__ import annotations

import torch

from ..placement import Stage, stereo_azimuth
from ..stft import smooth_bins, smooth_frames, time_constant
from .staged import Bus, StagedSeparator

SMOOTHING_S = 0.15
"""Time constant of the covariance estimates, seconds."""

SMOOTHING_BINS = 5
"""Frequency bins averaged in the covariance estimates."""

SPREAD_BIAS = 0.1
"""Normalised squared eigenvalue spread ((a - b)^2 + 4 |c|^2) / (a + b)^2 that the averaging leaves
between two independent signals of equal power (measured 0.069 for the settings above; a little
more is removed): estimates are rescaled so it maps to 0 (all ambience) and 1 stays 1."""


class SpatialSeparator(StagedSeparator):
    """Stereo in; direct stems on the stage's speakers and ambience stems around.

    Args:
        stage: placement rules of the target layout.
        device: ``auto``, ``cpu`` or ``cuda``.
        exact_downmix: make the ITU fold-down of the output equal the input.
    """

    name = "spatial"
    input_channels = 2

    def __init__(self, stage: Stage, device: str = "auto", exact_downmix: bool = False) -> None:
        super().__init__(stage, device, exact_downmix)
        self._ring_side = torch.tensor([stage.dests[i].side for i in stage.ring], device=self.device)

    def _buses(self) -> list[Bus]:
        shares = self.stage.ambience_shares()
        return [Bus("ambience", tuple((d, w, self.stage.dests[d].role != "front") for d, w in shares[side]))
                for side in (1, -1)]

    def _reset(self, sample_rate: int, hop: int) -> None:
        self._alpha = time_constant(SMOOTHING_S, hop, sample_rate)
        self._state: dict[str, torch.Tensor | None] = {"ll": None, "rr": None, "lr": None}

    def _smooth(self, key: str, x: torch.Tensor) -> torch.Tensor:
        y, self._state[key] = smooth_frames(smooth_bins(x, SMOOTHING_BINS), self._alpha, self._state[key])
        return y

    def _process(self, spec: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        xl, xr = spec[0], spec[1]
        a = self._smooth("ll", xl.abs() ** 2)
        b = self._smooth("rr", xr.abs() ** 2)
        c = self._smooth("lr", xl * xr.conj())
        c_abs = c.abs()
        theta = 0.5 * torch.atan2(2 * c_abs, a - b)  # 0 = all left, pi/2 = all right
        rel = torch.polar(torch.ones_like(c_abs), -torch.angle(c))  # phase of right relative to left
        cos_t, sin_t = torch.cos(theta), torch.sin(theta)
        # eigenvalue spread (lambda1 - lambda2) / (lambda1 + lambda2), bias-corrected; the share
        # of the bin along the principal direction that is directional is 2 r / (1 + r)
        r2 = ((a - b) ** 2 + 4 * c_abs ** 2) / ((a + b) ** 2).clamp(min=1e-30)
        r = torch.sqrt(((r2 - SPREAD_BIAS) / (1 - SPREAD_BIAS)).clamp(0.0, 1.0))
        directional = 2 * r / (1 + r)
        in_phase = 1 - torch.sin(2 * theta) * (1 - rel.real) / 2
        gamma = (directional * in_phase).clamp(0.0, 1.0)
        full = cos_t * xl + sin_t * rel.conj() * xr  # the bin projected on the panning direction
        s = gamma * full  # mono primary: P = s (cos theta, sin theta e^(j phi))
        # ambience: what is off the panning direction, plus the rest along it. Primary and
        # ambience are rendered incoherently, so the off-direction part is raised to make up the
        # energy 2 gamma (1 - gamma) |full|^2 the split loses (at most 6 dB, and never along the
        # direction, so leakage of a panned source stays where it was).
        off = torch.stack([xl - full * cos_t, xr - full * sin_t * rel])
        e_off = (off.abs() ** 2).sum(dim=0)
        lost = 2 * gamma * (1 - gamma) * full.abs() ** 2
        boost = torch.sqrt(1 + lost / e_off.clamp(min=1e-30)).clamp(max=2.0)
        along = (1 - gamma) * full
        ambience = off * boost + torch.stack([along * cos_t, along * sin_t * rel])

        stage = self.stage
        az = stereo_azimuth(theta)
        centre = stage.centre_weight(az)
        energies = stage.ring_energies(az * (stage.options.width / 30.0)) * (1 - centre)[..., None]
        direct = {}
        half_turn = torch.polar(torch.ones_like(c_abs), -torch.angle(c) / 2)
        for j, dest in enumerate(stage.ring):
            if dest not in stage.direct:
                continue
            phase = rel if int(self._ring_side[j]) < 0 else 1.0
            direct[dest] = s * torch.sqrt(energies[..., j]) * phase
        if stage.centre is not None:
            direct[stage.centre] = s * torch.sqrt(centre) * half_turn
        return direct, ambience

