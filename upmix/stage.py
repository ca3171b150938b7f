"""The stereo stage: the rules that map a stereo recording onto a speaker layout.

The recorded stereo stage (a source amplitude-panned between speakers at +-30 degrees) is mapped
onto a front stage of +-``width`` degrees: a direct sound whose stereo energy vector points at
azimuth a is placed at a * width / 30, by energy-vector panning (VBIP) between the two adjacent
speakers of the layout's horizontal ring. With the default width of 30 this reproduces the
recorded image exactly on the front pair, so the upmix folds back down to the original stereo;
wider stages move hard-panned sound towards the side speakers (which the ITU fold-down then no
longer returns exactly; see `upmix.render.downmix`).

Sound panned to the middle (within a few degrees of 0) goes to the centre speaker, by the amount
``center`` (0..1). Ambience goes, decorrelated, to the side, back and height speakers of its side
and to the front speaker of its side. By default (``fold_back``) complementary filters split it so
that the ITU fold-down returns it exactly and its energy is kept (`Stage.ambience_fold_back`);
otherwise a share ``ambience_front`` stays on the front pair and the rest goes around.

Angles are degrees: azimuth anticlockwise from the front, elevation up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import UpmixError
from .layouts import Layout
from .render.downmix import complementary_gains, fold_down_gains

CENTRE_FULL_DEG = 1.5
"""Stereo azimuths (degrees) up to which direct sound counts as fully centre-panned."""

CENTRE_NONE_DEG = 4.5
"""Stereo azimuths from which direct sound no longer goes to the centre speaker."""

AMBIENCE_WEIGHTS = {"side": 1.0, "back": 0.8, "height": 0.9}
"""Relative ambience energy per speaker, by role, for the share not kept in front."""

STEREO_HALF_ANGLE = 30.0
"""Half-angle of the stereo pair the recording was made for, degrees."""


@dataclass(frozen=True)
class StageOptions:
    """Placement settings: `width` in degrees (where a hard-panned source lands, 30 = as recorded),
    `center` 0..1 (how much centre-panned sound the centre speaker takes), `fold_back` (spread the
    ambience with complementary filters so that the ITU fold-down returns it exactly,
    `Stage.ambience_fold_back`), `ambience_front` 0..1 (without `fold_back`: the share of the
    ambience kept in the front pair)."""

    width: float = 30.0
    center: float = 1.0
    ambience_front: float = 0.2
    fold_back: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.width <= 180.0:
            raise UpmixError(f"{{option}} must be between 0 and 180 degrees, not {self.width:g}", option="width")
        if not 0.0 <= self.center <= 1.0:
            raise UpmixError(f"{{option}} must be between 0 and 1, not {self.center:g}", option="center")
        if not 0.0 <= self.ambience_front <= 1.0:
            raise UpmixError(f"{{option}} must be between 0 and 1, not {self.ambience_front:g}",
                             option="ambience_front")


@dataclass(frozen=True)
class Destination:
    """A speaker of the target layout as a place for upmixed sound.

    `role` is one of front, centre, side, back, height, bottom; `fold` its (left, right) ITU
    fold-down coefficients.
    """

    name: str
    azimuth: float
    elevation: float
    role: str
    fold: tuple[float, float]

    @property
    def side(self) -> int:
        """+1 left, -1 right, 0 on the median plane."""
        if abs(self.azimuth) < 1.0 or abs(self.azimuth) > 179.0:
            return 0
        return 1 if self.azimuth > 0 else -1


def _role(azimuth: float, elevation: float) -> str:
    if elevation >= 20.0:
        return "height"
    if elevation <= -20.0:
        return "bottom"
    a = abs(azimuth)
    if a < 1.0:
        return "centre"
    return "front" if a <= 60.0 else "side" if a <= 120.0 else "back"


def destinations(layout: Layout) -> list[Destination]:
    """The layout's non-LFE speakers as upmix destinations, in layout order."""
    return [Destination(s.name, s.azimuth, s.elevation, _role(s.azimuth, s.elevation),
                        fold_down_gains(s.azimuth, s.elevation)) for s in layout.main_speakers]


