"""The one coordinate convention of upmix, and conversions to and from it.

Scene coordinates are metres, right-handed: x to the right, y to the front (towards the stage or
screen), z up (the ADM Cartesian convention); the room origin is a floor corner.
Directions are azimuth in degrees anticlockwise from the front (+30 = front left) and elevation in
degrees up from the horizontal plane (ITU-R BS.2051 / ADM). Yaw is anticlockwise in degrees,
0 = facing +y. Functions here accept scalars or numpy arrays and broadcast.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SPEED_OF_SOUND = 343.0
"""Speed of sound in air at 20 degrees C, metres per second."""

PRA_WALLS = {"left": "west", "right": "east", "back": "south", "front": "north", "floor": "floor",
             "ceiling": "ceiling"}
"""Scene room surfaces (left: x = 0, back: y = 0, floor: z = 0) to pyroomacoustics' shoebox walls, in
pyroomacoustics' wall order; scene coordinates are pyroomacoustics' room coordinates."""


def cartesian(azimuth: ArrayLike, elevation: ArrayLike, distance: ArrayLike = 1.0) -> np.ndarray:
    """Direction (degrees) and distance (metres) to Cartesian x/y/z, stacked on the last axis."""
    az = np.radians(np.asarray(azimuth, dtype=float))
    el = np.radians(np.asarray(elevation, dtype=float))
    d = np.asarray(distance, dtype=float)
    return np.stack(np.broadcast_arrays(-np.sin(az) * np.cos(el) * d,
                                        np.cos(az) * np.cos(el) * d,
                                        np.sin(el) * d), axis=-1)


def polar(xyz: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian x/y/z (last axis) to (azimuth deg, elevation deg, distance m).

    The zero vector maps to azimuth 0, elevation 0, distance 0.
    """
    v = np.asarray(xyz, dtype=float)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    horizontal = np.hypot(x, y)
    return (np.degrees(np.arctan2(-x, y)), np.degrees(np.arctan2(z, horizontal)),
            np.sqrt(horizontal ** 2 + z ** 2))


def normalise(v: ArrayLike) -> np.ndarray:
    """Unit vectors along the last axis; zero vectors stay zero."""
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def rotate_yaw(xyz: ArrayLike, yaw: ArrayLike) -> np.ndarray:
    """Rotate vectors anticlockwise about +z by `yaw` degrees."""
    v = np.asarray(xyz, dtype=float)
    a = np.radians(np.asarray(yaw, dtype=float))[..., None]
    c, s = np.cos(a), np.sin(a)
    x, y, z = v[..., 0:1], v[..., 1:2], v[..., 2:3]
    return np.concatenate(np.broadcast_arrays(c * x - s * y, s * x + c * y, z), axis=-1)


def relative_direction(source: ArrayLike, listener: ArrayLike, yaw: ArrayLike = 0.0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direction of `source` as heard by a listener at `listener` facing `yaw` degrees.

    Returns (azimuth deg, elevation deg, distance m) in the listener's head frame.
    """
    offset = np.asarray(source, dtype=float) - np.asarray(listener, dtype=float)
    return polar(rotate_yaw(offset, -np.asarray(yaw, dtype=float)))


def angle_between(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Great-circle angle in degrees between direction vectors (last axis)."""
    cos = np.sum(normalise(a) * normalise(b), axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def orthonormal_frame(direction: ArrayLike) -> np.ndarray:
    """Rows (u, v, w) of a right-handed orthonormal frame with w along `direction` (shape (..., 3))."""
    w = normalise(direction)
    helper = np.where(np.abs(w[..., 2:3]) < 0.9, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    u = normalise(np.cross(helper, w))
    v = np.cross(w, u)
    return np.stack([u, v, w], axis=-2)


def from_sofa_cartesian(xyz: ArrayLike) -> np.ndarray:
    """SOFA/AES69 Cartesian positions (x front, y left, z up) to scene vectors (x right, y front)."""
    v = np.asarray(xyz, dtype=float)
    return np.stack([-v[..., 1], v[..., 0], v[..., 2]], axis=-1)


def to_spaudiopy(direction: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Scene direction vectors to spaudiopy's (azimuth, colatitude) in radians (x front, y left)."""
    az, el, _ = polar(direction)
    return np.radians(az), np.radians(90.0 - el)
