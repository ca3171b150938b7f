"""`upmix render`: direct-path rendering of scene objects to speaker layouts."""

import json
import subprocess
import textwrap

import numpy as np
import pytest
import soundfile as sf
from test_audio import mask_from_bytes

from conftest import ROOT, require_ffmpeg
from upmix.geometry import SPEED_OF_SOUND
from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.layouts import get_layout
from upmix.render.renderer import LFE_GAIN, SceneRenderer, file_sources
from upmix.render.targets import get_target
from upmix.scene import load_scene

RATE = 48000


@pytest.fixture
def stems(tmp_path, rng):
    d = tmp_path / "stems"
    d.mkdir()
    write(d / "noise.wav", rng.standard_normal((1, RATE)) * 0.1, RATE, "FLOAT")
    t = np.arange(RATE) / RATE
    write(d / "low.wav", (0.3 * np.sin(2 * np.pi * 60 * t))[None], RATE, "FLOAT")
    write(d / "high.wav", (0.3 * np.sin(2 * np.pi * 2000 * t))[None], RATE, "FLOAT")
    left_only = np.stack([rng.standard_normal(RATE) * 0.1, np.zeros(RATE)])
    write(d / "stereo_left.wav", left_only, RATE, "FLOAT")
    write(d / "noise44.wav", rng.standard_normal((1, 44100)) * 0.1, 44100, "FLOAT")
    return d


def scene_file(tmp_path, objects, extra=""):
    path = tmp_path / "scene.yaml"
    path.write_text("objects:\n" + textwrap.indent(textwrap.dedent(objects).strip(), "  ") + "\n" + extra)
    return path


def render(tmp_path, stems, objects, fmt, extra="", **kw):
    out = tmp_path / "out.wav"
    report = render_scene(scene_file(tmp_path, objects, extra), out, stems_dir=stems, format=fmt,
                          bits=kw.pop("bits", "float"), **kw)
    y, rate = sf.read(str(out), dtype="float64", always_2d=True)
    return y.T, report


def energy_share(y):
    e = np.sum(y ** 2, axis=1)
    return e / e.sum()


def test_azimuth_110_on_5_1_is_all_left_surround(tmp_path, stems):
    y, report = render(tmp_path, stems, "- {stem: noise, position: {azimuth: 110, distance: 1}}", "0+5+0")
    share = energy_share(y)
    assert report["channels"][4]["name"] == "M+110"
    assert share[4] > 1 - 1e-9


def test_45_30_on_4_7_0_is_all_u045(tmp_path, stems):
    y, report = render(tmp_path, stems,
                       "- {stem: noise, position: {azimuth: 45, elevation: 30, distance: 1}}", "4+7+0")
    share = energy_share(y)
    idx = get_layout("4+7+0").channel_names.index("U+045")
    assert share[idx] > 1 - 1e-9


@pytest.mark.parametrize("fmt,mask,ffmpeg_names", [
    ("7.1.4", 0x2D63F, ("7.1.4", "FL+FR+FC+LFE+BL+BR+SL+SR+TFL+TFR+TBL+TBR")),
    ("5.1", 0x60F, ("5.1(side)", "FL+FR+FC+LFE+SL+SR")),
])
def test_file_carries_its_mask_and_ffprobe_agrees(tmp_path, stems, fmt, mask, ffmpeg_names):
    out = tmp_path / "o.wav"
    render_scene(scene_file(tmp_path, "- {stem: noise, position: {azimuth: 20, distance: 2}}"), out,
                 stems_dir=stems, format=fmt)
    assert mask_from_bytes(out) == mask
    require_ffmpeg()
    layout = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=channel_layout", "-of",
                             "default=nw=1:nk=1", str(out)], capture_output=True, text=True).stdout
    assert any(name in layout for name in ffmpeg_names), layout


def test_distance_gain_and_delay(tmp_path, stems):
    """3.43 m away: 480 samples late and 1/r quieter than at the 1 m reference."""
    y, report = render(tmp_path, stems, "- {stem: noise, position: [0, 3.43, 0]}", "0+5+0")
    x, _ = read(stems / "noise.wav")
    delay = round(3.43 / SPEED_OF_SOUND * RATE)
    assert delay == 480 and y.shape[1] == RATE + delay
    centre = y[2]
    assert np.all(centre[:delay] == 0)
    np.testing.assert_allclose(centre[delay:], x[0] / 3.43, atol=1e-6)
    assert report["objects"][0]["delay_samples"] == 480


def test_near_field_clamp_and_widening(tmp_path, stems):
    y, report = render(tmp_path, stems, "- {stem: noise, position: {azimuth: 0, distance: 0.1}}", "0+5+0")
    assert np.isclose(np.sqrt(np.sum(y ** 2)), np.sqrt(np.sum(read(stems / "noise.wav")[0] ** 2)) / 0.5,
                      rtol=1e-4)
    assert report["objects"][0]["width_deg"] == pytest.approx(360 * 0.8)
    assert np.sum(energy_share(y) > 0.05) >= 4  # enveloping, not a point in the centre