def stereo_azimuth(theta: np.ndarray) -> np.ndarray:
    """Energy-vector azimuth (degrees) on a +-30 degree pair of a source panned with gains
    (cos theta, sin theta); theta in radians, 0 = hard left."""
    return np.degrees(np.arctan(math.tan(math.radians(STEREO_HALF_ANGLE)) * np.cos(2 * np.asarray(theta))))


def pan_angle(azimuth: np.ndarray) -> np.ndarray:
    """The inverse of `stereo_azimuth`: the panning angle theta (radians, 0 = hard left) of gains
    (cos theta, sin theta) that give a stereo azimuth (degrees, clipped to +-30)."""
    ratio = np.tan(np.radians(np.asarray(azimuth, dtype=float))) / math.tan(math.radians(STEREO_HALF_ANGLE))
    return np.arccos(np.clip(ratio, -1.0, 1.0)) / 2


class Stage:
    """The stage rules for one layout and set of options.

    Attributes:
        dests: all destinations (non-LFE speakers in layout order).
        ring: indices into `dests` of the horizontal speakers used for direct sound (the centre
            is left out when it takes centre-panned sound), sorted by azimuth.
        centre: index of the centre destination, or None when centre-panned sound stays phantom.
        direct: indices of the destinations that can receive direct sound at this width.
    """

    def __init__(self, layout: Layout, options: StageOptions) -> None:
        self.layout, self.options = layout, options
        self.dests = destinations(layout)
        centre = [i for i, d in enumerate(self.dests) if d.role == "centre"]
        self.centre = centre[0] if centre and options.center > 0 else None
        ring = [i for i, d in enumerate(self.dests) if abs(d.elevation) <= 10.0 and i != self.centre]
        if not ring:
            raise UpmixError(f"speaker layout {layout.name!r} has no speakers on the horizontal plane "
                             "to carry the front stage")
        self.ring = sorted(ring, key=lambda i: self.dests[i].azimuth)
        az = np.array([self.dests[i].azimuth for i in self.ring])
        nxt = np.roll(az, -1)
        nxt[-1] += 360.0
        self._seg_start, self._seg_span = az, nxt - az
        # 2-D VBAP bases of each adjacent pair (this speaker, the next one anticlockwise)
        u = np.stack([-np.sin(np.radians(az)), np.cos(np.radians(az))], axis=1)
        pairs = np.stack([u, np.roll(u, -1, axis=0)], axis=2)  # (segment, xy, pair)
        self._inverse = np.linalg.pinv(pairs)  # (segment, 2, 2)
        self.direct = sorted(set(self._used_ring()) | ({self.centre} if self.centre is not None else set()))

    def _used_ring(self) -> list[int]:
        """Ring destinations that direct sound reaches for targets within +-width."""
        energy = self.ring_energies(np.linspace(-self.options.width, self.options.width, 721))
        return [self.ring[j] for j in range(len(self.ring)) if energy[:, j].max() > 1e-6]

    def ring_energies(self, tau: np.ndarray) -> np.ndarray:
        """Energy shares (..., len(ring)) that put the energy vector at azimuth `tau` (degrees)."""
        tau = np.asarray(tau, dtype=float)
        n = len(self.ring)
        rel = np.remainder(tau[..., None] - self._seg_start, 360.0)  # angle past each segment's start
        seg = np.argmax((rel >= 0) & (rel <= self._seg_span), axis=-1)
        rad = np.radians(tau)
        target = np.stack([-np.sin(rad), np.cos(rad)], axis=-1)
        e = np.clip(np.einsum("...ij,...j->...i", self._inverse[seg], target), 0.0, None)
        e /= np.maximum(e.sum(axis=-1, keepdims=True), 1e-12)
        out = np.zeros(tau.shape + (n,))
        np.put_along_axis(out, seg[..., None], e[..., :1], axis=-1)
        np.put_along_axis(out, np.remainder(seg + 1, n)[..., None], e[..., 1:], axis=-1)
        return out

    def direct_gains_table(self, steps: int = 2401) -> np.ndarray:
        """Amplitude gains (steps, len(direct)) of direct sound by stereo azimuth, sampled evenly
        over -30..30 degrees: energy-vector panning to the stage azimuth on the ring, less the
        centre speaker's share (see `centre_weight`). Interpolate between rows."""
        stereo_az = np.linspace(-STEREO_HALF_ANGLE, STEREO_HALF_ANGLE, steps)
        centre = self.centre_weight(stereo_az)
        energies = self.ring_energies(stereo_az * self.options.width / STEREO_HALF_ANGLE)
        table = np.zeros((steps, len(self.direct)))
        for k, dest in enumerate(self.direct):
            table[:, k] = centre if dest == self.centre else energies[:, self.ring.index(dest)] * (1 - centre)
        return np.sqrt(table)

    def centre_weight(self, stereo_az):
        """Share (0..1) of direct sound at a stereo azimuth (degrees) that goes to the centre
        speaker; numpy arrays or torch tensors."""
        if self.centre is None:
            return 0 * stereo_az
        ramp = (CENTRE_NONE_DEG - abs(stereo_az)) / (CENTRE_NONE_DEG - CENTRE_FULL_DEG)
        return self.options.center * ramp.clip(0.0, 1.0)

    def ambience_shares(self) -> dict[int, list[tuple[int, float]]]:
        """For each side (+1 left, -1 right): (destination index, energy share) summing to 1.

        A share `ambience_front` stays on the front speakers of that side; the rest is spread over
        its side, back and height speakers (median-plane speakers count half for each side).
        Layouts with nowhere else to go keep all ambience in front.
        """
        shares = {}
        for side in (1, -1):
            front = [i for i, d in enumerate(self.dests) if d.role == "front" and d.side == side]
            around = [(i, AMBIENCE_WEIGHTS[d.role] * (0.5 if d.side == 0 else 1.0))
                      for i, d in enumerate(self.dests)
                      if d.role in AMBIENCE_WEIGHTS and d.side in (side, 0)]
            f = self.options.ambience_front if around else 1.0
            if not front:
                f = 0.0
            total = sum(w for _, w in around)
            shares[side] = ([(i, f / len(front)) for i in front] +
                            [(i, (1 - f) * w / total) for i, w in around])
        return shares

    def ambience_fold_back(self) -> dict[int, tuple[int, float, tuple[tuple[int, float, float, float], ...]]]:
        """For each side (+1 left, -1 right): the front speaker of that side (`front_pair`), the
        gain c of the ambience on it and, per speaker around (side, back and height speakers of
        that side, weighted by `AMBIENCE_WEIGHTS`), (destination, alpha, beta, fold coefficient):
        `upmix.render.downmix.complementary_gains`. Speakers on the median plane get none: their
        fold-down crosses sides. A layout with nothing around keeps the ambience in front (c = 1)."""
        pair = dict(zip((1, -1), self.front_pair()))
        out = {}
        for side in (1, -1):
            around = [(i, d) for i, d in enumerate(self.dests) if d.role in AMBIENCE_WEIGHTS and d.side == side]
            folds = np.array([d.fold[0 if side > 0 else 1] for _, d in around])
            if not around:
                out[side] = (pair[side], 1.0, ())
                continue
            c, alpha, beta = complementary_gains(folds, np.array([AMBIENCE_WEIGHTS[d.role] for _, d in around]))
            out[side] = (pair[side], c, tuple((i, float(a), float(b), float(g))
                                              for (i, _), a, b, g in zip(around, alpha, beta, folds)))
        return out

    def front_pair(self) -> tuple[int, int]:
        """Destinations nearest +30 and -30 degrees on the horizontal plane (for exact fold-down)."""
        def nearest(az: float, side: int) -> int:
            cands = [i for i, d in enumerate(self.dests)
                     if abs(d.elevation) <= 10.0 and d.side == side and d.fold[0 if side > 0 else 1] == 1.0]
            if not cands:
                raise UpmixError(f"speaker layout {self.layout.name!r} has no front left/right speakers to "
                                 "carry the exact downmix")
            return min(cands, key=lambda i: abs(self.dests[i].azimuth - az))
        return nearest(30.0, 1), nearest(-30.0, -1)
