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
from upmix.io import write

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
    write(path, peak * x, rate, subtype)
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


def test_a_checkpoint_of_another_class_or_no_pickle_is_refused(tmp_path):
    pytest.importorskip("demucs")
    import torch

    from upmix.errors import UpmixError
    from upmix.separation.demucs import load_demucs

    torch.save({"klass": torch.Size, "args": ((1, 2),), "kwargs": {}, "state": {}}, tmp_path / "abc.th")
    with pytest.raises(UpmixError, match="not a Demucs checkpoint"):
        load_demucs("abc", tmp_path)
    (tmp_path / "abc.th").write_bytes(b"not a pickle")
    with pytest.raises(UpmixError, match="not a readable Demucs checkpoint"):
        load_demucs("abc", tmp_path)


# -- 2. no command writes over its inputs ----------------------------------------------------------

STEM = "direct.M+000"  # a stem of the spatial separator


def test_separate_never_writes_over_its_input(tmp_path):
    src = tone(tmp_path / f"{STEM}.wav")  # an input named like one of the stems, separated into its folder
    before = src.read_bytes()
    proc = run_cli("separate", src, "-o", tmp_path, "--model", "spatial", "-q")
    assert_clean_failure(proc, f"{STEM}.wav", "would overwrite the input")
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{STEM}.wav"]


@pytest.mark.parametrize("how", ["hard link", "input is a link", "output is a link"])
def test_separate_never_writes_over_a_link_to_its_input(tmp_path, how):
    from upmix.errors import UpmixError
    from upmix.jobs.separate import separate_file

    out_dir = tmp_path / "stems"
    out_dir.mkdir()
    stem_file = out_dir / f"{STEM}.wav"
    if how == "hard link":
        src = tone(tmp_path / "in.wav")
        os.link(src, stem_file)
    elif how == "input is a link":  # writing the stem would change what the input link points at
        tone(stem_file)
        src = tmp_path / "in.wav"
        src.symlink_to(stem_file)
    else:
        src = tone(tmp_path / "in.wav")
        stem_file.symlink_to(src)
    before = src.read_bytes()
    with pytest.raises(UpmixError, match="would overwrite the input") as e:
        separate_file(src, out_dir, model="spatial", device="cpu")
    assert e.value.path == str(stem_file)
    assert src.read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{STEM}.wav"]


def test_run_never_writes_its_report_over_the_scene(tmp_path):
    src = tone(tmp_path / "in.wav")
    scene = tmp_path / "out.json"  # a scene in JSON, named as the report of out.wav would be
    scene.write_text('{"objects": [{"stem": "a", "position": {"azimuth": 30, "distance": 2}}]}\n')
    before = scene.read_bytes()
    proc = run_cli("run", src, "-o", tmp_path / "out.wav", "--scene", scene, "--format", "stereo")
    assert_clean_failure(proc, "out.json", "would overwrite the scene file")
    assert scene.read_bytes() == before
    assert not (tmp_path / "out.wav").exists()


def test_render_never_writes_its_report_over_the_walk(tmp_path):
    stems = tmp_path / "stems"
    stems.mkdir()
    tone(stems / "a.wav", channels=1)
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 30, distance: 2}}\n")
    walk = tmp_path / "out.json"
    walk.write_text('{"path": [{"time": 0, "position": [0, 0, 0]}, {"time": 1, "position": [0, 1, 0]}]}\n')
    before = walk.read_bytes()
    proc = run_cli("render", scene, "--stems", stems, "--walk", walk, "-o", tmp_path / "out.wav", "-f", "stereo")
    assert_clean_failure(proc, "out.json", "would overwrite the walk file")
    assert walk.read_bytes() == before
    assert not (tmp_path / "out.wav").exists()


def test_binauralize_refuses_a_hard_link_to_its_input(tmp_path):
    src = tmp_path / "in.wav"
    write(src, np.full((6, 4800), 0.1), 48000, "PCM_24")
    link = tmp_path / "link.wav"
    os.link(src, link)
    proc = run_cli("binauralize", src, "-o", link, "--layout", "5.1")
    assert_clean_failure(proc, "link.wav", "would overwrite the input")
    assert not (tmp_path / "link.json").exists()


def test_refuse_overwriting_compares_resolved_paths(tmp_path, monkeypatch):
    from upmix.errors import UpmixError
    from upmix.files import refuse_overwriting

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(UpmixError, match=r"would overwrite the walk file \(sub/../w.json\)") as e:
        refuse_overwriting([tmp_path / "w.wav", tmp_path / "w.json"], {"input": None, "walk file": "sub/../w.json"})
    assert e.value.path == str(tmp_path / "w.json")
    refuse_overwriting([tmp_path / "w.wav"], {"input": "x.wav", "weights": None})


# -- 16. separate reports the stems as written -----------------------------------------------------

def recomputed_snr_db(src, out_dir):
    """How the written stems add back up to the input (the spatial separator's fold-down), in dB."""
    from upmix.separation import get_separator

    sep = get_separator("spatial", device="cpu")
    x = sf.read(src, dtype="float64", always_2d=True)[0].T
    stems = {s.name: sf.read(out_dir / f"{s.name}.wav", dtype="float64", always_2d=True)[0].T for s in sep.specs()}
    return 10 * np.log10(np.sum(x ** 2) / np.sum((sep.mix(stems) - x) ** 2))


def test_separate_reports_clipped_stems_as_written(tmp_path):
    src = tone(tmp_path / "loud.wav", seconds=0.3, peak=100.0, subtype="FLOAT")
    proc = run_cli("separate", src, "-o", tmp_path / "s24", "--model", "spatial")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "s24" / "separation.json").read_text())
    assert report["clipped_samples"] > 0
    assert report["mix_snr_db"] == pytest.approx(recomputed_snr_db(src, tmp_path / "s24"), abs=0.1)
    assert report["mix_snr_db"] < 20
    assert len(report["warnings"]) == 1 and "write float samples" in report["warnings"][0]
    warning = [line for line in proc.stderr.splitlines() if line.startswith("upmix: warning: ")]
    assert len(warning) == 1 and f"{report['clipped_samples']} samples" in warning[0]
    assert f"{report['mix_snr_db']} dB SNR" in proc.stdout

    from upmix.jobs.separate import separate_file

    report = separate_file(src, tmp_path / "float", model="spatial", device="cpu", bits="float")
    assert report["warnings"] == [] and report["clipped_samples"] == 0
    assert report["mix_snr_db"] > 60
    assert report["mix_snr_db"] == pytest.approx(recomputed_snr_db(src, tmp_path / "float"), abs=0.1)
