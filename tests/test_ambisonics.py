"""Ambisonics: SN3D/ACN encoding, the SciPy shim, decoders, AmbiX in and out."""

import numpy as np
import pytest
import scipy.special

from conftest import run_cli
from upmix.geometry import cartesian
from upmix.io import read, write
from upmix.jobs.render import render_ambix, render_scene
from upmix.layouts import get_layout
from upmix.render.ambisonics import allrad_decoder, encode, magls_decoder, speaker_decoder
from upmix.render.binaural import get_hrtf
from upmix.render.sh import sn3d, spaudiopy
from upmix.render.targets import AmbisonicsTarget, get_target

RATE = 48000
rng = np.random.default_rng(21)
AZ, EL = rng.uniform(-180, 180, 20), rng.uniform(-80, 80, 20)


def test_scipy_shim_serves_spaudiopy():
    """SciPy >= 1.17 has no sph_harm; the shim gives spaudiopy the old function."""
    spaudiopy()
    assert hasattr(scipy.special, "sph_harm")
    m, n, az, colat = 1, 2, 0.3, 1.1
    assert scipy.special.sph_harm(m, n, az, colat) == pytest.approx(scipy.special.sph_harm_y(n, m, colat, az))


def test_first_order_sn3d_acn_closed_form():
    y = sn3d(1, cartesian(AZ, EL))
    a, e = np.radians(AZ), np.radians(EL)
    np.testing.assert_allclose(y[:, 0], 1.0, atol=1e-12)  # W
    np.testing.assert_allclose(y[:, 1], np.sin(a) * np.cos(e), atol=1e-12)  # Y (left)
    np.testing.assert_allclose(y[:, 2], np.sin(e), atol=1e-12)  # Z (up)
    np.testing.assert_allclose(y[:, 3], np.cos(a) * np.cos(e), atol=1e-12)  # X (front)


def test_second_order_sn3d():
    y = sn3d(2, cartesian(AZ, EL))
    a, e = np.radians(AZ), np.radians(EL)
    np.testing.assert_allclose(y[:, 4], np.sqrt(3) / 2 * np.cos(e) ** 2 * np.sin(2 * a), atol=1e-12)  # V
    np.testing.assert_allclose(y[:, 6], (3 * np.sin(e) ** 2 - 1) / 2, atol=1e-12)  # R
    np.testing.assert_allclose(y[:, 8], np.sqrt(3) / 2 * np.cos(e) ** 2 * np.cos(2 * a), atol=1e-12)  # U


def energy_vector_error(decoder, layout, order):
    errors = []
    for s in layout.main_speakers:
        d = cartesian(s.azimuth, s.elevation)
        g = decoder @ encode(order, d[None])[0]
        v = (g ** 2)[layout.main_indices] @ layout.positions
        errors.append(np.degrees(np.arccos(np.clip(v @ d / np.linalg.norm(v), -1, 1))))
    return max(errors)


def test_decode_to_4_7_0_points_the_energy_vector_at_the_speaker():
    layout = get_layout("4+7+0")
    assert energy_vector_error(speaker_decoder(layout, 3), layout, 3) <= 5.0
    assert energy_vector_error(speaker_decoder(layout, 5), layout, 5) <= 5.0
    plain = energy_vector_error(allrad_decoder(layout, 3), layout, 3)
    assert 5.0 < plain < 10.0  # plain AllRAD is lifted by the height layer (the refinement's reason)


@pytest.mark.parametrize("name", ["0+5+0", "4+5+0", "9+10+3"])
def test_decoders_are_even(name):
    """Decoded energy varies little over the directions the layout covers."""
    layout = get_layout(name)
    d = cartesian(rng.uniform(-180, 180, 400), rng.uniform(-10, 80, 400))
    energy = np.sum((encode(3, d) @ speaker_decoder(layout, 3).T) ** 2, axis=1)
    assert 10 * np.log10(energy.max() / energy.min()) < 3.0
    assert np.all(speaker_decoder(layout, 3)[layout.lfe_indices] == 0)


