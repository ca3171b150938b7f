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
by `upmix.stage.Stage`: to the stage azimuth its stereo energy vector maps to, or to the centre
speaker when it is panned to the middle. The rest of the bin, left and right, is the ambience,
spread decorrelated over the side, back and height speakers.
"""

from __future__ import annotations

import math

import numpy as np

from ..stage import STEREO_HALF_ANGLE, Stage
from ..stft import Array, smooth_bins, smooth_frames, time_constant, to_device
from .staged import Bus, StagedSeparator

TAN_HALF_ANGLE = math.tan(math.radians(STEREO_HALF_ANGLE))

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
        # the stage as recorded (width 30 on a +-30 pair): the ring gains are the panning gains
        # themselves, so skip the table
        names = {stage.dests[d].azimuth for d in self.direct if d != stage.centre}
        self._as_recorded = stage.options.width == STEREO_HALF_ANGLE and names == {30.0, -30.0}
        self._complementary_centre = self._as_recorded and stage.options.fold_back and stage.centre is not None
        # phase reference of each direct destination: left side 0, right side 1, centre 1/2 of
        # the right channel's phase relative to the left
        self._phase = [0.5 if d == stage.centre else (1.0 if stage.dests[d].side < 0 else 0.0)
                       for d in self.direct]

    def _buses(self) -> list[Bus]:
        if self.stage.options.fold_back:
            spread = self.stage.ambience_fold_back()
            return [Bus("ambience", ((front, 1.0, False),) + tuple((d, 1.0, True) for d, *_ in around),
                        fold_back=(c, tuple((alpha, beta, fold) for _, alpha, beta, fold in around)))
                    for front, c, around in (spread[side] for side in (1, -1))]
        shares = self.stage.ambience_shares()
        return [Bus("ambience", tuple((d, w, self.stage.dests[d].role != "front") for d, w in shares[side]))
                for side in (1, -1)]

    def _reset(self, sample_rate: int, hop: int) -> None:
        self._table = to_device(np.asarray(self.stage.direct_gains_table(), dtype=np.float32), self.xp, self.device)
        self._alpha = time_constant(SMOOTHING_S, hop, sample_rate)
        self._state: Array | None = None

    def _direct_gains(self, stereo_az: Array) -> Array:
        """Rows of the gains table for stereo azimuths (degrees), linearly interpolated."""
        xp, steps = self.xp, self._table.shape[0]
        pos = xp.clip((stereo_az + STEREO_HALF_ANGLE) * ((steps - 1) / (2 * STEREO_HALF_ANGLE)), min=0, max=steps - 1)
        lo = xp.clip(xp.astype(xp.floor(pos), xp.int64), max=steps - 2)
        frac = (pos - xp.astype(lo, pos.dtype))[..., None]
        return self._table[lo] * (1 - frac) + self._table[lo + 1] * frac

    def _as_recorded_gains(self, stereo_az: Array, cos_t: Array, sin_t: Array) -> Array:
        """Direct gains for the stage as recorded: (cos, sin) on the pair, less the centre's share."""
        xp = self.xp
        centre = self.stage.centre_weight(stereo_az)
        rest = xp.sqrt(1 - centre)
        return xp.stack([xp.sqrt(centre) if d == self.stage.centre else
                         rest * (cos_t if self.stage.dests[d].azimuth > 0 else sin_t) for d in self.direct], axis=-1)

    def _process(self, spec: Array) -> tuple[dict[int, Array], Array]:
        xp = self.xp
        xl, xr = spec[0], spec[1]
        cross = xl * xr.conj()
        inst = xp.stack([xl.real ** 2 + xl.imag ** 2, xr.real ** 2 + xr.imag ** 2, cross.real, cross.imag])
        stats, self._state = smooth_frames(smooth_bins(inst, SMOOTHING_BINS), self._alpha, self._state)
        a, b, c_re, c_im = stats
        diff = a - b
        c_abs = xp.sqrt(c_re ** 2 + c_im ** 2)
        spread = xp.sqrt(diff ** 2 + 4 * c_abs ** 2)  # lambda1 - lambda2, never below |diff|
        safe = xp.maximum(spread, 1e-30)
        cos2 = diff / safe  # cos 2 theta, 1 = all left (0 where spread, and so diff, is 0)
        sin2 = 2 * c_abs / safe
        cos_t, sin_t = xp.sqrt(xp.maximum(1 + cos2, 0) / 2), xp.sqrt(xp.maximum(1 - cos2, 0) / 2)
        # phase of the right channel relative to the left, as a unit phasor (1 where there is none)
        silent = xp.astype(c_abs == 0, c_abs.dtype)
        rel = (c_re + silent - 1j * c_im) / (c_abs + silent)
        # normalised eigenvalue spread, bias-corrected; the directional share along the principal
        # direction is 2 r / (1 + r); out-of-phase components count as ambience
        r2 = (spread / xp.maximum(a + b, 1e-30)) ** 2
        r = xp.sqrt(xp.minimum(xp.maximum((r2 - SPREAD_BIAS) / (1 - SPREAD_BIAS), 0.0), 1.0))
        in_phase = 1 - sin2 * (1 - rel.real) / 2
        gamma = xp.minimum(xp.maximum(2 * r / (1 + r) * in_phase, 0.0), 1.0)

        full = cos_t * xl + sin_t * rel.conj() * xr  # the bin projected on the panning direction
        s = gamma * full  # mono primary: P = s (cos theta, sin theta e^(j phi))
        # ambience: what is off the panning direction, plus the rest along it. Primary and
        # ambience are rendered incoherently, so the off-direction part is raised to make up the
        # energy 2 gamma (1 - gamma) |full|^2 the split loses (at most 6 dB, and never along the
        # direction, so leakage of a panned source stays where it was). Where the ambience folds
        # back (`StageOptions.fold_back`), the split must add up to the bin instead: nothing is
        # raised, and the ambience is the bin less the primary.
        if self.stage.options.fold_back:
            ambience = xp.stack([xl - s * cos_t, xr - s * sin_t * rel])
        else:
            off_l, off_r = xl - full * cos_t, xr - full * sin_t * rel
            e_off = off_l.real ** 2 + off_l.imag ** 2 + off_r.real ** 2 + off_r.imag ** 2
            e_full = full.real ** 2 + full.imag ** 2
            boost = xp.minimum(xp.sqrt(1 + 2 * gamma * (1 - gamma) * e_full / xp.maximum(e_off, 1e-30)), 2.0)
            along = (1 - gamma) * full
            ambience = xp.stack([off_l * boost + along * cos_t, off_r * boost + along * sin_t * rel])

        stereo_az = xp.atan(TAN_HALF_ANGLE * cos2) * (180 / math.pi)
        half = (1 + rel) / xp.maximum(xp.abs(1 + rel), 1e-30)  # half the relative phase
        if self._complementary_centre:
            return self._folding_back(s, stereo_az, cos_t, sin_t, rel, half), ambience
        gains = self._as_recorded_gains(stereo_az, cos_t, sin_t) if self._as_recorded else \
            self._direct_gains(stereo_az)
        direct = {}
        for k, dest in enumerate(self.direct):
            g = s * gains[..., k]
            direct[dest] = g * rel if self._phase[k] == 1.0 else g * half if self._phase[k] == 0.5 else g
        return direct, ambience

    def _folding_back(self, s: Array, stereo_az: Array, cos_t: Array, sin_t: Array, rel: Array, half: Array
                      ) -> dict[int, Array]:
        """Direct spectra of the stage as recorded whose ITU fold-down is the primary itself: the
        centre takes sqrt(centre weight) (cos + sin) / sqrt 2 of it, with half the relative phase
        (all of a source panned to the middle), and the front pair the primary less the centre's
        fold-down, so each pair speaker folds back to its channel of the primary exactly."""
        centre = s * (self.xp.sqrt(self.stage.centre_weight(stereo_az)) * (cos_t + sin_t) / math.sqrt(2)) * half
        fold = self.stage.dests[self.stage.centre].fold[0]
        return {dest: centre if dest == self.stage.centre else
                (s * cos_t if self.stage.dests[dest].azimuth > 0 else s * sin_t * rel) - fold * centre
                for dest in self.direct}
