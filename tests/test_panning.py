"""Point-source panner: golden gains from the EBU ADM Renderer and the panner's own properties."""

import json

import numpy as np
import pytest

from conftest import DATA
from upmix.geometry import cartesian, normalise
from upmix.layouts import Layout, Speaker, get_layout
from upmix.render.panning import PointSourcePanner

GOLDEN = DATA / "ear_point_source"
LAYOUTS = ["0+2+0", "0+5+0", "2+5+0", "4+5+0", "0+7+0", "4+7+0", "4+9+0", "9+10+3"]


def golden_and_ours(name):
    ref = np.load(GOLDEN / f"{name}.npz")
    layout = get_layout(name)
    panner = PointSourcePanner(layout)
    az, el = np.meshgrid(ref["azimuth"], ref["elevation"])
    ours = panner.gains_polar(az, el)
    names = [s.name for s in layout.main_speakers]
    ours = ours[..., [names.index(str(c)) for c in ref["channels"]]]
    return ref, ours


def test_golden_data_is_complete():
    assert sorted(p.stem for p in GOLDEN.glob("*.npz")) == sorted(LAYOUTS)
    assert (GOLDEN / "LICENSE-ear").exists()


@pytest.mark.parametrize("name", LAYOUTS)
def test_matches_ear_on_whole_grid(name):
    ref, ours = golden_and_ours(name)
    assert ours.shape == ref["gains"].shape == (37, 73, len(ref["channels"]))
    assert np.max(np.abs(ours - ref["gains"])) <= 0.02


@pytest.mark.parametrize("name", LAYOUTS)
def test_matches_ear_exactly_on_horizontal_plane(name):
    ref, ours = golden_and_ours(name)
    row = int(np.flatnonzero(ref["elevation"] == 0)[0])
    assert np.max(np.abs(ours[row] - ref["gains"][row])) <= 1e-6


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_positions_match_reference(name):
    ref_layout = json.loads((GOLDEN / "layouts.json").read_text())[name]
    ours = {s.name: (s.azimuth, s.elevation) for s in get_layout(name).main_speakers}
    assert ours == {c["name"]: (c["azimuth"], c["elevation"]) for c in ref_layout}


def random_directions(n, rng):
    return normalise(rng.standard_normal((n, 3)))


@pytest.mark.parametrize("name", LAYOUTS)
def test_properties_everywhere(name, rng):
    """Non-negative, power-normalised (stereo: 1 front .. 0.5 back), no holes, mirror symmetric."""
    layout = get_layout(name)
    panner = PointSourcePanner(layout)
    d = np.concatenate([random_directions(4000, rng), [[0, 0, 1], [0, 0, -1], [0, -1, 0]]])
    g = panner.gains(d)
    assert np.all(np.isfinite(g)) and np.all(g >= 0)
    power = np.sum(g ** 2, axis=-1)
    if name == "0+2+0":
        assert np.all((power > 0.5 - 1e-9) & (power < 1 + 1e-9))
    else:
        np.testing.assert_allclose(power, 1.0, atol=1e-9)
    mirrored = panner.gains(d * [-1, 1, 1])
    names = [s.name for s in layout.main_speakers]
    swap = [i if n.endswith(("000", "180")) else
            names.index(n.replace("+", "#").replace("-", "+").replace("#", "-"))
            for i, n in enumerate(names)]
    np.testing.assert_allclose(mirrored, g[:, swap], atol=1e-9)


@pytest.mark.parametrize("name", ["0+5+0", "4+7+0", "9+10+3"])
def test_velocity_vector_points_at_source(name, rng):
    """Horizontal sources on a surrounding layout: the velocity vector points at the source."""
    layout = get_layout(name)
    panner = PointSourcePanner(layout)
    az = rng.uniform(-180, 180, 200)
    g = panner.gains_polar(az, 0.0)
    v = g @ layout.positions
    est = np.degrees(np.arctan2(-v[:, 0], v[:, 1]))
    err = (est - az + 180) % 360 - 180
    assert np.max(np.abs(err)) < 1e-6


def test_speaker_directions_get_one_speaker():
    layout = get_layout("4+7+0")
    panner = PointSourcePanner(layout)
    g = panner.gains(layout.positions)
    np.testing.assert_allclose(g, np.eye(len(layout.positions)), atol=1e-9)


def test_below_horizon_and_overhead_use_virtual_speakers():
    """5.1 has no upper or lower speakers: overhead is shared equally by all five, below the
    horizon falls on the mid layer, and nothing is lost."""
    panner = PointSourcePanner(get_layout("5.1"))
    top = panner.gains_polar(0, 90)
    np.testing.assert_allclose(top, np.full(5, 1 / np.sqrt(5)), atol=1e-9)
    below = panner.gains_polar(30, -45)
    assert np.argmax(below) == 0 and np.isclose(np.sum(below ** 2), 1.0)


def test_gains_vary_continuously(rng):
    panner = PointSourcePanner(get_layout("4+7+0"))
    az = np.linspace(-180, 180, 3601)
    for el in (-60, -20, 0, 15, 30, 50, 80):
        g = panner.gains_polar(az, el)
        assert np.max(np.abs(np.diff(g, axis=0))) < 0.05


def test_spread_is_power_normalised_and_widens():
    layout = get_layout("7.1.4")
    panner = PointSourcePanner(layout)
    front = cartesian(0, 0)[None]
    point = panner.spread_gains(front, 0)
    np.testing.assert_allclose(point, panner.gains(front))
    active = []
    for width in (0, 30, 60, 120, 240, 360):
        g = panner.spread_gains(front, width)[0]
        assert np.isclose(np.sum(g ** 2), 1.0)
        assert np.all(g >= 0)
        active.append(np.sum(g > 0.05))
    assert active == sorted(active) and active[-1] == len(layout.positions)
    # 360 degrees: everywhere the same regardless of the direction
    np.testing.assert_allclose(panner.spread_gains(cartesian(120, 40)[None], 360),
                               panner.spread_gains(front, 360), atol=0.02)
    # small changes in width change little
    diff = np.abs(panner.spread_gains(front, 61) - panner.spread_gains(front, 60)).max()
    assert diff < 0.02


def test_custom_layout_uses_real_angles():
    """A 5.1 whose surrounds sit at 120 degrees: nominal names, real angles."""
    speakers = tuple(Speaker(name=n, azimuth=a, elevation=0.0, nominal_azimuth=na, nominal_elevation=0.0)
                     for n, a, na in [("M+030", 30, 30), ("M-030", -30, -30), ("M+000", 0, 0),
                                      ("M+110", 120, 110), ("M-110", -120, -110)])
    panner = PointSourcePanner(Layout(name="custom", speakers=speakers))
    g = panner.gains_polar(120, 0)
    assert np.isclose(g[3], 1.0)


def test_layout_that_does_not_surround_is_an_error():
    from upmix.errors import UpmixError

    speakers = tuple(Speaker(name=f"S{i}", azimuth=a, nominal_azimuth=a) for i, a in enumerate((-30, 0, 30)))
    with pytest.raises(UpmixError, match="does not surround"):
        PointSourcePanner(Layout(name="lcr", speakers=speakers))
