"""The command line: commands work, and every bad input gives one line, exit status 2, no
traceback and no output file."""

import json

import numpy as np
import pytest

from conftest import ROOT, run_cli
from upmix.io import read_channel_mask, write

RATE = 48000


@pytest.fixture
def project(tmp_path, rng):
    stems = tmp_path / "stems"
    stems.mkdir()
    write(stems / "a.wav", rng.standard_normal((1, RATE // 2)) * 0.1, RATE, "PCM_24")
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 30, distance: 2}}\n")
    return tmp_path, stems, scene


def assert_clean_failure(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("upmix: error: ")
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0]


def test_render_and_info(project):
    tmp, stems, scene = project
    out = tmp / "out.wav"
    proc = run_cli("render", scene, "--stems", stems, "-o", out, "--format", "7.1.4")
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and (tmp / "out.json").exists()
    assert read_channel_mask(out) == 0x2D63F
    proc = run_cli("info", out)
    assert proc.returncode == 0
    assert "4+7+0 (7.1.4)" in proc.stdout and "0x2D63F" in proc.stdout
    for label in ("FL", "LFE", "TBR", "U-135"):
        assert label in proc.stdout
    desc = json.loads(run_cli("info", out, "--json").stdout)
    assert desc["channels"] == 12 and desc["duration_s"] == pytest.approx(0.5 + 2 / 343, abs=1e-3)
    assert desc["channel_info"][0]["peak_dbfs"] > -40 and desc["integrated_lufs"] < 0


def test_layouts_command():
    proc = run_cli("layouts")
    assert proc.returncode == 0
    for name in ("0+2+0", "0+5+0", "2+5+0", "4+5+0", "0+7+0", "4+7+0", "4+9+0", "9+10+3", "7.1.4", "22.2"):
        assert name in proc.stdout
    listed = json.loads(run_cli("layouts", "--json").stdout)
    assert {"name": "4+7+0", "channel_mask": "0x2D63F"}.items() <= next(
        lay for lay in listed if lay["name"] == "4+7+0").items()


def test_quick_start_example(tmp_path):
    """The README's first command (after the install) and the scene example."""
    out = tmp_path / "quartet_7.1.4.wav"
    proc = run_cli("run", "examples/string_quartet/quartet_stereo.flac", "-o", out, "-f", "7.1.4", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert read_channel_mask(out) == 0x2D63F
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["input"]["treated_as"] == "stereo" and report["fold_down_snr_db"] > 10
    out = tmp_path / "scene_7.1.4.wav"
    proc = run_cli("render", "layouts/scenes/string_quartet.yaml", "--stems", "examples/string_quartet/stems",
                   "-o", out, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()


def stem_case(name, make):
    def prepare(tmp, stems, rng):
        make(stems / name, rng)
        (tmp / "bad.yaml").write_text(f"objects:\n  - {{stem: {name.split('.')[0]}, position: [0, 2, 0]}}\n")
        return tmp / "bad.yaml", [str(stems / name)]
    return prepare


def _truncated(path, rng):
    write(path, rng.standard_normal((1, RATE)) * 0.1, RATE, "PCM_24")
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 3])


def _nan(path, rng):
    x = rng.standard_normal((1, RATE)) * 0.1
    x[0, 100] = np.inf
    write(path, x, RATE, "FLOAT")


def _empty(path, rng):
    write(path, np.zeros((1, 0)), RATE, "PCM_16")


def _text(path, rng):
    path.write_text("definitely not audio " * 100)


def _six_channels(path, rng):
    write(path, rng.standard_normal((6, 1000)) * 0.1, RATE, "PCM_16")


def scene_case(text, *fragments, names_scene=True):
    def prepare(tmp, stems, rng):
        (tmp / "bad.yaml").write_text(text)
        return tmp / "bad.yaml", (["bad.yaml"] if names_scene else []) + list(fragments)
    return prepare


CASES = {
    "truncated": stem_case("t.wav", _truncated),
    "nan": stem_case("n.wav", _nan),
    "empty": stem_case("e.wav", _empty),
    "not audio": stem_case("x.wav", _text),
    "too many channels": stem_case("six.wav", _six_channels),
    "missing stem": scene_case("objects:\n  - {stem: nothere, position: [0, 1, 0]}\n", "stems",
                               "no audio file for stem 'nothere'", names_scene=False),
    "wrong key": scene_case("objects:\n  - {stem: a, positon: [0, 1, 0]}\n", "objects[0].positon: unknown key"),
    "impossible position": scene_case(
        "objects:\n  - {stem: a, position: [0, 1, 0]}\n  - {stem: a, position: [50, 1, 0]}\n"
        "listener: {position: [1, 1, 1]}\nroom: {dimensions: [5, 5, 3], rt60: 0.5}\n",
        "objects[1].position", "outside the room"),
    "bad yaml": scene_case("objects: [\n", "not valid YAML"),
    "unknown layout": scene_case("objects:\n  - {stem: a, position: [0, 1, 0]}\noutput: {format: 13.1}\n",
                                 "output.format", "unknown speaker layout"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_cleanly(project, rng, case):
    tmp, stems, _ = project
    scene, fragments = CASES[case](tmp, stems, rng)
    out = tmp / "out.wav"
    proc = run_cli("render", scene, "--stems", stems, "-o", out, "--format", "5.1")
    assert_clean_failure(proc, *fragments)
    assert not out.exists() and not (tmp / "out.json").exists()
    assert not list(tmp.glob(".out*"))  # no temporary file left behind


def test_other_bad_invocations(project, tmp_path):
    tmp, stems, scene = project
    out = tmp / "o.wav"
    assert_clean_failure(run_cli("render", tmp / "nope.yaml", "--stems", stems, "-o", out), "nope.yaml",
                         "file not found")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", out, "--format", "6.9"),
                         "unknown speaker layout '6.9'")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", out), "no output format")
    assert_clean_failure(run_cli("render", scene, "--stems", tmp / "none", "-o", out, "-f", "5.1"),
                         "stems folder not found")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", tmp / "no/such/dir/o.wav",
                                 "-f", "5.1"), "does not exist")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", tmp / "o.mp4", "-f", "5.1"),
                         "write .wav or .flac")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", tmp / "o.flac", "-f", "7.1.4"),
                         "at most 8 channels")
    assert_clean_failure(run_cli("render", scene, "--stems", stems, "-o", stems / "a.wav", "-f", "5.1"),
                         "overwrite")
    assert_clean_failure(run_cli("info", tmp / "missing.wav"), "missing.wav: file not found")
    assert not out.exists()
    assert run_cli("render", scene, "-o", out).returncode == 2  # usage errors also exit 2
