"""Library errors name a setting by its key (``width``, ``true_peak``), never by a CLI flag; the CLI
prints the flag of the command being run. The output targets share the `Target` protocol."""

import ast
import re

import click
import numpy as np
import pytest
import torch

from conftest import ROOT, run_cli
from test_cli import assert_clean_failure
from upmix.errors import UpmixError
from upmix.files import OutputExists
from upmix.io import write
from upmix.layouts import get_layout
from upmix.master import Delivery
from upmix.render import targets
from upmix.render.targets import AmbisonicsTarget, BinauralTarget, SpeakerTarget, Target
from upmix.scene import SceneObject, object_source
from upmix.stage import StageOptions
from upmix.stft import resolve_device

RATE = 48000

FLAG = re.compile(r"(?<![\w-])--[a-z]")


@pytest.mark.parametrize("make, key, text", [
    (lambda: StageOptions(width=200), "width", "@ must be between 0 and 180 degrees, not 200"),
    (lambda: StageOptions(center=1.5), "center", "@ must be between 0 and 1, not 1.5"),
    (lambda: StageOptions(ambience_front=2), "ambience_front", "@ must be between 0 and 1, not 2"),
    (lambda: Delivery(loudness=5), "loudness", "@ must be between -70 and 0 LUFS, not 5"),
    (lambda: Delivery(true_peak=3), "true_peak", "@ must be between -20 and 0 dBTP, not 3"),
    (lambda: resolve_device("cuda"), "device", "@ cuda was asked for but no CUDA device is available"),
    (lambda: object_source(SceneObject(name="violin", position=(0.0, 1.0, 0.0), stem="violin_1"), None),
     "stems", "object 'violin' plays stem 'violin_1': give the stems folder (@)"),
], ids=["width", "center", "ambience_front", "loudness", "true_peak", "device", "stems"])
def test_library_errors_name_the_key(monkeypatch, make, key, text):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UpmixError) as info:
        make()
    err = info.value
    assert err.option == key and "--" not in str(err)
    assert str(err) == err.message == text.replace("@", key)
    assert err.text("--flag") == text.replace("@", "--flag")


def test_error_text_replaces_only_the_placeholder():
    err = UpmixError("{option} must be 1, not '{0} {x}'", "a {b}.wav", option="width")
    assert str(err) == "a {b}.wav: width must be 1, not '{0} {x}'"
    assert err.text("--width") == "a {b}.wav: --width must be 1, not '{0} {x}'"
    plain = UpmixError("no {option} here")  # no option: the text is taken as it is
    assert str(plain) == plain.text("--x") == "no {option} here" and plain.option is None
    exists = OutputExists("{option} is there", "o.wav", option="output")
    assert (str(exists), exists.text("--output"), exists.path) == ("o.wav: output is there", "o.wav: --output is there",
                                                                 "o.wav")


def test_cli_flag_comes_from_the_running_command():
    from upmix.cli import _flag

    assert _flag("ambience_front") == "--ambience-front"  # no command running: the key with dashes
    command = click.Command("x", params=[click.Option(["-o", "--out-file", "target"]), click.Argument(["source"])])
    with click.Context(command):
        assert _flag("target") == "--out-file"
        assert _flag("source") == "--source"
        assert _flag("true_peak") == "--true-peak"


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "in.wav"
    write(path, np.random.default_rng(7).standard_normal((2, RATE // 10)) * 0.1, RATE, "PCM_16")
    return path


@pytest.mark.parametrize("args, line", [
    (["--width", "200"], "--width must be between 0 and 180 degrees, not 200"),
    (["--ambience-front", "2"], "--ambience-front must be between 0 and 1, not 2"),
    (["--loudness", "5"], "--loudness must be between -70 and 0 LUFS, not 5"),
    (["--device", "cuda"], "--device cuda was asked for but no CUDA device is available"),
], ids=["width", "ambience-front", "loudness", "device"])
def test_cli_names_the_flag(stereo, tmp_path, args, line):
    if args[0] == "--device" and torch.cuda.is_available():
        pytest.skip("a CUDA device is available")
    out = tmp_path / "out.wav"
    proc = run_cli("run", stereo, "-o", out, *args)
    assert_clean_failure(proc)
    assert proc.stderr.strip() == f"upmix: error: {line}"
    assert not out.exists()


def test_cli_names_the_stems_flag(tmp_path):
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {name: violin, stem: violin_1, position: {azimuth: 30}}\n")
    proc = run_cli("render", scene, "-o", tmp_path / "out.wav", "-f", "5.1")
    assert_clean_failure(proc)
    assert proc.stderr.strip() == ("upmix: error: object 'violin' plays stem 'violin_1': give the stems folder "
                                   "(--stems)")


def _flags_in_raises(source: str, name: str) -> list[str]:
    """`--flag` text in the string constants (f-string parts included) of the raise statements."""
    hits = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            hits += [f"{name}:{c.lineno}: {c.value!r}" for c in ast.walk(node.exc)
                     if isinstance(c, ast.Constant) and isinstance(c.value, str) and FLAG.search(c.value)]
    return hits


def test_library_errors_name_no_flags():
    files = [p for p in sorted((ROOT / "upmix").rglob("*.py")) if p.name != "cli.py"]
    hits = [hit for p in files for hit in _flags_in_raises(p.read_text(), str(p.relative_to(ROOT)))]
    assert not hits, "library errors naming CLI flags (name the key: option= and {option}):\n" + "\n".join(hits)


def test_the_scan_sees_flags():
    source = """
def check(x):
    if x > 1:
        raise UpmixError(f"--width must be at most 1, not {x}")
    if x < 0:
        raise UpmixError(f"{{option}} must be at least 0, not {x} (see --help-me)", option="width")
    raise UpmixError("a -- b, x--y, {option}", option="y")
"""
    assert _flags_in_raises(source, "m.py") == ["m.py:4: '--width must be at most 1, not '",
                                                "m.py:6: ' (see --help-me)'"]


TARGETS = {
    SpeakerTarget: lambda: SpeakerTarget(get_layout("5.1")),
    AmbisonicsTarget: lambda: AmbisonicsTarget(2),
    BinauralTarget: lambda: BinauralTarget(),
}


def test_every_target_has_the_protocol():
    concrete = {c for c in vars(targets).values()
                if isinstance(c, type) and c.__name__.endswith("Target") and c is not Target}
    assert concrete == set(TARGETS)
    members = {n for n in vars(Target) if not n.startswith("_")}
    assert members == {"name", "num_channels", "labels", "channel_names", "channel_mask", "lfe_indices",
                       "loudness_weights", "delay_offset", "mixer", "diffuse_directions"}
    for make in TARGETS.values():
        target = make()
        assert isinstance(target, Target)
        assert all(hasattr(target, n) for n in members)
        assert isinstance(target.name, str) and len(target.labels) == len(target.channel_names) == target.num_channels
        assert len(target.loudness_weights) == target.num_channels and isinstance(target.channel_mask, int)
        assert float(target.delay_offset(RATE)) >= 0
        directions = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        mixer = target.mixer(directions, np.zeros(2), np.ones(2), RATE)
        assert mixer.process(np.ones((2, 64), np.float32)).shape == (target.num_channels, 64)
        assert target.diffuse_directions().shape[1] == 3
    assert not isinstance(object(), Target)