def test_stereo_source_keeps_its_image(tmp_path, stems):
    y, _ = render(tmp_path, stems, "- {stem: stereo_left, position: {azimuth: 0, distance: 1}, width: 60}",
                  "0+5+0")
    assert energy_share(y)[0] > 1 - 1e-9  # the left channel lands on M+030 alone
    y, _ = render(tmp_path, stems, "- {stem: stereo_left, position: {azimuth: 0, distance: 1}}", "0+5+0")
    assert energy_share(y)[2] > 1 - 1e-9  # width 0: the mean of both, in the centre


def test_diffuse_objects_are_decorrelated(tmp_path, stems):
    y, _ = render(tmp_path, stems, "- {stem: noise, position: {azimuth: 0, distance: 1}, diffuse: 1}", "4+7+0")
    main = get_layout("4+7+0").main_indices
    share = energy_share(y[main])
    np.testing.assert_allclose(share, 1 / len(main), rtol=0.1)
    c = np.corrcoef(y[main])
    assert np.max(np.abs(c[~np.eye(len(main), dtype=bool)])) < 0.05
    assert np.all(y[3] == 0)  # nothing in the LFE


def test_lfe_only_with_bass_management(tmp_path, stems):
    objects = "- {stem: low, position: {azimuth: 0, distance: 1}}\n- {stem: high, position: {azimuth: 0, distance: 1}}"
    y, report = render(tmp_path, stems, objects, "5.1")
    assert np.all(y[3] == 0) and report["settings"]["lfe_from_bass"] is False
    y, report = render(tmp_path, stems, objects, "5.1", lfe=True)
    lfe = y[3, RATE // 4:RATE]
    t = np.arange(len(lfe)) / RATE

    def amplitude(f):
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
        return np.hypot(*np.linalg.lstsq(basis, lfe, rcond=None)[0])

    # 60 Hz passes the 120 Hz Linkwitz-Riley low-pass at -0.53 dB (1 / (1 + 0.5^4)), 10 dB down
    assert amplitude(60) == pytest.approx(0.3 * LFE_GAIN / 1.0625, rel=0.01)
    assert amplitude(2000) < 1e-4 * amplitude(60)


def test_block_size_does_not_change_the_result(tmp_path, stems):
    path = scene_file(tmp_path, """
        - {stem: noise, position: [1, 2, 0], width: 30, diffuse: 0.4}
        - {stem: noise44, position: [-2, 1, 1]}
    """)
    scene = load_scene(path)
    target = get_target("7.1.4")
    a = np.concatenate(list(SceneRenderer(scene, target, RATE, file_sources(scene, stems, RATE),
                                          lfe=True).blocks()), axis=1)
    b = np.concatenate(list(SceneRenderer(scene, target, RATE, file_sources(scene, stems, RATE, block=1000),
                                          lfe=True, block=1000).blocks()), axis=1)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_report_lists_channels_and_levels(tmp_path, stems):
    _, report = render(tmp_path, stems, "- {stem: noise44, position: {azimuth: -30, distance: 1}}", "7.1.4",
                       bits="24")
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved == report
    assert [c["label"] for c in report["channels"]] == ["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR",
                                                        "TFL", "TFR", "TBL", "TBR"]
    assert report["channels"][1]["peak_dbfs"] > -20 and report["channels"][0]["peak_dbfs"] is None
    assert report["sample_rate"] == RATE and report["frames"] == RATE + round(RATE / SPEED_OF_SOUND)
    assert -30 < report["integrated_lufs"] < -10


def test_example_quartet_renders(tmp_path):
    out = tmp_path / "q.wav"
    report = render_scene(ROOT / "layouts/scenes/string_quartet.yaml", out,
                          stems_dir=ROOT / "examples/string_quartet/stems")
    assert report["format"] == "4+7+0" and report["clipped_samples"] == 0
    assert report["room"]["rt60_s_by_band"]["1000"] == pytest.approx(1.5)
    y, _ = read(out)
    share = energy_share(y.astype(float))
    names = get_layout("4+7+0").channel_names
    # players sit in front, raised on the stage; the hall answers from everywhere
    front = [names.index(n) for n in ("M+030", "M-030", "M+000", "U+045", "U-045")]
    around = [names.index(n) for n in ("M+090", "M-090", "M+135", "M-135", "U+135", "U-135")]
    assert share[front].sum() > 0.5 and all(share[i] > 0.02 for i in around)


def test_gain_mixer_voice_by_voice_equals_the_matrix_product(rng):
    """A matrix with one channel per voice (a stage of stems) is applied voice by voice, with the
    matrix product's result; a full matrix still goes through the product."""
    from upmix.render.targets import GainMixer

    x = rng.standard_normal((4, 500)).astype(np.float32)
    sparse = np.zeros((5, 4), np.float32)
    sparse[[0, 2, 2, 4], [0, 1, 2, 3]] = [1.0, 0.5, 1.0, 2.0]
    full = rng.standard_normal((5, 4)).astype(np.float32)
    for gains in (sparse, full):
        np.testing.assert_allclose(GainMixer(gains).process(x), gains @ x, atol=1e-5)
