"""`upmix run`: the upmix protocol on a shortened signal, mono input, exact downmix, options."""

import itertools
import json

import numpy as np
import pytest
import scipy.signal

from conftest import run_cli
from upmix.analysis import measure, protocol_signal
from upmix.io import read, read_channel_mask, write
from upmix.jobs.options import RunOptions
from upmix.jobs.upmix import upmix_file
from upmix.layouts import get_layout
from upmix.render.downmix import complementary_gains, fold_down_gains
from upmix.separation import MonoSeparator, SpatialSeparator
from upmix.stage import Stage, StageOptions, stereo_azimuth

RATE = 48000


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    signal, segments = protocol_signal(RATE, burst_s=2.5, tone_s=3.0)
    path = tmp_path_factory.mktemp("protocol") / "protocol.wav"
    write(path, signal, RATE, "FLOAT")
    return path, signal, segments


def upmix(tmp_path, src, fmt, **kw):
    out = tmp_path / "out.wav"
    report = upmix_file(src, out, RunOptions(format=fmt, bits="float", **kw))
    return read(out)[0], report


@pytest.mark.parametrize("fmt,around", [("5.1", 4 / 9), ("7.1.4", 2 / 3)])
def test_protocol_at_the_default_width(tmp_path, protocol, fmt, around):
    """By default the whole upmix folds back to the input (the ambience by complementary filters,
    the centre by taking its fold-down off the front pair): every segment to float precision.
    The ambience keeps its energy, and the fold-down fixes its share around: 4/9 on 5.1 (one
    surround per side), 2/3 on 7.1.4 (four)."""
    src, signal, segments = protocol
    out, report = upmix(tmp_path, src, fmt)
    assert report["settings"]["width_deg"] == 30.0 and report["settings"]["fold_back"] is True
    assert report["fold_down_snr_db"] >= 100
    for r in measure(out, signal, get_layout(fmt), segments, RATE, width=30.0):
        assert abs(r.energy_db) <= 0.5, r
        assert r.fold_down_snr_db >= 100.0, r
        if r.segment.kind in ("pan", "tone"):
            assert abs(r.azimuth - r.expected) <= 0.1, r
            assert r.surround_share < 1e-3, r
        else:  # decorrelated and anti-phase noise: the ambience
            assert r.surround_share == pytest.approx(around, abs=0.04), r


@pytest.mark.parametrize("fmt,pair", [("5.1", ("M+110", "M-110")), ("7.1.4", ("M+090", "M-090"))])
def test_ambience_reaches_the_surrounds_decorrelated(tmp_path, protocol, fmt, pair):
    """The surround pair's coherence above 500 Hz on the decorrelated noise stays under 0.3."""
    src, signal, segments = protocol
    out, _ = upmix(tmp_path, src, fmt)
    names = [s.name for s in get_layout(fmt).speakers]
    noise = next(s for s in segments if s.kind == "decorrelated")
    part = out[:, noise.start:noise.stop]
    f, coherence = scipy.signal.coherence(part[names.index(pair[0])], part[names.index(pair[1])], fs=RATE,
                                          nperseg=4096)
    assert coherence[f > 500].max() < 0.3


@pytest.mark.parametrize("fmt", ["5.1", "7.1.4"])
def test_without_fold_back_the_ambience_goes_around(tmp_path, protocol, fmt):
    src, signal, segments = protocol
    out, report = upmix(tmp_path, src, fmt, fold_back=False)
    assert report["settings"]["fold_back"] is False and report["settings"]["ambience_front"] == 0.2
    for r in measure(out, signal, get_layout(fmt), segments, RATE, width=30.0):
        assert abs(r.energy_db) <= 0.5, r
        if r.segment.kind in ("pan", "tone"):
            assert abs(r.azimuth - r.expected) <= 2.0, r
            assert r.fold_down_snr_db >= 30.0, r
        else:  # decorrelated and anti-phase noise go around the listener
            assert r.surround_share >= 0.7, r
            assert r.fold_down_snr_db < 10.0, r  # and do not fold back


@pytest.mark.parametrize("fmt", ["5.1", "7.1.4"])
def test_wider_stage_places_by_width(tmp_path, protocol, fmt):
    src, signal, segments = protocol
    out, _ = upmix(tmp_path, src, fmt, width=45.0)
    for r in measure(out, signal, get_layout(fmt), segments, RATE, width=45.0):
        assert abs(r.energy_db) <= 0.5, r
        if r.segment.kind in ("pan", "tone"):
            assert abs(r.azimuth - r.expected) <= 3.0, r


