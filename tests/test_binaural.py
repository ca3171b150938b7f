"""Binaural rendering against the KEMAR set's own cues, HRIR interpolation, smooth movement."""

import numpy as np
import pytest
import scipy.signal
import torch

from conftest import run_cli
from upmix.dsp import resample
from upmix.errors import UpmixError
from upmix.geometry import cartesian
from upmix.io import read, write
from upmix.jobs.binauralize import binauralize
from upmix.jobs.render import render_scene
from upmix.render.binaural import MOVE_BLOCK, MovingBinaural, default_hrtf_path, get_hrtf, lag, load_sofa

RATE = 48000


@pytest.fixture(scope="module")
def kemar():
    """The measured set resampled to 48 kHz (the reference the renderer must match)."""
    s = load_sofa(default_hrtf_path())
    return s, resample(s.hrirs, s.sample_rate, RATE).astype(float)


def measured(kemar, az, el=0.0):
    s, irs = kemar
    i = int(np.argmax(s.directions @ cartesian(az, el)))
    assert np.degrees(np.arccos(np.clip(s.directions[i] @ cartesian(az, el), -1, 1))) < 1e-6
    return irs[i]


@pytest.fixture(scope="module")
def noise_renders(tmp_path_factory):
    """White noise rendered through `upmix render -f binaural` from several azimuths."""
    folder = tmp_path_factory.mktemp("binaural")
    rng = np.random.default_rng(11)
    write(folder / "noise.wav", rng.standard_normal((1, RATE * 2)) * 0.05, RATE, "FLOAT")
    out = {}
    for az in (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 180):
        scene = folder / f"s{az}.yaml"
        scene.write_text(f"objects:\n  - {{stem: noise, position: {{azimuth: {az}, distance: 1}}}}\n"
                         "render: {propagation_delay: false}\n")
        render_scene(scene, folder / f"b{az}.wav", stems_dir=folder, format="binaural", bits="float")
        out[az] = read(folder / f"b{az}.wav")[0].astype(float)
    return out


def band_levels(x, edges):
    f, p = scipy.signal.welch(x, RATE, nperseg=4096)
    return np.array([10 * np.log10(p[(f >= lo) & (f < hi)].sum()) for lo, hi in zip(edges[:-1], edges[1:])])


def test_left_source_ild_and_itd_match_kemar(noise_renders, kemar):
    y = noise_renders[90]
    ild = 10 * np.log10(np.sum(y[0] ** 2) / np.sum(y[1] ** 2))
    h = measured(kemar, 90)
    kemar_ild = 10 * np.log10(np.sum(h[0] ** 2) / np.sum(h[1] ** 2))
    assert ild > 0 and abs(ild - kemar_ild) <= 1.0
    itd = lag(y[0][None], y[1][None], upsample=4)[0]  # negative: the left ear leads
    kemar_itd = lag(h[0][None], h[1][None])[0]
    assert itd < 0 and abs(itd - kemar_itd) <= 1.0


def test_itd_grows_monotonically_to_the_side(noise_renders):
    itds = [-lag(noise_renders[az][0][None], noise_renders[az][1][None], upsample=4)[0]
            for az in (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)]
    assert abs(itds[0]) < 0.1
    assert np.all(np.diff(itds) > 0), itds


def test_front_and_back_differ_as_the_hrtf_says(noise_renders, kemar):
    edges = [500, 1000, 2000, 4000, 8000, 16000]
    rendered = band_levels(noise_renders[0][0], edges) - band_levels(noise_renders[180][0], edges)
    f = np.fft.rfftfreq(8192, 1 / RATE)
    spec_f = np.abs(np.fft.rfft(measured(kemar, 0)[0], 8192)) ** 2
    spec_b = np.abs(np.fft.rfft(measured(kemar, 180)[0], 8192)) ** 2
    expected = np.array([10 * np.log10(spec_f[(f >= lo) & (f < hi)].sum() / spec_b[(f >= lo) & (f < hi)].sum())
                         for lo, hi in zip(edges[:-1], edges[1:])])
    assert np.max(np.abs(expected)) > 3  # the set does tell front from back
    np.testing.assert_allclose(rendered, expected, atol=1.0)


def test_measured_directions_keep_their_itd_and_interpolation_halfway(kemar):
    h = get_hrtf(None, RATE)
    worst_measured = worst_half = 0.0
    for az in range(0, 180, 5):
        for el in (0, 20):
            fir = h.hrirs(cartesian(az, el)[None])[0]
            worst_measured = max(worst_measured, abs(lag(fir[0][None], fir[1][None])[0] -
                                                    lag(*(measured(kemar, az, el)[k][None] for k in (0, 1)))[0]))
        if az < 175:
            half = h.hrirs(cartesian(az + 2.5, 0)[None])[0]
            mean = np.mean([lag(*(measured(kemar, a, 0)[k][None] for k in (0, 1)))[0] for a in (az, az + 5)])
            worst_half = max(worst_half, abs(lag(half[0][None], half[1][None])[0] - mean))
    assert worst_measured < 0.05
    assert worst_half <= 1.0


