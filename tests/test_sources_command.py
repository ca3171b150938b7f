"""`upmix sources`: the table of a recording's sources by direction, the stage map as a PNG, the
JSON report, and the bad inputs (issue 27, point 4)."""

import json
import struct

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli
from test_cli import assert_clean_failure
from test_localise import RATE, pan_pot

AZIMUTHS = [22, 4, -17]


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    path = tmp_path_factory.mktemp("sources") / "mix.wav"
    sf.write(path, pan_pot(AZIMUTHS, seconds=6.0).T, RATE)  # (3 s showed a phantom source between two)
    return path


def table_azimuths(stdout):
    """The azimuth column of the printed table."""
    return [float(line.split("│")[2]) for line in stdout.splitlines() if line.startswith("│")]


def test_table_lists_every_source_where_it_was_panned(mix):
    proc = run_cli("sources", mix)
    assert proc.returncode == 0, proc.stderr
    found = table_azimuths(proc.stdout)
    assert len(found) == len(AZIMUTHS), proc.stdout
    for got, want in zip(found, AZIMUTHS):  # left to right
        assert abs(got - want) <= 1.0, proc.stdout


def test_png_and_json(mix, tmp_path):
    png, report = tmp_path / "map.png", tmp_path / "sources.json"
    proc = run_cli("sources", mix, "--png", png, "--json", report)
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= 600 and height >= 300
    assert str(png) in proc.stdout and str(report) in proc.stdout
    result = json.loads(report.read_text())
    for key in ("upmix_version", "command", "input", "output", "settings", "warnings", "processing_time_s",
                "realtime_factor", "duration_s", "row_duration_s", "sources"):
        assert key in result
    assert result["command"] == "sources" and result["output"] == str(png)
    assert result["duration_s"] == pytest.approx(6.0, abs=0.01)
    assert 0.1 < result["row_duration_s"] < 1.0
    sources = result["sources"]
    assert [round(s["azimuth_deg"]) for s in sources] == AZIMUTHS
    for s in sources:
        assert set(s) >= {"azimuth_deg", "spread_deg", "level_db", "active_s", "active_share"}
        assert s["level_db"] == pytest.approx(10 * np.log10(s["share"]), abs=0.01)
        assert 0 < s["active_s"] <= 6.0
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_existing_outputs_are_kept_without_overwrite(mix, tmp_path):
    png = tmp_path / "map.png"
    png.write_bytes(b"mine")
    assert_clean_failure(run_cli("sources", mix, "--png", png), str(png), "already exists", "--overwrite")
    assert png.read_bytes() == b"mine"
    assert run_cli("sources", mix, "--png", png, "-y").returncode == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("channels, what", [(1, "is mono"), (3, "has 3 channels")])
def test_not_stereo(tmp_path, rng, channels, what):
    path = tmp_path / "in.wav"
    sf.write(path, 0.1 * rng.standard_normal((RATE, channels)).astype(np.float32), RATE)
    assert_clean_failure(run_cli("sources", path), str(path), f"needs a stereo recording; this file {what}")


def test_silence(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((RATE, 2), np.float32), RATE)
    png = tmp_path / "map.png"
    assert_clean_failure(run_cli("sources", silent, "--png", png), str(silent), "no direct sound")
    assert not png.exists()


@pytest.mark.parametrize("count, fragments", [("9", ("--sources asks for 9 sources",)),
                                               ("0", ("--sources must be 1 to 16",))])
def test_more_sources_asked_than_there_are(mix, count, fragments):
    proc = run_cli("sources", mix, "--sources", count)
    assert_clean_failure(proc, *fragments)
    if count == "9":
        assert str(mix) in proc.stderr