@pytest.mark.parametrize("fmt,width", [("5.1", 30.0), ("7.1.4", 30.0), ("7.1.4", 60.0)])
def test_exact_downmix(tmp_path, protocol, fmt, width):
    src, signal, segments = protocol
    out, report = upmix(tmp_path, src, fmt, exact_downmix=True, width=width)
    assert report["fold_down_snr_db"] >= 60
    for r in measure(out, signal, get_layout(fmt), segments, RATE, width=width):
        assert r.fold_down_snr_db >= 60.0, r


def test_report_and_file(tmp_path, protocol):
    src, signal, _ = protocol
    out = tmp_path / "o.wav"
    report = upmix_file(src, out, RunOptions(format="7.1.4"))
    saved = json.loads((tmp_path / "o.json").read_text())
    assert saved == report and report["command"] == "run"
    assert read_channel_mask(out) == 0x2D63F
    assert report["format"] == "4+7+0"
    assert report["settings"] == {**report["settings"], "center": 1.0, "exact_downmix": False}
    assert report["input"]["treated_as"] == "stereo" and report["frames"] == signal.shape[1]
    assert all(ch["peak_dbfs"] is not None for ch in report["channels"] if ch["label"] != "LFE")
    assert report["integrated_lufs"] is not None and report["processing_time_s"] > 0
    assert report["fold_down_snr_db"] > 1.5  # ambience bursts are decorrelated: not 30 dB over all


def icc(a, b, max_lag=48):
    """Inter-channel coherence: largest normalised cross-correlation within +-1 ms."""
    import scipy.signal

    c = scipy.signal.correlate(a.astype(float), b.astype(float), mode="full", method="fft")
    mid = len(a) - 1
    return float(np.max(np.abs(c[mid - max_lag:mid + max_lag + 1])) / np.sqrt(np.sum(a ** 2) * np.sum(b ** 2)))