def test_below_the_lowest_measurement_is_filled():
    h = get_hrtf(None, RATE)
    filters, delays = h.interpolate(cartesian(np.arange(0, 360, 30), -70))
    assert np.all(np.isfinite(filters)) and np.all(np.sum(filters ** 2, axis=-1) > 0)
    straight_down = h.interpolate(cartesian(0, -90)[None])[1][0]
    assert abs(straight_down[0] - straight_down[1]) < 0.5  # no ITD straight below


def test_moving_source_has_no_clicks():
    """A 440 Hz tone circling the head once every 4 s: no sample jump larger than the tone's own
    largest step, and no broadband splatter from the block-wise filter updates."""
    hrtf = get_hrtf(None, RATE)
    n = RATE * 8
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)).astype(np.float32)[None]

    def render(turn_s):
        engine = MovingBinaural(hrtf, 1, 0, torch.device("cpu"))
        parts, chunk = [], MOVE_BLOCK * 100
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            t = (s + np.arange(m // MOVE_BLOCK + 1) * MOVE_BLOCK) / RATE
            az = 360 * t / turn_s if turn_s else np.full_like(t, 90.0)
            ones = np.ones((1, len(t)))
            parts.append(engine.process(x[:, s:s + m], cartesian(az, 0 * az)[None], ones, 0 * ones))
        return np.concatenate(parts, axis=1)

    moving, still = render(4.0), render(None)
    peak_step = np.abs(np.diff(still, axis=1)).max()  # the loudest ear, facing the source
    assert np.abs(np.diff(moving, axis=1)).max() <= peak_step
    for ear in moving:
        f, p = scipy.signal.welch(ear[RATE:], RATE, nperseg=8192)
        assert 10 * np.log10(p[f > 2000].sum() / p.sum()) < -60
    energy = np.sum(moving.reshape(2, 8, -1) ** 2, axis=-1)  # left louder while the source is on the left
    assert energy[0, 0] > energy[1, 0] and energy[1, 2] > energy[0, 2]


def test_sofa_errors(tmp_path):
    bad = tmp_path / "bad.sofa"
    bad.write_text("not hdf5")
    with pytest.raises(UpmixError, match="not a SOFA file"):
        load_sofa(bad)
    import h5py

    other = tmp_path / "other.sofa"
    with h5py.File(other, "w") as f:
        f.attrs["SOFAConventions"] = "GeneralTF"
    with pytest.raises(UpmixError, match="HRTFs need SimpleFreeFieldHRIR"):
        load_sofa(other)


def test_cartesian_sofa_and_data_delay(tmp_path):
    """A SOFA file with Cartesian positions and a Data.Delay reads as the same set, delayed."""
    import h5py

    s = load_sofa(default_hrtf_path())
    path = tmp_path / "cart.sofa"
    xyz = np.stack([s.directions[:, 1], -s.directions[:, 0], s.directions[:, 2]], axis=1) * 1.4
    with h5py.File(path, "w") as f:
        f.attrs["SOFAConventions"] = "SimpleFreeFieldHRIR"
        f["Data.IR"] = s.hrirs
        f["Data.SamplingRate"] = [s.sample_rate]
        f["Data.Delay"] = [[3.0, 3.0]]
        pos = f.create_dataset("SourcePosition", data=xyz)
        pos.attrs["Type"] = "cartesian"
        pos.attrs["Units"] = "metre"
    c = load_sofa(path)
    np.testing.assert_allclose(c.directions, s.directions, atol=1e-9)
    np.testing.assert_allclose(c.hrirs[..., 3:3 + s.hrirs.shape[-1]], s.hrirs, atol=1e-9)


def test_binauralize_7_1_4(tmp_path):
    rng = np.random.default_rng(2)
    x = np.zeros((12, RATE))
    x[6] = rng.standard_normal(RATE) * 0.1  # SL = M+090, the left side speaker
    src = tmp_path / "in.wav"
    write(src, x, RATE, "FLOAT", 0x2D63F)
    report = binauralize(src, tmp_path / "out.wav", bits="float")
    y = read(tmp_path / "out.wav")[0]
    assert report["input"]["format"] == "4+7+0" and y.shape[0] == 2
    assert np.sum(y[0] ** 2) > 10 * np.sum(y[1] ** 2)
    proc = run_cli("binauralize", src, "-o", tmp_path / "cli.wav")
    assert proc.returncode == 0, proc.stderr
    write(tmp_path / "odd.wav", rng.standard_normal((5, 100)) * 0.1, RATE, "PCM_16")
    proc = run_cli("binauralize", tmp_path / "odd.wav", "-o", tmp_path / "x.wav")
    assert proc.returncode == 2 and "name it (--layout)" in proc.stderr and not (tmp_path / "x.wav").exists()
