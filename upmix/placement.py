"""Where upmixed sound goes: the stage rules that map a stereo recording onto a speaker layout.

The recorded stereo stage (a source amplitude-panned between speakers at +-30 degrees) is mapped
onto a front stage of +-``width`` degrees: a direct sound whose stereo energy vector points at
azimuth a is placed at a * width / 30, by energy-vector panning (VBIP) between the two adjacent
speakers of the layout's horizontal ring. With the default width of 30 this reproduces the
recorded image exactly on the front pair, so the upmix folds back down to the original stereo;
wider stages move hard-panned sound towards the side speakers (which the ITU fold-down then no
longer returns exactly; see `upmix.render.downmix`).

Sound panned to the middle (within a few degrees of 0) goes to the centre speaker, by the amount
``center`` (0..1). Ambience goes, decorrelated, to the side, back and height speakers of its side,
with a share ``ambience_front`` kept in the front pair.

Angles are degrees: azimuth anticlockwise from the front, elevation up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import UpmixError
from .geometry import cartesian
from .layouts import Layout
from .render.downmix import fold_down_gains
from .scene import RenderSettings, Scene, SceneObject

if TYPE_CHECKING:
    from .separation.base import StemSpec

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
    `center` 0..1 (how much centre-panned sound the centre speaker takes), `ambience_front` 0..1
    (share of the ambience kept in the front pair)."""

    width: float = 30.0
    center: float = 1.0
    ambience_front: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.width <= 180.0:
            raise UpmixError(f"--width must be between 0 and 180 degrees, not {self.width:g}")
        if not 0.0 <= self.center <= 1.0:
            raise UpmixError(f"--center must be between 0 and 1, not {self.center:g}")
        if not 0.0 <= self.ambience_front <= 1.0:
            raise UpmixError(f"--ambience-front must be between 0 and 1, not {self.ambience_front:g}")


@dataclass(frozen=True)
class Preset:
    """Defaults of `upmix run` for a kind of programme; options given on the command line win.

    Attributes:
        name: ``music`` or ``film``.
        stage: placement settings.
        lfe: feed the LFE; `lfe_from_ambience` limits it to the ambience (effects) stems' bass.
        lfe_from_ambience: see `lfe`.
        sample_rate: output rate in Hz (None: the input's).
        bits: output sample format.
    """

    name: str
    stage: StageOptions
    lfe: bool = False
    lfe_from_ambience: bool = False
    sample_rate: int | None = None
    bits: str = "24"

    def options(self, width: float | None = None, center: float | None = None,
                ambience_front: float | None = None) -> StageOptions:
        """The preset's placement settings with those given (not None) instead."""
        from dataclasses import replace

        given = {"width": width, "center": center, "ambience_front": ambience_front}
        return replace(self.stage, **{k: v for k, v in given.items() if v is not None})


PRESETS = {
    "music": Preset("music", StageOptions()),
    # film: dialogue (centre-panned direct sound) to the centre speaker, the music's stereo stage
    # widened to +-60 degrees across the front and wide speakers, all ambience and effects to the
    # surrounds and heights, the LFE from the effects' bass; 48 kHz / 24-bit delivery
    "film": Preset("film", StageOptions(width=60.0, center=1.0, ambience_front=0.0), lfe=True,
                   lfe_from_ambience=True, sample_rate=48000),
}
"""The presets of ``upmix run --preset``."""


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UpmixError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}") from None


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


def stage_scene(stems: list[StemSpec], name: str = "upmix stage") -> Scene:
    """A scene with every stem on its suggested direction, 1 m from a listener at the origin,
    at unity gain and without propagation delay, so each stem lands exactly on its speaker."""
    objects = tuple(SceneObject(name=s.name, stem=s.name,
                                position=tuple(float(c) for c in cartesian(s.azimuth, s.elevation, 1.0)))
                    for s in stems)
    return Scene(objects=objects, render=RenderSettings(reference_distance=1.0, near_field=0.1,
                                                        propagation_delay=False), name=name)


AMBIENCE_SEATS = (("ambience-left", 110.0), ("ambience-right", -110.0))
"""Virtual places that take a recording's ambience when it is seated on a scene."""


def scene_layout(scene: Scene) -> Layout:
    """A virtual layout for seating a stereo recording on a scene: one 'speaker' per stem, at the
    stereo azimuth a recording made from the listener's starting place would give it (the stems'
    azimuths as seen from there, spread linearly over +-30 degrees, stage left to the left), plus
    the two ambience places of `AMBIENCE_SEATS`."""
    from .geometry import relative_direction
    from .layouts import Speaker

    start = scene.listener.path[0] if scene.listener.path else None
    position = start.position if start else scene.listener.position
    yaw = start.yaw if start else scene.listener.yaw
    stems: dict[str, list[float]] = {}
    for o in scene.objects:
        if o.stem is not None:
            az, _, _ = relative_direction(o.position, position, yaw)
            stems.setdefault(o.stem, []).append(float(az))
    if not stems:
        raise UpmixError("the scene has no objects with a stem to seat the recording on", scene.source)
    mean = {name: float(np.mean(a)) for name, a in stems.items()}
    lo, hi = min(mean.values()), max(mean.values())
    span = hi - lo

    def stereo(az: float) -> float:
        return 0.0 if span < 1e-9 else STEREO_HALF_ANGLE * (2 * (az - lo) / span - 1)

    speakers = [Speaker(name=name, azimuth=stereo(az), nominal_azimuth=stereo(az)) for name, az in mean.items()]
    speakers += [Speaker(name=name, azimuth=az, nominal_azimuth=az) for name, az in AMBIENCE_SEATS]
    return Layout(name="scene seats", speakers=tuple(speakers))


def seat_ambience(scene: Scene, stems: list[StemSpec]) -> Scene:
    """The scene with one diffuse object per ambience stem, beside the listener's starting place
    (diffuse: spread by decorrelation, not sent into the room again)."""
    from dataclasses import replace

    start = scene.listener.path[0].position if scene.listener.path else scene.listener.position
    extra = tuple(SceneObject(name=s.name, stem=s.name, position=tuple(float(c) for c in start), diffuse=1.0)
                  for s in stems)
    return replace(scene, objects=scene.objects + extra)


def seat_families(scene: Scene, stems: list[StemSpec]) -> Scene:
    """The scene with one object per separated stem, seated where the objects of its `family` sit.

    A stem goes to the centroid of its family's objects, as wide (seen from the listener's starting
    place) as they spread plus their own widths, at most 120 degrees; a stereo stem keeps its left
    and right across that width. A stem no object claims sits at the centroid of all of them, as
    wide as the whole stage. Objects that play files stay; objects of stems that the separation does
    not produce are dropped.
    """
    from dataclasses import replace

    from .geometry import angle_between

    start = scene.listener.path[0].position if scene.listener.path else scene.listener.position
    seated = [o for o in scene.objects if o.stem is not None]
    if not any(o.family for o in seated):
        raise UpmixError("the scene's objects name no `family` to seat the separated stems on", scene.source)

    def place(name: str, group: list[SceneObject]) -> SceneObject:
        points = np.array([o.position for o in group])
        centre = points.mean(axis=0)
        spread = angle_between(points - np.asarray(start), centre - np.asarray(start))
        width = min(120.0, 2 * float(spread.max()) + float(np.mean([o.width for o in group])))
        return SceneObject(name=name, position=tuple(float(c) for c in centre), stem=name, width=width)

    objects = [place(s.name, [o for o in seated if o.family == s.name] or seated) for s in stems]
    return replace(scene, objects=tuple(objects) + tuple(o for o in scene.objects if o.stem is None))
