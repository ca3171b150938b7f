"""Seating: stems onto scene objects. A separator's stems become the objects of a scene: on their
suggested directions (`stage_scene`), on a scene's objects by where they sit across the stage
(`scene_layout`, `seat_ambience`), performer by performer in azimuth order (`seat_sources`) or by
instrument family (`seat_families`).

Positions are metres in the scene convention of `upmix.geometry`; angles degrees.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .errors import UpmixError
from .geometry import angle_between, cartesian, relative_direction
from .layouts import Layout, Speaker
from .scene import RenderSettings, Scene, SceneObject
from .stage import STEREO_HALF_ANGLE

if TYPE_CHECKING:
    from .separation.base import StemSpec


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


def performer_seats(scene: Scene) -> list[SceneObject]:
    """The scene's objects that take a stem, left to right as seen from the listener's starting
    place (highest azimuth first; ties by name)."""
    start = scene.listener.path[0] if scene.listener.path else None
    position = start.position if start else scene.listener.position
    yaw = start.yaw if start else scene.listener.yaw
    seated = [o for o in scene.objects if o.stem is not None]
    if not seated:
        raise UpmixError("the scene has no objects with a stem to seat the performers on", scene.source)
    return sorted(seated, key=lambda o: (-float(relative_direction(o.position, position, yaw)[0]), o.name))


def seat_sources(scene: Scene, stems: list[StemSpec]) -> Scene:
    """The scene with the performers a recording was split into (stems ``source_NN``, leftmost
    first) on its objects that take a stem, in the same left-to-right order: the leftmost
    performer on the leftmost seat, and so on. Each seat keeps its position and width; objects that
    play files stay. As many performers as seats, or an UpmixError."""
    performers = [s for s in stems if s.name.startswith("source_")]
    seats = performer_seats(scene)
    if len(performers) != len(seats):
        raise UpmixError(f"the recording was split into {len(performers)} performers but the scene seats "
                         f"{len(seats)}; give {{option}} {len(seats)}", scene.source, option="sources")
    stem_of = {id(o): s.name for o, s in zip(seats, performers)}
    return replace(scene, objects=tuple(replace(o, stem=stem_of[id(o)]) if id(o) in stem_of else o
                                        for o in scene.objects))