@pytest.fixture(scope="module")
def mono_music(tmp_path_factory):
    """The bundled quartet mixed to mono, with a little reverberation."""
    from conftest import ROOT

    parts = [read(p, sample_rate=RATE)[0][0] for p in sorted((ROOT / "examples/string_quartet/stems").glob("*"))]
    m = np.sum(parts, axis=0)[:RATE * 5]
    rng = np.random.default_rng(3)
    tail = rng.standard_normal(RATE // 2) * np.exp(-np.arange(RATE // 2) / (0.12 * RATE)) * 0.05
    m = np.convolve(m, np.concatenate([[1.0], tail]))[:len(m)]
    m = (0.5 * m / np.abs(m).max()).astype(np.float32)
    path = tmp_path_factory.mktemp("mono") / "mono.flac"
    write(path, m[None], RATE, "PCM_24")
    return path, m


def test_mono_is_spread_not_copied(tmp_path, mono_music):
    path, m = mono_music
    out, report = upmix(tmp_path, path, "7.1.4")
    assert report["input"]["treated_as"] == "mono" and report["settings"]["separator"] == "mono"
    layout = get_layout("7.1.4")
    around = [i for i, s in enumerate(layout.speakers) if not s.is_lfe and s.name not in ("M+030", "M-030", "M+000")]
    assert len(around) == 8
    for i, j in itertools.combinations(around, 2):
        assert icc(out[i], out[j]) < 0.9
    energy = np.sum(out.astype(float) ** 2, axis=1)
    assert energy[around].sum() > 0.1 * energy.sum()  # ambience really reaches the surrounds
    assert energy[2] > 0.1 * energy.sum()  # and the direct sound the centre
    total = 10 * np.log10(energy.sum() / (2 * np.sum(m.astype(float) ** 2)))  # against dual mono
    assert abs(total) < 1.0


def test_identical_stereo_channels_are_treated_as_mono(tmp_path, mono_music):
    _, m = mono_music
    dual = tmp_path / "dual.wav"
    write(dual, np.stack([m, m]), RATE, "PCM_24")
    _, report = upmix(tmp_path, dual, "5.1")
    assert report["input"]["treated_as"] == "mono"
    out, report = upmix(tmp_path, dual, "5.1", exact_downmix=True)
    assert report["fold_down_snr_db"] >= 60


def test_lfe_gets_only_bass_when_asked(tmp_path):
    t = np.arange(RATE * 2) / RATE
    x = (0.2 * np.sin(2 * np.pi * 50 * t) + 0.2 * np.sin(2 * np.pi * 2000 * t)).astype(np.float32)
    src = tmp_path / "in.wav"
    write(src, np.stack([x, 0.5 * x]), RATE, "FLOAT")
    out, _ = upmix(tmp_path, src, "5.1")
    assert np.all(out[3] == 0)
    out, report = upmix(tmp_path, src, "5.1", lfe=True)
    lfe = out[3, RATE // 2:]
    spec = np.abs(np.fft.rfft(lfe))
    f = np.fft.rfftfreq(len(lfe), 1 / RATE)
    assert spec[np.argmin(np.abs(f - 50))] > 1000 * spec[np.argmin(np.abs(f - 2000))]
    assert report["settings"]["lfe_from_bass"] is True


def test_recording_seated_on_a_scene(tmp_path, protocol):
    """With --scene, direct sound goes to the scene's objects by where they sit across the stage."""
    src, signal, segments = protocol
    scene = tmp_path / "seats.yaml"
    scene.write_text("objects:\n"
                     "  - {stem: left_seat, position: {azimuth: 60, distance: 3}}\n"
                     "  - {stem: middle_seat, position: {azimuth: 0, distance: 3}}\n"
                     "  - {stem: right_seat, position: {azimuth: -60, distance: 3}}\n"
                     "render: {propagation_delay: false, reference_distance: 3}\n")
    out, report = upmix(tmp_path, src, "5.1", scene=scene)
    assert report["fold_down_snr_db"] is None and report["settings"]["scene"] == str(scene)
    layout = get_layout("5.1")
    results = {r.segment.label: r for r in measure(out, signal, layout, segments, RATE)}

    def seat(az):  # where the panner itself puts a source at that azimuth
        from upmix.analysis import energy_vector_azimuth
        from upmix.geometry import cartesian
        from upmix.render.targets import get_target

        return energy_vector_azimuth(get_target("5.1").gains(cartesian(az, 0)[None])[0] ** 2, layout)

    assert results["noise p=-1.0"].azimuth == pytest.approx(seat(60), abs=2)  # hard left: the left seat
    assert results["noise p=+0.0"].azimuth == pytest.approx(0, abs=2)
    assert results["noise p=+1.0"].azimuth == pytest.approx(seat(-60), abs=2)
    assert results["decorrelated noise"].surround_share > 0.3  # ambience: diffuse, all around


def test_streaming_is_block_size_independent():
    signal, _ = protocol_signal(RATE, burst_s=1.0, tone_s=1.0)
    sep = SpatialSeparator(Stage(get_layout("7.1.4"), StageOptions()), device="cpu")
    whole = sep.separate(signal, RATE)
    small = {}
    blocks = (signal[:, i:i + 4000] for i in range(0, signal.shape[1], 4000))
    for out in sep.stream(blocks, RATE):
        for k, v in out.items():
            small.setdefault(k, []).append(v)
    for k, v in whole.items():
        assert v.shape == (1, signal.shape[1])
        np.testing.assert_allclose(np.concatenate(small[k], axis=1), v, atol=2e-5)


def test_stage_rules():
    layout = get_layout("7.1.4")
    stage = Stage(layout, StageOptions(width=60))
    tau = np.linspace(-179, 179, 717)
    e = stage.ring_energies(tau)
    np.testing.assert_allclose(e.sum(-1), 1.0, atol=1e-9)
    az = np.radians([stage.dests[i].azimuth for i in stage.ring])
    v = e @ np.stack([-np.sin(az), np.cos(az)], axis=1)
    np.testing.assert_allclose(np.degrees(np.arctan2(-v[:, 0], v[:, 1])), tau, atol=1e-6)
    for side, shares in stage.ambience_shares().items():
        assert sum(w for _, w in shares) == pytest.approx(1.0)
        assert {stage.dests[d].name for d, _ in shares} >= {"M+090", "U+045"} if side > 0 else True
    table = stage.direct_gains_table()
    np.testing.assert_allclose((table ** 2).sum(-1), 1.0, atol=1e-9)  # power-complementary
    assert stereo_azimuth(np.array([0.0, np.pi / 4, np.pi / 2])) == pytest.approx([30, 0, -30], abs=1e-9)
    assert fold_down_gains(30, 0) == (1.0, 0.0) and fold_down_gains(0, 0) == pytest.approx((0.7071, 0.7071), abs=1e-4)
    assert fold_down_gains(-110, 0) == pytest.approx((0, 0.7071), abs=1e-4)
    assert fold_down_gains(135, 30) == pytest.approx((0.7071, 0), abs=1e-4)


@pytest.mark.parametrize("folds,weights", [([0.7071], [1.0]), ([0.7071] * 4, [1.0, 0.8, 0.9, 0.9]),
                                           ([0.7071, 0.5], [1.0, 2.0])])
def test_complementary_gains_fold_back_exactly_and_keep_the_energy(folds, weights):
    """Per frequency, with random all-pass phases d_i: the fold-down of the front and the others
    is 1, and their energy is 1 on average over frequency (the terms coherent with A cancel)."""
    c, alpha, beta = complementary_gains(np.array(folds), np.array(weights))
    g = np.array(folds)
    d = np.exp(1j * np.random.default_rng(0).uniform(-np.pi, np.pi, (len(folds), 200000)))
    around = alpha[:, None] + beta[:, None] * d
    front = c - np.sum((g * beta)[:, None] * d, axis=0)
    np.testing.assert_allclose(front + g @ around, 1.0, atol=1e-12)
    assert np.mean(np.abs(front) ** 2 + np.sum(np.abs(around) ** 2, axis=0)) == pytest.approx(1.0, abs=0.01)
    shares = np.mean(np.abs(around) ** 2, axis=1)
    spare = (shares - alpha ** 2) * (1 + g ** 2)  # each one's decorrelated energy, with what it takes off the front
    np.testing.assert_allclose(spare / np.sum(spare), np.array(weights) / sum(weights), rtol=0.02)


def test_the_stage_folds_the_ambience_back_on_its_own_side():
    stage = Stage(get_layout("7.1.4"), StageOptions())
    spread = stage.ambience_fold_back()
    for side, (front, c, around) in spread.items():
        assert stage.dests[front].name == ("M+030" if side > 0 else "M-030")
        assert {stage.dests[d].name for d, *_ in around} == ({"M+090", "M+135", "U+045", "U+135"} if side > 0 else
                                                             {"M-090", "M-135", "U-045", "U-135"})
        assert c == pytest.approx(1 / 3)
    stereo = Stage(get_layout("0+2+0"), StageOptions())
    assert all(c == 1.0 and around == () for _, c, around in stereo.ambience_fold_back().values())


def test_mono_separator_energy():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(RATE * 3) * 0.1).astype(np.float32)
    sep = MonoSeparator(Stage(get_layout("5.1"), StageOptions()), device="cpu")
    out = sep.separate(x[None], RATE)
    total = sum(np.sum(v.astype(float) ** 2) for v in out.values())
    assert total == pytest.approx(2 * np.sum(x.astype(float) ** 2), rel=0.12)


def assert_clean_failure(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    for f in fragments:
        assert f in proc.stderr


def test_run_command_and_errors(tmp_path, protocol, rng):
    src, _, _ = protocol
    out = tmp_path / "o.wav"
    proc = run_cli("run", src, "-o", out, "-f", "5.1")
    assert proc.returncode == 0, proc.stderr
    assert "fold-down SNR" in proc.stdout and read_channel_mask(out) == 0x60F
    six = tmp_path / "six.wav"
    write(six, rng.standard_normal((6, 4800)) * 0.1, RATE, "PCM_16")
    nan = tmp_path / "nan.wav"
    x = rng.standard_normal((2, 48000)) * 0.1
    x[1, 40000] = np.nan
    write(nan, x, RATE, "FLOAT")
    bad_out = tmp_path / "bad.wav"
    assert_clean_failure(run_cli("run", six, "-o", bad_out), "six.wav", "mono, stereo or AmbiX", "6 channels")
    assert_clean_failure(run_cli("run", nan, "-o", bad_out), "nan.wav", "NaN")
    assert_clean_failure(run_cli("run", tmp_path / "none.wav", "-o", bad_out), "none.wav: file not found")
    assert_clean_failure(run_cli("run", src, "-o", bad_out, "-f", "8.1"), "unknown speaker layout")
    assert_clean_failure(run_cli("run", src, "-o", bad_out, "--width", "200"), "--width")
    assert_clean_failure(run_cli("run", src, "-o", bad_out, "--center", "1.5"), "--center")
    assert_clean_failure(run_cli("run", src, "-o", src), "overwrite the input")
    assert not bad_out.exists() and not list(tmp_path.glob(".bad*"))
