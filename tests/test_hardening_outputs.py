"""Hardening (issue 25): Demucs checkpoints cannot run code, no command writes over its inputs, and
`separate` reports the stems as they were written (clipping included)."""

import json
import os
import shlex
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli
from test_cli import assert_clean_failure
from upmix import audio

RATE = 44100


class Payload:
    """Unpickles into a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def malicious_checkpoint(path, marker):
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"klass": Payload(marker), "args": (), "kwargs": {}, "state": {}}, path)


def tone(path, seconds=0.5, rate=RATE, channels=2, peak=0.5, subtype="PCM_24"):
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([np.sin(2 * np.pi * f * t) for f in (220.0, 330.0)[:channels]])
    audio.write(path, peak * x, rate, subtype)
    return path


# -- 1. Demucs checkpoints are unpickled weights-only ---------------------------------------------

def test_demucs_weights_folder_cannot_run_code(tmp_path):
    pytest.importorskip("demucs")
    marker = tmp_path / "pwned"
    malicious_checkpoint(tmp_path / "weights" / "htdemucs.th", marker)
    src = tone(tmp_path / "in.wav")
    proc = run_cli("separate", src, "-o", tmp_path / "out", "--model", "demucs:htdemucs",
                   "--weights", tmp_path / "weights")
    assert not marker.exists()
    assert_clean_failure(proc, "htdemucs.th", "posix.system")
    assert not (tmp_path / "out").exists()


def test_demucs_hub_cache_cannot_run_code(tmp_path):
    pytest.importorskip("demucs")
    marker = tmp_path / "pwned"
    # htdemucs is the bag of one model, 955717e8; without a checksum in its name nothing is checked
    malicious_checkpoint(tmp_path / "torch" / "hub" / "checkpoints" / "955717e8.th", marker)
    src = tone(tmp_path / "in.wav")
    proc = run_cli("run", src, "-o", tmp_path / "out.wav", "--separator", "demucs", "--format", "stereo",
                   env={"TORCH_HOME": str(tmp_path / "torch")})
    assert not marker.exists()
    assert_clean_failure(proc, "955717e8.th", "posix.system")
    assert not (tmp_path / "out.wav").exists()


def test_a_saved_demucs_checkpoint_and_its_bag_still_load_and_separate(tmp_path):
    pytest.importorskip("demucs")
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    from upmix.separation.demucs import load_demucs

    torch.manual_seed(0)
    model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, depth=2, t_layers=1, nfft=512,
                     segment=Fraction(1, 2), dconv_depth=1, dconv_comp=4, t_heads=2)
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, half=True),
               "training_args": {"seed": 0}}  # what demucs.states.serialize_model makes
    weights = tmp_path / "weights"
    weights.mkdir()
    save_with_checksum(package, weights / "0123abcd.th")  # 0123abcd-<sha256 prefix>.th
    (weights / "tiny.yaml").write_text("models: ['0123abcd']\n")

    loaded = load_demucs("0123abcd", weights)
    assert loaded.segment == Fraction(1, 2)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value.half().float())

    src = tone(tmp_path / "in.wav", seconds=0.3)
    proc = run_cli("separate", src, "-o", tmp_path / "stems", "--model", "demucs:tiny", "--weights", weights,
                   "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "stems" / "separation.json").read_text())
    assert [s["name"] for s in report["stems"]] == ["drums", "bass", "other", "vocals"]
    assert report["mix_snr_db"] > 60


def test_a_checkpoint_of_another_class_is_refused(tmp_path):
    pytest.importorskip("demucs")
    import torch

    from upmix.errors import UpmixError
    from upmix.separation.demucs import load_demucs

    torch.save({"klass": torch.Size, "args": ((1, 2),), "kwargs": {}, "state": {}}, tmp_path / "abc.th")
    with pytest.raises(UpmixError, match="not a Demucs checkpoint"):
        load_demucs("abc", tmp_path)