def test_spread_keeps_w():
    t = AmbisonicsTarget(3)
    g = t.gains(cartesian([30, 30], [0, 0]), [0, 120])
    assert g[0, 0] == pytest.approx(1.0) and g[1, 0] == pytest.approx(1.0)
    assert np.sum(g[1, 9:] ** 2) < 0.5 * np.sum(g[0, 9:] ** 2)  # third order fades with width


def test_render_scene_to_ambix(tmp_path):
    x = rng.standard_normal((1, RATE)) * 0.1
    write(tmp_path / "a.wav", x, RATE, "FLOAT")
    scene = tmp_path / "s.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 90, distance: 1}}\n"
                     "render: {propagation_delay: false}\n")
    report = render_scene(scene, tmp_path / "o.wav", stems_dir=tmp_path, format="ambix2", bits="float")
    y = read(tmp_path / "o.wav")[0]
    assert y.shape[0] == 9 and report["format"] == "ambix2" and report["channel_mask"] == "0x0"
    np.testing.assert_allclose(y[0], x[0], atol=1e-6)  # W
    np.testing.assert_allclose(y[1], x[0], atol=1e-6)  # Y: all left
    np.testing.assert_allclose(y[3], 0, atol=1e-6)  # X


@pytest.fixture(scope="module")
def ambix_file(tmp_path_factory):
    """Third-order AmbiX of noise from azimuth 110 (the 5.1 left surround)."""
    folder = tmp_path_factory.mktemp("ambix")
    x = rng.standard_normal(RATE) * 0.1
    path = folder / "in.wav"
    write(path, (encode(3, cartesian(110, 0)[None])[0][:, None] * x).astype(np.float32), RATE, "FLOAT", 0)
    return path


def test_ambix_input_decodes_to_speakers_and_headphones(tmp_path, ambix_file):
    report = render_ambix(ambix_file, tmp_path / "o51.wav", format="5.1", bits="float")
    assert report["input"]["format"] == "ambix3"
    y = read(tmp_path / "o51.wav")[0]
    e = np.sum(y ** 2, axis=1)
    assert np.argmax(e) == 4  # M+110
    layout = get_layout("5.1")
    v = e[layout.main_indices] @ layout.positions
    assert abs(np.degrees(np.arctan2(-v[0], v[1])) - 110) < 5
    proc = run_cli("run", ambix_file, "-o", tmp_path / "bin.wav", "-f", "binaural")
    assert proc.returncode == 0, proc.stderr
    b = read(tmp_path / "bin.wav")[0]
    assert np.sum(b[0] ** 2) > 3 * np.sum(b[1] ** 2)  # left ear louder
    proc = run_cli("render", ambix_file, "-o", tmp_path / "a1.wav", "-f", "ambix1")
    assert proc.returncode == 0, proc.stderr
    assert read(tmp_path / "a1.wav")[0].shape[0] == 4


def test_magls_decoder_shape_and_direction():
    hrtf = get_hrtf(None, RATE)
    f = magls_decoder(hrtf, 3)
    assert f.shape[:2] == (2, 16)
    # decoding a plane wave from the left gives more energy to the left ear
    h = np.einsum("k,ekt->et", encode(3, cartesian(90, 0)[None])[0], f)
    assert np.sum(h[0] ** 2) > 4 * np.sum(h[1] ** 2)


def test_target_names():
    assert get_target("ambix3").num_channels == 16
    assert get_target("binaural").num_channels == 2
    from upmix.errors import UpmixError

    with pytest.raises(UpmixError, match="ambix1 .. ambix5"):
        get_target("ambix9")
    with pytest.raises(UpmixError, match="or binaural, or ambix1"):
        get_target("8.2")


def test_refined_decoders_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("UPMIX_CACHE", str(tmp_path))
    layout = get_layout("0+5+0")
    speaker_decoder.cache_clear()
    first = speaker_decoder(layout, 1)
    assert len(list(tmp_path.glob("decoder-*.npz"))) == 1
    speaker_decoder.cache_clear()
    np.testing.assert_array_equal(speaker_decoder(layout, 1), first)
    speaker_decoder.cache_clear()
