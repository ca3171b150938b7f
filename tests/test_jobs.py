"""The jobs layer: `RunOptions` declared once (the CLI, `batch` and its manifests build the same
value), and one report schema for every job."""

import csv
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from upmix.batch import collect_jobs
from upmix.errors import UpmixError
from upmix.io import BitDepth, write
from upmix.jobs.binauralize import binauralize
from upmix.jobs.options import RunOptions
from upmix.jobs.output import leftovers, report_path
from upmix.jobs.render import render_ambix, render_scene
from upmix.jobs.separate import separate_file
from upmix.jobs.upmix import upmix_file

RATE = 48000
HEAD = ["upmix_version", "command", "input", "output", "format", "sample_rate", "bits", "settings"]
TAIL = ["warnings", "processing_time_s", "realtime_factor"]
FILE_FIELDS = ["channel_mask", "frames", "duration_s", "channels", "integrated_lufs", "true_peak_dbtp",
               "clipped_samples"]


def test_bit_depth_is_an_enum_with_its_subtype():
    assert [b.value for b in BitDepth] == ["16", "24", "float"]
    assert BitDepth.parse("24") is BitDepth.PCM_24 and BitDepth.FLOAT.subtype == "FLOAT"
    assert RunOptions(bits="16").bits is BitDepth.PCM_16
    with pytest.raises(UpmixError, match="^bits must be 16, 24 or float, not '32'$"):
        RunOptions(bits="32")


def test_options_are_frozen_and_validated_when_built():
    options = RunOptions(preset="film", width=45.0)
    assert (options.stage.width, options.stage.ambience_front, options.chosen_preset.lfe) == (45.0, 0.0, True)
    with pytest.raises(AttributeError):
        options.width = 10.0  # type: ignore[misc]
    for bad, key in [({"width": 200.0}, "width"), ({"loudness": 3.0}, "loudness"), ({"device": "tpu"}, "device"),
                     ({"preset": "jazz"}, None)]:
        with pytest.raises(UpmixError) as info:
            RunOptions(**bad)
        assert info.value.option == key and "--" not in str(info.value)


def test_the_ambience_folds_back_unless_asked_not_to():
    """Music folds back by default, film does not (its ambience all goes around); a front share of
    the ambience only means something without the fold-back, and asking for one with it is an error."""
    assert RunOptions().stage.fold_back is True and RunOptions(preset="film").stage.fold_back is False
    assert RunOptions(fold_back=False, ambience_front=0.5).stage.ambience_front == 0.5
    assert RunOptions(preset="film", ambience_front=0.3).stage.ambience_front == 0.3
    with pytest.raises(UpmixError, match="^ambience_front needs the ambience's fold-back off") as info:
        RunOptions(ambience_front=0.5)
    assert info.value.option == "ambience_front"
    with pytest.raises(UpmixError, match="^ambience_front needs the ambience's fold-back off"):
        RunOptions(preset="film", fold_back=True, ambience_front=0.3)


def test_manifest_cells_parse_to_every_option_type(tmp_path):
    base = RunOptions(format="5.1", lfe=True)
    got = base.with_strings({"width": "45", "exact_downmix": "yes", "lfe": "off", "sample_rate": "44100",
                             "bits": "float", "scene": "s.yaml", "walk": "", "format": " "}, tmp_path)
    assert got == RunOptions(format="5.1", width=45.0, exact_downmix=True, lfe=False, sample_rate=44100,
                             bits=BitDepth.FLOAT, scene=(tmp_path / "s.yaml").resolve())
    for cells, message in [({"width": "wide"}, "width: 'wide' is not a valid number"),
                           ({"lfe": "maybe"}, "lfe: 'maybe' is not a valid yes or no"),
                           ({"sample_rate": "4.8"}, "sample_rate: '4.8' is not a valid whole number"),
                           ({"bits": "8"}, "bits must be 16, 24 or float"), ({"colour": "red"}, "unknown option")]:
        with pytest.raises(UpmixError, match=message):
            base.with_strings(cells, tmp_path)


@pytest.mark.parametrize("command", ["run", "batch"])
def test_every_option_is_a_flag_of_run_and_batch(command):
    """`upmix run` and `upmix batch` offer every field of RunOptions (the manifest's columns) as a flag."""
    help_text = run_cli(command, "--help").stdout
    for f in fields(RunOptions):
        assert f"--{f.name.replace('_', '-')}" in help_text, f.name


