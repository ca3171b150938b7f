"""Reports describe the file on disk: the fold-down SNR, true peak, AmbiX loudness and the stems'
peaks are measured on the samples as written."""

import json

import numpy as np
import pytest

from conftest import run_cli
from upmix.dsp import to_db
from upmix.io import read, write
from upmix.jobs.options import RunOptions
from upmix.jobs.separate import separate_file
from upmix.jobs.upmix import upmix_file
from upmix.layouts import get_layout
from upmix.render.downmix import fold_down_matrix

RATE = 48000


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """One second of a panned tone over a decorrelated noise bed, 24-bit stereo."""
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([0.8 * tone, 0.4 * tone]) + 0.05 * rng.standard_normal((2, RATE))
    path = tmp_path_factory.mktemp("in") / "in.wav"
    write(path, x.astype(np.float32), RATE, "PCM_24")
    return path


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) /
                               np.sum((estimate.astype(np.float64) - reference) ** 2)))


@pytest.mark.parametrize("bits", ["24", "float"])
def test_exact_downmix_snr_is_that_of_the_written_file(tmp_path, stereo, bits):
    out = tmp_path / f"o{bits}.wav"
    report = upmix_file(stereo, out, RunOptions(format="7.1.4", exact_downmix=True, bits=bits))
    y, _ = read(out)
    x, _ = read(stereo)
    measured = snr_db(fold_down_matrix(get_layout("7.1.4")) @ y.astype(np.float64), x)
    assert report["fold_down_snr_db"] == pytest.approx(measured, abs=0.1)
    assert report["fold_down_snr_db"] > 100


def test_plain_run_reports_the_true_peak_info_measures(tmp_path, stereo):
    out = tmp_path / "o.wav"
    report = upmix_file(stereo, out, RunOptions(format="5.1"))
    assert report["true_peak_dbtp"] is not None and np.isfinite(report["true_peak_dbtp"])
    proc = run_cli("info", out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert report["true_peak_dbtp"] == pytest.approx(json.loads(proc.stdout)["true_peak_dbtp"], abs=0.05)


def test_info_recognises_ambix_and_measures_loudness_as_the_run(tmp_path, rng):
    stems = tmp_path / "stems"
    stems.mkdir()
    write(stems / "a.wav", rng.standard_normal((1, RATE)) * 0.1, RATE, "PCM_24")
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 60, distance: 2}}\n")
    out = tmp_path / "a3.wav"
    proc = run_cli("render", scene, "--stems", stems, "-o", out, "-f", "ambix3")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    desc = json.loads(run_cli("info", out, "--json").stdout)
    assert desc["format"] == "ambix3" and desc["layout"].startswith("AmbiX order 3")
    assert [c["label"] for c in desc["channel_info"]] == [f"ACN{k}" for k in range(16)]
    assert desc["integrated_lufs"] == pytest.approx(report["integrated_lufs"], abs=0.1)
    assert desc["true_peak_dbtp"] == pytest.approx(report["true_peak_dbtp"], abs=0.05)
    proc = run_cli("info", out)
    assert "AmbiX order 3" in proc.stdout and "ACN15" in proc.stdout
    out.with_suffix(".json").unlink()  # without the report, 16 unlabelled channels are not taken for AmbiX
    assert json.loads(run_cli("info", out, "--json").stdout)["format"] is None


def test_separation_report_gives_each_stems_peaks_as_written(tmp_path, stereo):
    report = separate_file(stereo, tmp_path / "stems", model="spatial", bits="16")
    written = json.loads((tmp_path / "stems" / "separation.json").read_text())
    assert written == report
    for stem in written["stems"]:
        y, _ = read(tmp_path / "stems" / stem["file"])
        assert stem["peak_dbfs"] == [to_db(p) for p in np.abs(y).max(axis=1)]


def test_true_peak_skipping_quiet_windows_changes_nothing(rng):
    """The meter filters only the windows that could beat the peak so far: it finds the same
    peak as filtering every sample, on noise (sparse), a tone (dense) and both in one block."""
    from upmix.dsp import _TRUE_PEAK_TAPS, TruePeakMeter, _oversampled_peaks

    n = np.arange(20000)
    tone = 0.5 * np.sin(np.pi / 2 * n + np.pi / 4)
    noise = 0.1 * rng.standard_normal(20000)
    noise[15000] = 0.6  # a late spike, above the tone
    x = np.stack([noise, tone, noise[::-1]]).astype(np.float32)
    meter = TruePeakMeter()
    for start in range(0, x.shape[1], 4096):
        meter.process(x[:, start:start + 4096])
    pad = np.zeros((3, _TRUE_PEAK_TAPS - 1), np.float32)
    full = max(_oversampled_peaks(np.concatenate([pad, x, pad], axis=1)).max(), np.abs(x).max())
    assert meter.dbtp == to_db(full)


def test_info_of_an_ambix_run_gives_the_runs_loudness(tmp_path, stereo):
    from upmix.jobs.describe import describe_file

    out = tmp_path / "a3.wav"
    report = upmix_file(stereo, out, RunOptions(format="ambix3"))
    desc = describe_file(out)
    assert desc["format"] == "ambix3" and desc["channel_info"][0]["label"] == "ACN0"
    assert desc["integrated_lufs"] == pytest.approx(report["integrated_lufs"], abs=0.1)
