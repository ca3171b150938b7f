"""The coordinate convention: x right, y front, z up; azimuth anticlockwise from the front."""

import numpy as np

from upmix.geometry import angle_between, cartesian, orthonormal_frame, polar, relative_direction, rotate_yaw


def test_convention():
    np.testing.assert_allclose(cartesian(0, 0), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(cartesian(90, 0), [-1, 0, 0], atol=1e-12)  # +90 = left
    np.testing.assert_allclose(cartesian(-90, 0), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(cartesian(0, 90), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(cartesian(30, 0, 2), [-1, np.sqrt(3), 0], atol=1e-12)


def test_round_trip(rng):
    az, el, d = rng.uniform(-179, 179, 100), rng.uniform(-89, 89, 100), rng.uniform(0.1, 10, 100)
    np.testing.assert_allclose(np.stack(polar(cartesian(az, el, d))), np.stack([az, el, d]), atol=1e-9)


def test_listener_yaw():
    # a listener facing left (yaw +90) hears a source straight ahead of the room (+y) on the right
    az, el, d = relative_direction([0, 5, 0], [0, 0, 0], 90)
    np.testing.assert_allclose([az, el, d], [-90, 0, 5], atol=1e-9)
    np.testing.assert_allclose(rotate_yaw([0, 1, 0], 90), [-1, 0, 0], atol=1e-12)


def test_frames(rng):
    d = rng.standard_normal((50, 3))
    f = orthonormal_frame(d)
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", f, f), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(angle_between(f[:, 2], d), 0, atol=1e-5)
    assert np.allclose(np.linalg.det(f), 1.0)