def test_the_cli_and_a_manifest_build_the_same_options(tmp_path, rng):
    """`upmix batch` flags give every job its RunOptions; a manifest row overrides single fields."""
    src = tmp_path / "a.wav"
    write(src, rng.standard_normal((2, 100)) * 0.1, RATE, "PCM_16")
    with (tmp_path / "m.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["input", "output", "width", "bits"], ["a.wav", "b.wav", "50", "16"]])
    defaults = RunOptions(format="5.1", preset="film", bits=BitDepth.FLOAT)
    jobs, rejected = collect_jobs([src, tmp_path / "m.csv"], tmp_path / "out", defaults)
    assert not rejected
    assert jobs[0].options == defaults
    assert jobs[1].options == RunOptions(format="5.1", preset="film", width=50.0, bits=BitDepth.PCM_16)
    assert jobs[0].settings_hash() != jobs[1].settings_hash()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The report of every job on tiny inputs: run, render, walk, binauralize, separate, AmbiX decode."""
    d = tmp_path_factory.mktemp("jobs")
    rng = np.random.default_rng(3)
    write(d / "in.wav", rng.standard_normal((2, RATE // 4)) * 0.1, RATE, "PCM_24")
    write(d / "a.wav", rng.standard_normal((1, RATE // 4)) * 0.1, RATE, "PCM_24")
    write(d / "51.wav", rng.standard_normal((6, RATE // 4)) * 0.1, RATE, "PCM_24", 0x60F)
    write(d / "foa.wav", rng.standard_normal((4, RATE // 4)) * 0.1, RATE, "FLOAT", 0)
    (d / "scene.yaml").write_text("objects:\n  - {stem: a, position: [0, 2, 0]}\n"
                                  "listener:\n  path:\n    - {time: 0, position: [0, 0, 0]}\n"
                                  "    - {time: 0.25, position: [0, 1, 0]}\n")
    return {
        "run": upmix_file(d / "in.wav", d / "run.wav", RunOptions(format="5.1")),
        "render": render_scene(d / "scene.yaml", d / "render.wav", stems_dir=d, format="5.1"),
        "walk": render_scene(d / "scene.yaml", d / "walk.wav", stems_dir=d, format="5.1", require_path=True),
        "binauralize": binauralize(d / "51.wav", d / "bin.wav"),
        "separate": separate_file(d / "in.wav", d / "stems", model="spatial"),
        "ambix": render_ambix(d / "foa.wav", d / "dec.wav", format="5.1"),
    }


@pytest.mark.parametrize("job", ["run", "render", "walk", "binauralize", "separate", "ambix"])
def test_one_report_schema(reports, job):
    report = reports[job]
    keys = list(report)
    assert keys[:len(HEAD)] == HEAD and keys[-len(TAIL):] == TAIL
    assert isinstance(report["input"], dict) and Path(report["input"]["path"]).exists()
    assert isinstance(report["settings"], dict) and report["bits"] == "24" and report["sample_rate"] == RATE
    assert report["realtime_factor"] > 0
    if job != "separate":
        assert set(FILE_FIELDS) <= set(keys)
        assert report["format"] == ("binaural" if job == "binauralize" else "0+5+0")
        assert json.loads(report_path(Path(report["output"])).read_text()) == report
    else:
        assert report["format"] == "stems"
        assert json.loads((Path(report["output"]) / "separation.json").read_text()) == report


def test_leftovers_come_from_the_modules_that_name_the_files(tmp_path):
    """The batch's clean-up finds the temporary names the writers make (`files.temporary_sibling`,
    the FLAC rewrite, `master.intermediate_path`) by asking those modules, not by its own patterns."""
    from upmix.files import REWRITE_SUFFIX, temporary_sibling
    from upmix.master import intermediate_path

    out = tmp_path / "x.wav"
    made = [temporary_sibling(out), temporary_sibling(report_path(out)), intermediate_path(out),
            temporary_sibling(intermediate_path(out))]
    made.append(made[0].with_suffix(REWRITE_SUFFIX))
    made[2].write_text("x")
    made[4].write_text("x")
    assert leftovers(out) == sorted(made)
    assert leftovers(tmp_path / "y.wav") == []

