"""The orchestra separator says what it is (issue 27, point 5): every use prints one warning line
with its measured figures and puts it in the report; ``auto`` never picks it."""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli
from upmix.separation.orchestra import EXPERIMENTAL

RATE = 22050


@pytest.fixture
def clip(tmp_path, rng):
    """Writes a 1 s recording with `channels` channels: two tones and a little noise."""

    def make(channels=2):
        t = np.arange(RATE) / RATE
        tones = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)])[:channels]
        audio = (0.2 * tones + 0.01 * rng.standard_normal(tones.shape)).astype(np.float32)
        path = tmp_path / f"in{channels}.wav"
        sf.write(path, audio.T, RATE)
        return path

    return make


def warning_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("upmix: warning:") and "experimental" in line]


def test_the_warning_holds_measured_figures():
    assert "experimental" in EXPERIMENTAL and "recorded instruments" in EXPERIMENTAL
    assert "worse than the input" in EXPERIMENTAL and "dB" in EXPERIMENTAL and "\n" not in EXPERIMENTAL


def test_separate_with_the_orchestra_model_warns_once(clip, tmp_path):
    out = tmp_path / "stems"
    proc = run_cli("separate", clip(), "-o", out, "--model", "orchestra", "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    assert warning_lines(proc.stderr) == [f"upmix: warning: {EXPERIMENTAL}"], proc.stderr
    assert json.loads((out / "separation.json").read_text())["warnings"] == [EXPERIMENTAL]


def test_run_with_the_orchestra_separator_warns_once(clip, tmp_path):
    out = tmp_path / "out.wav"
    proc = run_cli("run", clip(), "-o", out, "-f", "5.1", "--separator", "orchestra", "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    assert warning_lines(proc.stderr) == [f"upmix: warning: {EXPERIMENTAL}"], proc.stderr
    assert EXPERIMENTAL in json.loads(out.with_suffix(".json").read_text())["warnings"]


@pytest.mark.parametrize("channels, picked", [(2, "spatial"), (1, "mono")])
def test_auto_never_picks_the_orchestra_model(clip, tmp_path, channels, picked):
    out = tmp_path / "out.wav"
    proc = run_cli("run", clip(channels), "-o", out, "-f", "5.1", "-q")  # --separator auto is the default
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["separator"] == picked
    assert not warning_lines(proc.stderr) and EXPERIMENTAL not in report["warnings"]
