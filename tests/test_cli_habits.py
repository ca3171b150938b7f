"""Command-line habits of ffmpeg, sox and demucs users: -h, --version, flags that look like flags,
defaults in the help, no silent overwriting (-y), output that survives pipes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import upmix
from conftest import ROOT, run_cli
from test_cli import assert_clean_failure
from upmix.io import write

RATE = 48000
WIDE = {"COLUMNS": "250"}  # typer's help wraps at this width: long help lines stay on one line


def test_short_help_and_version():
    for args in (["-h"], ["run", "-h"], ["batch", "-h"]):
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert "Usage: upmix" in proc.stdout
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"upmix {upmix.__version__}\n"


def _option_line(help_text: str, option: str) -> str:
    lines = [line for line in help_text.splitlines() if line.strip("│ ").startswith(option)]
    assert len(lines) == 1, help_text
    return lines[0]


@pytest.mark.parametrize("command", ["run", "render", "walk", "binauralize", "separate", "batch"])
def test_on_off_options_show_as_flags(command):
    proc = run_cli(command, "-h", env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout
    assert ("--overwrite" in proc.stdout) == (command != "batch")  # batch has its journal


def test_run_help_flags_and_defaults():
    text = run_cli("run", "-h", env=WIDE).stdout
    exact = _option_line(text, "--exact-downmix")
    assert exact.split()[2] == "Guarantee", exact  # no value between the flag and its help
    lfe = _option_line(text, "--lfe")
    assert "--no-lfe" in lfe and "<bool>" not in lfe
    for option, default in [("--width", "[default: 30; film 60]"), ("--center", "[default: 1]"),
                            ("--ambience-front", "[default: 0.2; film 0]"), ("--bits", "[default: 24]"),
                            ("--lfe", "[default: off; film on"), ("--hrtf", "[default: MIT KEMAR]"),
                            ("--device", "[default: auto]"), ("--overwrite", "")]:
        assert default in _option_line(text, option), option
    assert "[default: 30; film 60]" in _option_line(run_cli("batch", "-h", env=WIDE).stdout, "--width")


@pytest.fixture
def files(tmp_path, rng):
    """A stereo recording, a one-object scene with a listener path, and its stem."""
    stereo = tmp_path / "in.wav"
    write(stereo, rng.standard_normal((2, RATE // 10)) * 0.1, RATE, "PCM_24")
    stems = tmp_path / "stems"
    stems.mkdir()
    write(stems / "a.wav", rng.standard_normal((1, RATE // 10)) * 0.1, RATE, "PCM_24")
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 30, distance: 2}}\n"
                     "listener:\n  path: [{time: 0, position: [0, 0, 0]}, {time: 0.1, position: [0, 1, 0]}]\n")
    return tmp_path, stereo, stems, scene


def _assert_refused_then_forced(args: list, existing: Path, outputs: list[Path]):
    """With `existing` already there, `args` stops before touching it; with -y it goes ahead."""
    before = {p: p.read_bytes() for p in outputs if p.exists()}
    proc = run_cli(*args)
    assert_clean_failure(proc, str(existing), "already exists", "-y")
    assert {p: p.read_bytes() for p in outputs if p.exists()} == before
    proc = run_cli(*args, "-y")
    assert proc.returncode == 0, proc.stderr
    assert all(p.exists() for p in outputs)
    assert existing.read_bytes() != before[existing]


@pytest.mark.parametrize("which", ["audio", "report"])
def test_run_refuses_existing_output(files, which):
    tmp, stereo, _, _ = files
    out = tmp / "out.wav"
    existing = out if which == "audio" else tmp / "out.json"
    existing.write_bytes(b"keep me")
    _assert_refused_then_forced(["run", stereo, "-o", out, "-f", "5.1", "-q"], existing, [out, tmp / "out.json"])


def test_render_walk_binauralize_refuse_existing_output(files):
    tmp, _, stems, scene = files
    for command, extra in [("render", ["-f", "5.1"]), ("walk", [])]:
        out = tmp / f"{command}.wav"
        out.write_bytes(b"keep me")
        _assert_refused_then_forced([command, scene, "--stems", stems, "-o", out, "-q", *extra], out,
                                    [out, out.with_suffix(".json")])
    out = tmp / "binaural.wav"
    out.with_suffix(".json").write_text("{}")
    _assert_refused_then_forced(["binauralize", tmp / "render.wav", "-o", out, "-q"], out.with_suffix(".json"),
                                [out, out.with_suffix(".json")])


def test_render_ambix_refuses_existing_output(files, rng):
    tmp, *_ = files
    ambix = tmp / "ambix.wav"
    write(ambix, rng.standard_normal((4, RATE // 10)) * 0.1, RATE, "PCM_24")
    out = tmp / "decoded.wav"
    out.write_bytes(b"keep me")
    _assert_refused_then_forced(["render", ambix, "-o", out, "-f", "5.1", "-q"], out, [out, tmp / "decoded.json"])


def test_separate_refuses_existing_stems(files):
    tmp, stereo, _, _ = files
    folder = tmp / "sep"
    folder.mkdir()
    (folder / "separation.json").write_text("{}")
    (folder / "unrelated.txt").write_text("not an output")
    proc = run_cli("separate", stereo, "-o", folder, "-m", "spatial", "-q")
    assert_clean_failure(proc, "separation.json", "already exists", "-y")
    assert sorted(p.name for p in folder.iterdir()) == ["separation.json", "unrelated.txt"]
    proc = run_cli("separate", stereo, "-o", folder, "-m", "spatial", "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "separation.json").read_text())["stems"]


def test_output_given_as_input_still_names_the_input(files):
    """The existing-output check does not hide the worse mistake of writing over the input."""
    _, stereo, _, _ = files
    assert_clean_failure(run_cli("run", stereo, "-o", stereo, "-q"), "would overwrite the input")


def test_layouts_table_unwrapped_off_a_terminal():
    proc = run_cli("layouts", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    for lay in json.loads(run_cli("layouts", "--json").stdout):
        assert " ".join(lay["channels"]) in proc.stdout, lay["name"]


@pytest.fixture
def long_folder(tmp_path):
    folder = tmp_path / ("a-folder-with-a-long-name-" * 4)
    folder.mkdir()
    return folder


def test_info_unwrapped_off_a_terminal(long_folder, rng):
    long_file = long_folder / "recording.wav"
    write(long_file, rng.standard_normal((2, RATE // 10)) * 0.1, RATE, "PCM_24")
    proc = run_cli("info", long_file, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert str(long_file) in proc.stdout.splitlines()
    assert any(line.split()[0] == "format" and line.endswith(" 2 channels") for line in proc.stdout.splitlines())


def test_batch_summary_title_unwrapped_off_a_terminal(long_folder):
    proc = run_cli("batch", long_folder / "missing.wav", "-o", long_folder / "out", env={"COLUMNS": "80"})
    assert proc.returncode == 2
    assert f"upmix batch: {long_folder / 'out'}" in proc.stderr.splitlines()


@pytest.mark.parametrize("args", [["layouts", "--json"], ["layouts"]])
def test_broken_pipe_is_quiet(args):
    """The reader is gone before upmix writes (``upmix layouts | head -1``): no error, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "upmix", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=60)
    assert stderr == ""
    assert proc.returncode in (0, 141)  # 141: as if killed by SIGPIPE


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_quick_start_outputs_are_ignored():
    ignored = ["quartet_7.1.4.wav", "quartet_7.1.4.json", "walk_binaural.wav", "walk_binaural.json"]
    kept = ["examples/quartet_7.1.4.wav", "examples/walkthrough/walk_binaural.json"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *ignored, *kept], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.stdout.split() == ignored
