"""The scene model: objects placed in 3D, a listener (still or walking), an optional room, a target.

Scene files are YAML. Every key but ``objects`` is optional::

    name: String quartet                # optional, for reports
    objects:                            # required, at least one
      - stem: violin_1                  # audio from STEM.<ext> in --stems DIR ... or
        # file: path/to/audio.wav       # a file, relative to the scene file
        name: first violin              # optional label (default: the stem or file name)
        position: [8.2, 11.5, 1.9]      # metres, scene coordinates ... or, relative to the
        # position: {azimuth: 30, elevation: 0, distance: 5}    listener's initial position and yaw
        gain_db: 0                      # level in dB
        width: 0                        # spread, degrees of angular diameter (0 = point)
        diffuse: 0                      # 0..1, share of the energy rendered diffuse (or true/false)
        family: strings                 # optional: the separated stem (instrument family) seated here
                                        # by `upmix run --separator orchestra` (or demucs: vocals, ...)
        path:                           # optional: the object moves (keyframes, seconds, metres)
          - {time: 0, position: [8.2, 11.5, 1.9]}
    listener:
      position: [10, 5, 1.2]            # metres (default [0, 0, 0]; required with a room)
      yaw: 0                            # degrees anticlockwise, 0 = facing +y
      path:                             # optional walk: keyframes, times in seconds, increasing
        - {time: 0, position: [10, 2, 1.2], yaw: 0}
      interpolation: spline             # or linear: how poses move between keyframes
    room:                               # optional; absent = free field
      dimensions: [20, 15, 10]          # metres along x, y, z; the origin is a floor corner
      rt60: 1.6                         # seconds ... or
      # materials: brickwork            # one pyroomacoustics material (or absorption 0..1) for all
      # materials: {walls: brickwork, floor: stage_floor, ceiling: plasterboard, front: ...}
      air_absorption: true
    output: {format: 7.1.4, sample_rate: 48000, bits: 24}   # defaults; CLI options override
    render: {reference_distance: 1.0, near_field: 0.5, propagation_delay: true, doppler: true}

Coordinates follow `upmix.geometry`: x right, y front, z up, metres; angles in degrees. Before
its first keyframe a path holds the first pose, after its last the last. A walk can also come
from its own file (`load_path`): a mapping with a ``path:`` list of keyframes.
Material surfaces are named in scene terms: left (x = 0), right, back (y = 0), front, floor, ceiling;
``walls`` sets the four walls at once.

Bounds, so that no scene can make a render run without end or exhaust memory: every coordinate
and distance at most `MAX_DISTANCE_M` (1 km; the propagation delay then adds at most 10.1 s, the
diagonal of a 2 km cube at 343 m/s), room dimensions at most `MAX_ROOM_M` (100 m), at most
`MAX_OBJECTS` (128) objects, keyframe times at most `MAX_TIME_S` (24 h), and the listener and every
object at most `MAX_SPEED_M_S` (100 m/s) between keyframes. Files are at most 1 MiB
(`upmix.validate.load_yaml`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import UpmixError
from .geometry import SPEED_OF_SOUND, cartesian, rotate_yaw
from .io import BitDepth
from .validate import Node, load_yaml, quote

MAX_DISTANCE_M = 1000.0
"""Largest coordinate (either sign) and distance in a scene or walk, metres: positions, keyframes,
relative distances, reference_distance and near_field."""

MAX_ROOM_M = 100.0
"""Largest room dimension, metres (the early responses grow with the room's diagonal: 128 objects
in a 100 m room peak at 1.3 GB rendering 7.1.4 at 48 kHz)."""

MAX_OBJECTS = 128
"""Most objects a scene may have (about 0.6 MB each in free field, 5 to 10 MB in a room, at 48 kHz)."""

MAX_SPEED_M_S = 100.0
"""Fastest the listener or an object may move between two keyframes, m/s (distance over time
between them; well below the speed of sound)."""

MAX_TIME_S = 86400.0
"""Latest keyframe time, seconds (24 h)."""

SURFACES = ("left", "right", "back", "front", "floor", "ceiling")
"""Room surfaces in scene terms (left: x = 0, back: y = 0, floor: z = 0)."""

_STEM_NAME = re.compile(r"^[\w.+-]+$")


@dataclass(frozen=True)
class Keyframe:
    """A pose at a time: seconds, metres, degrees (yaw; objects ignore it)."""

    time: float
    position: tuple[float, float, float]
    yaw: float = 0.0


@dataclass(frozen=True)
class SceneObject:
    """A sound source: audio from a stem or a file, at a position in scene coordinates (metres)."""

    name: str
    position: tuple[float, float, float]
    stem: str | None = None
    file: Path | None = None
    gain_db: float = 0.0
    width: float = 0.0
    diffuse: float = 0.0
    path: tuple[Keyframe, ...] = ()
    family: str | None = None


@dataclass(frozen=True)
class Listener:
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    path: tuple[Keyframe, ...] = ()
    interpolation: str = "spline"


@dataclass(frozen=True)
class Room:
    """A shoebox room: dimensions in metres, and RT60 in seconds or per-surface materials.

    `materials` maps each of `SURFACES` to a pyroomacoustics material name or an energy absorption
    coefficient.
    """

    dimensions: tuple[float, float, float]
    rt60: float | None = None
    materials: dict[str, str | float] | None = None
    air_absorption: bool = True

    def contains(self, p: tuple[float, float, float]) -> bool:
        return all(0.0 <= c <= d for c, d in zip(p, self.dimensions))


@dataclass(frozen=True)
class OutputSettings:
    format: str | None = None
    sample_rate: int | None = None
    bits: BitDepth | None = None


@dataclass(frozen=True)
class RenderSettings:
    """Direct-path model: gain = reference_distance / max(distance, near_field); delay = distance / c
    (with `doppler` off, a moving scene keeps each path's delay from its start, so pitch stays)."""

    reference_distance: float = 1.0
    near_field: float = 0.5
    propagation_delay: bool = True
    doppler: bool = True


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    listener: Listener = field(default_factory=Listener)
    room: Room | None = None
    output: OutputSettings = field(default_factory=OutputSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    name: str = ""
    source: Path | None = None


def load_scene(path: str | Path) -> Scene:
    """Load and validate a scene file; errors name the file and the key path."""
    return parse_scene(load_yaml(path))


def parse_scene(root: Node) -> Scene:
    """Validate a parsed scene document and build the Scene."""
    root.mapping({"name", "description", "objects", "listener", "room", "output", "render"})
    room = _room(root.get("room")) if root.has("room") else None
    listener = _listener(root.get("listener", {}), room, required=room is not None and not root.has("listener"))
    base = root.file.parent
    onode = root.get("objects")
    items = list(onode.items(min_len=1))
    if len(items) > MAX_OBJECTS:
        raise onode.error(f"has {len(items)} objects; at most {MAX_OBJECTS} are allowed")
    objects = tuple(_object(node, listener, room, base) for node in items)
    return Scene(objects=objects, listener=listener, room=room, output=_output(root.get("output", {})),
                 render=_render(root.get("render", {})), name=str(root.get("name", "").value or ""),
                 source=root.file)


def _position(node: Node, room: Room | None) -> tuple[float, float, float]:
    p = node.vector(3, -MAX_DISTANCE_M, MAX_DISTANCE_M, unit="m")
    if room is not None and not room.contains(p):
        dims = " x ".join(f"{d:g}" for d in room.dimensions)
        raise node.error(f"({', '.join(f'{c:g}' for c in p)}) is outside the room ({dims} m, "
                         "origin at a floor corner)")
    return p


def _listener(node: Node, room: Room | None, required: bool) -> Listener:
    if required:
        raise node.error("is required when the scene has a room (where does the listener stand?)")
    node.mapping({"position", "yaw", "path", "interpolation"})
    position = _position(node.get("position", [0.0, 0.0, 0.0]), room)
    yaw = node.get("yaw", 0.0).number(-360, 360, unit="degrees")
    keys = _keyframes(node.get("path"), room, yaw) if node.has("path") else ()
    return Listener(position=position, yaw=yaw, path=keys,
                    interpolation=node.get("interpolation", "spline").string(["spline", "linear"]))


def _keyframes(node: Node, room: Room | None, yaw: float = 0.0, with_yaw: bool = True) -> tuple[Keyframe, ...]:
    """A validated list of keyframes; a keyframe without a yaw keeps the previous one."""
    keys: list[Keyframe] = []
    for k in node.items(min_len=1):
        k.mapping({"time", "position", "yaw"} if with_yaw else {"time", "position"})
        t = k.get("time").number(0, MAX_TIME_S, unit="s")
        if keys and t <= keys[-1].time:
            raise k.get("time").error(f"must be later than the previous keyframe's {keys[-1].time:g} s")
        yaw = k.get("yaw", yaw).number(-3600, 3600, unit="degrees")
        position = _position(k.get("position"), room)
        if keys:
            speed = math.dist(position, keys[-1].position) / (t - keys[-1].time)
            if speed > MAX_SPEED_M_S:
                raise k.get("position").error(
                    f"is {speed:.3g} m/s from the previous keyframe; at most {MAX_SPEED_M_S:g} m/s is allowed")
        keys.append(Keyframe(t, position, yaw))
    return tuple(keys)


def load_path(path: str | Path, room: Room | None = None) -> tuple[Keyframe, ...]:
    """A listener walk from its own YAML file: ``path:`` with a list of keyframes (time, position,
    yaw), positions checked against `room`."""
    root = load_yaml(path)
    root.mapping({"path"})
    return _keyframes(root.get("path"), room)


def with_options(scene: Scene, walk: Path | None = None, doppler: bool | None = None) -> Scene:
    """The scene with its listener walking the keyframes of a `walk` file (`load_path`), and its
    Doppler setting, when given."""
    if walk is not None:
        scene = replace(scene, listener=replace(scene.listener, path=load_path(walk, scene.room)))
    if doppler is not None:
        scene = replace(scene, render=replace(scene.render, doppler=doppler))
    return scene


def _object(node: Node, listener: Listener, room: Room | None, base: Path) -> SceneObject:
    node.mapping({"stem", "file", "name", "position", "gain_db", "width", "diffuse", "path", "family"})
    if node.has("stem") == node.has("file"):
        raise node.error("needs exactly one of 'stem' (a stem name) or 'file' (an audio file)")
    stem = file = None
    if node.has("stem"):
        stem = node.get("stem").string()
        if not _STEM_NAME.match(stem):
            raise node.get("stem").error(f"{quote(stem)} is not a stem name (letters, digits, _ . + - only)")
        default_name = stem
    else:
        file = base / node.get("file").string()
        default_name = file.stem
    pos_node = node.get("position")
    if isinstance(pos_node.value, dict):
        pos_node.mapping({"azimuth", "elevation", "distance"})
        az = pos_node.get("azimuth").number(-360, 360, unit="degrees")
        el = pos_node.get("elevation", 0.0).number(-90, 90, unit="degrees")
        dist = pos_node.get("distance", 1.0).number(0, MAX_DISTANCE_M, lo_open=True, unit="m")
        offset = rotate_yaw(cartesian(az, el, dist), listener.yaw)
        position = tuple(float(c) for c in np.asarray(listener.position) + offset)
        if room is not None and not room.contains(position):
            raise pos_node.error(f"puts the object at ({', '.join(f'{c:.2f}' for c in position)}), "
                                 "outside the room")
        if max(map(abs, position)) > MAX_DISTANCE_M:
            raise pos_node.error(f"puts the object at ({', '.join(f'{c:.2f}' for c in position)}), "
                                 f"beyond {MAX_DISTANCE_M:g} m from the origin along an axis")
    else:
        position = _position(pos_node, room)
    diffuse_node = node.get("diffuse", 0.0)
    diffuse = (float(diffuse_node.boolean()) if isinstance(diffuse_node.value, bool)
               else diffuse_node.number(0, 1))
    path = _keyframes(node.get("path"), room, with_yaw=False) if node.has("path") else ()
    family = node.get("family").string() if node.has("family") else None
    if family is not None and not _STEM_NAME.match(family):
        raise node.get("family").error(f"{quote(family)} is not a stem name (letters, digits, _ . + - only)")
    return SceneObject(name=str(node.get("name", default_name).string()), position=position,
                       stem=stem, file=file, gain_db=node.get("gain_db", 0.0).number(-120, 40, unit="dB"),
                       width=node.get("width", 0.0).number(0, 360, unit="degrees"), diffuse=diffuse, path=path,
                       family=family)


def _material(node: Node) -> str | float:
    if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.number(0, 1)
    name = node.string()
    import pyroomacoustics as pra  # deferred: importing it takes a second

    known = {m for cat in pra.materials_data["absorption"].values() for m in cat}
    if name not in known:
        raise node.error(f"unknown material {quote(name)}; use an absorption coefficient 0..1 or one "
                         f"of pyroomacoustics' materials, e.g. {', '.join(sorted(known)[:6])}, ...")
    return name


def _room(node: Node) -> Room:
    node.mapping({"dimensions", "rt60", "materials", "air_absorption"})
    dnode = node.get("dimensions")
    dims = dnode.vector(3)
    if min(dims) <= 0:
        raise dnode.error("every dimension must be greater than 0 m")
    if max(dims) > MAX_ROOM_M:
        raise dnode.error(f"every dimension must be at most {MAX_ROOM_M:g} m, got {max(dims):g}")
    if node.has("rt60") == node.has("materials"):
        raise node.error("needs exactly one of 'rt60' (seconds) or 'materials'")
    rt60 = materials = None
    if node.has("rt60"):
        rnode = node.get("rt60")
        rt60 = rnode.number(0, 30, lo_open=True, unit="s")
        volume = dims[0] * dims[1] * dims[2]
        surface = 2 * (dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
        # Sabine: the absorption this RT60 needs must be physically possible (at most 1)
        shortest = 24 * math.log(10) * volume / (SPEED_OF_SOUND * surface)
        if rt60 < shortest:
            raise rnode.error(f"{rt60:g} s is too short for a room this size; even fully absorbing "
                              f"walls give {shortest:.2f} s (Sabine)")
    else:
        mnode = node.get("materials")
        if isinstance(mnode.value, dict):
            mnode.mapping(set(SURFACES) | {"walls"})
            walls = _material(mnode.get("walls")) if mnode.has("walls") else None
            materials = {}
            for s in SURFACES:
                if mnode.has(s):
                    materials[s] = _material(mnode.get(s))
                elif walls is not None and s not in ("floor", "ceiling"):
                    materials[s] = walls
                else:
                    raise mnode.get(s).error("is required (or give 'walls' for the four walls)")
        else:
            m = _material(mnode)
            materials = {s: m for s in SURFACES}
    return Room(dimensions=dims, rt60=rt60, materials=materials,
                air_absorption=node.get("air_absorption", True).boolean())


def _output(node: Node) -> OutputSettings:
    """The output settings; the format is checked where it is used (`upmix.jobs.output.target_for`),
    since only the renderer knows the targets."""
    node.mapping({"format", "sample_rate", "bits"})
    fmt = None
    if node.has("format"):
        fmt = node.get("format").string()
        fmt = str(node.file.parent / fmt) if fmt.endswith((".yaml", ".yml")) else fmt
    rate = node.get("sample_rate").integer(8000, 384000) if node.has("sample_rate") else None
    bits = BitDepth(node.get("bits").string([b.value for b in BitDepth])) if node.has("bits") else None
    return OutputSettings(format=fmt, sample_rate=rate, bits=bits)


def _render(node: Node) -> RenderSettings:
    node.mapping({"reference_distance", "near_field", "propagation_delay", "doppler"})
    return RenderSettings(
        reference_distance=node.get("reference_distance", 1.0).number(0, MAX_DISTANCE_M, lo_open=True, unit="m"),
        near_field=node.get("near_field", 0.5).number(0, MAX_DISTANCE_M, lo_open=True, unit="m"),
        propagation_delay=node.get("propagation_delay", True).boolean(),
        doppler=node.get("doppler", True).boolean())


def stem_path(stems_dir: Path, stem: str) -> Path:
    """The audio file for a stem name in a stems folder (any readable extension)."""
    matches = sorted(p for p in stems_dir.glob(f"{stem}.*") if p.is_file() and p.stem == stem)
    if not matches:
        raise UpmixError(f"no audio file for stem {stem!r} (expected {stem}.wav, .flac, ...)", stems_dir)
    return matches[0]


def object_source(obj: SceneObject, stems_dir: Path | None) -> Path:
    """The audio file an object plays."""
    if obj.file is not None:
        return obj.file
    if stems_dir is None:
        raise UpmixError(f"object {obj.name!r} plays stem {obj.stem!r}: give the stems folder ({{option}})",
                         option="stems")
    return stem_path(stems_dir, obj.stem)
