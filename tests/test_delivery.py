"""Loudness delivery: true-peak meter, look-ahead limiter, normalisation, dialogue gating, film mode."""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import run_cli
from upmix.dsp import LoudnessMeter, TruePeakLimiter, TruePeakMeter
from upmix.io import write
from upmix.jobs.options import RunOptions
from upmix.jobs.upmix import upmix_file
from upmix.master import Delivery, dialogue_gate

RATE = 48000


def _true_peak(x: np.ndarray) -> float:
    meter = TruePeakMeter()
    meter.process(x)
    return meter.dbtp


def test_true_peak_finds_the_peak_between_samples():
    n = np.arange(RATE)
    # a quarter-rate sine sampled 45 degrees off its crests: every sample at 0.707, the wave at 1.0
    x = np.sin(np.pi / 2 * n + np.pi / 4)[None].astype(np.float32)
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert _true_peak(x) == pytest.approx(0.0, abs=0.2)
    tone = 0.5 * np.sin(2 * np.pi * 997 * n / RATE)[None]
    assert _true_peak(tone) == pytest.approx(20 * np.log10(0.5), abs=0.1)


def test_true_peak_streams(rng):
    x = rng.standard_normal((3, 10000)).astype(np.float32)
    meter = TruePeakMeter()
    for start in range(0, 10000, 777):
        meter.process(x[:, start:start + 777])
    assert meter.dbtp == _true_peak(x)
    assert TruePeakMeter().dbtp is None


def _limit(x: np.ndarray, ceiling: float, block: int) -> tuple[np.ndarray, TruePeakLimiter]:
    limiter = TruePeakLimiter(RATE, ceiling)
    out = [limiter.process(x[:, s:s + block]) for s in range(0, x.shape[1], block)]
    return np.concatenate(out + [limiter.flush()], axis=1), limiter


def test_limiter_holds_the_ceiling_without_steps(rng):
    x = (0.3 * rng.standard_normal((4, 3 * RATE))).astype(np.float32)
    x[:, RATE:RATE + 100] *= 6  # a burst 15 dB over the rest
    y, limiter = _limit(x, -1.0, 4096)
    assert y.shape == x.shape
    assert _true_peak(y) <= -1.0 + 0.02
    assert limiter.reduction_db < -10
    # the gain is smooth: y / x changes by small steps only
    gain = np.abs(y).sum(axis=0) / np.maximum(np.abs(x).sum(axis=0), 1e-9)
    assert np.abs(np.diff(gain)).max() < 0.01
    # far from the burst and the loud peaks the signal passes untouched
    quiet, _ = _limit(0.05 * x[:, :RATE // 2], -1.0, 1000)
    np.testing.assert_array_equal(quiet, 0.05 * x[:, :RATE // 2])


def test_limiter_output_does_not_depend_on_block_size(rng):
    x = (0.8 * rng.standard_normal((2, RATE))).astype(np.float32)
    a, _ = _limit(x, -2.0, 512)
    b, _ = _limit(x, -2.0, 30000)
    np.testing.assert_allclose(a, b, atol=1e-6)
    short, _ = _limit(x[:, :100], -2.0, 64)  # shorter than the look-ahead
    assert short.shape == (2, 100)


def test_delivery_validates_targets():
    from upmix.errors import UpmixError

    with pytest.raises(UpmixError, match="^loudness must"):
        Delivery(loudness=5.0)
    with pytest.raises(UpmixError, match="^true_peak must"):
        Delivery(true_peak=3.0)
    assert not Delivery().active


def _programme(rng, seconds: float = 8.0, rate: int = 44100) -> np.ndarray:
    """Stereo: centre-panned 'speech' bursts, a wide stereo pad, decorrelated low rumble."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    speech = rng.standard_normal(n) * (np.sin(2 * np.pi * 3 * t) > 0) * 0.2
    pad = 0.1 * np.sin(2 * np.pi * 330 * t)
    rumble = 0.1 * np.stack([np.convolve(rng.standard_normal(n), np.ones(200) / 20, "same") for _ in range(2)])
    x = np.stack([speech + pad, speech - 0.3 * pad]) + rumble
    return (x / np.abs(x).max() * 0.9).astype(np.float32)


@pytest.mark.parametrize("loudness,ceiling", [(-23.0, -1.0), (-24.0, -2.0), (-14.0, -1.0)])
def test_run_delivers_loudness_and_true_peak(tmp_path, rng, loudness, ceiling):
    src = tmp_path / "in.wav"
    write(src, _programme(rng), 44100)
    out = tmp_path / "out.wav"
    report = upmix_file(src, out, RunOptions(format="5.1", loudness=loudness, true_peak=ceiling))
    d = report["delivery"]
    assert d["measured_as"] == "integrated"
    assert d["before"]["integrated_lufs"] is not None and d["before"]["true_peak_dbtp"] is not None
    assert d["after"]["true_peak_dbtp"] <= ceiling + 0.05
    # the limiter may take a little off a loud target; otherwise the gain lands on it
    assert abs(d["after"]["integrated_lufs"] - loudness) <= (0.1 if d["limiter_max_reduction_db"] > -0.5 else 1.0)
    assert d["gain_db"] == pytest.approx(loudness - d["before"]["integrated_lufs"], abs=0.02)
    assert report["integrated_lufs"] == d["after"]["integrated_lufs"]
    assert report["true_peak_dbtp"] == d["after"]["true_peak_dbtp"]
    assert sf.info(out).channels == 6 and sf.info(out).subtype == "PCM_24"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no intermediate left


def test_ambix_input_is_delivered_too(tmp_path, rng):
    from upmix.geometry import cartesian
    from upmix.render.ambisonics import encode

    src = tmp_path / "scene.wav"
    x = rng.standard_normal(2 * RATE) * 0.2
    write(src, (encode(1, cartesian(30, 0)[None])[0][:, None] * x).astype(np.float32), RATE, "FLOAT", 0)
    report = upmix_file(src, tmp_path / "out.wav", RunOptions(format="5.1", loudness=-23.0, true_peak=-1.0))
    assert report["input"]["format"] == "ambix1"
    assert report["delivery"]["after"]["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert report["delivery"]["after"]["true_peak_dbtp"] <= -0.95


def test_loudness_without_limiter_keeps_the_shape(tmp_path, rng):
    src = tmp_path / "in.wav"
    write(src, 0.1 * _programme(rng), 44100)
    plain = upmix_file(src, tmp_path / "plain.wav", RunOptions(format="5.1"))
    loud = upmix_file(src, tmp_path / "loud.wav", RunOptions(format="5.1", loudness=-23.0))
    a, _ = sf.read(tmp_path / "plain.wav", dtype="float64")
    b, _ = sf.read(tmp_path / "loud.wav", dtype="float64")
    gain = 10 ** (loud["delivery"]["gain_db"] / 20)
    np.testing.assert_allclose(b, a * gain, rtol=6e-4, atol=3 * 2.0 ** -23 * max(gain, 1))  # gain_db is rounded
    assert plain["integrated_lufs"] + loud["delivery"]["gain_db"] == pytest.approx(-23.0, abs=0.05)
    assert loud["delivery"]["limiter_max_reduction_db"] is None


def test_dialogue_gate_measures_only_where_dialogue_is(rng):
    n = 10 * RATE
    dialogue = np.zeros((1, n), np.float32)
    dialogue[0, :n // 2] = 0.1 * rng.standard_normal(n // 2)
    effects = np.zeros((2, n), np.float32)
    effects[:, n // 2:] = 0.5 * rng.standard_normal((2, n // 2))  # loud effects without dialogue
    programme = effects + dialogue
    whole, words = LoudnessMeter(RATE), LoudnessMeter(RATE, [1.0])
    whole.process(programme)
    words.process(dialogue)
    gate = dialogue_gate(whole, words)
    assert 0.45 < gate.mean() < 0.5
    alone = LoudnessMeter(RATE)
    alone.process(programme[:, :n // 2])
    assert whole.integrated(gate) == pytest.approx(alone.integrated(), abs=0.1)
    assert whole.integrated() > whole.integrated(gate) + 5  # the effects would have dominated


def _energy(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float64) ** 2).sum(axis=0)


def test_film_preset_places_dialogue_music_effects_and_lfe(tmp_path, rng):
    rate = 44100
    n = 6 * rate
    t = np.arange(n) / rate
    dialogue = 0.3 * rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0)
    dialogue += 0.2 * np.sin(2 * np.pi * 60 * t)  # a deep voice: bass that must not reach the LFE
    music = 0.2 * np.sin(2 * np.pi * 523 * t)  # hard left
    effects = np.convolve(rng.standard_normal(n), np.ones(40) / 40, "same")
    effects_r = np.convolve(rng.standard_normal(n), np.ones(40) / 40, "same")
    x = np.stack([dialogue + music + 0.5 * effects, dialogue + 0.5 * effects_r]).astype(np.float32)
    src = tmp_path / "reel.wav"
    write(src, x, rate)
    out = tmp_path / "reel_7.1.4.wav"
    report = upmix_file(src, out, RunOptions(format="7.1.4", preset="film", loudness=-24.0, true_peak=-2.0))
    assert report["settings"]["preset"] == "film" and report["sample_rate"] == 48000
    assert report["dialogue_stem"] == "direct.M+000"
    assert report["delivery"]["measured_as"] == "dialogue-gated"
    y, r = sf.read(out, dtype="float32", always_2d=True)
    assert r == 48000 and y.shape[1] == 12
    e = _energy(y)
    labels = [c["label"] for c in report["channels"]]
    ch = {lab: e[i] for i, lab in enumerate(labels)}
    front = ch["FL"] + ch["FR"]
    assert ch["FC"] > 0.5 * front  # the dialogue is in the centre
    assert ch["SL"] > 0.1 * ch["FL"]  # the hard-left music spreads to the wide (side) speaker
    around = ch["SL"] + ch["SR"] + ch["BL"] + ch["BR"] + ch["TFL"] + ch["TFR"] + ch["TBL"] + ch["TBR"]
    assert around > front  # effects around, not in front
    # the LFE carries the effects' bass; the dialogue's 60 Hz stands out far less than when all
    # bass feeds it (what little remains is the share of that bin the separator calls ambience)
    def hum_ratio(path, labels):
        y, rate = sf.read(path, dtype="float64", always_2d=True)
        spectrum = np.abs(np.fft.rfft(y[:, labels.index("LFE")]))
        freqs = np.fft.rfftfreq(len(y), 1 / rate)
        return spectrum[np.abs(freqs - 60) < 1].max() / np.median(spectrum[(freqs > 40) & (freqs < 80)])

    assert ch["LFE"] > 0
    music = upmix_file(src, tmp_path / "music.wav", RunOptions(format="7.1.4", lfe=True))
    film_hum = hum_ratio(out, labels)
    music_hum = hum_ratio(tmp_path / "music.wav", [c["label"] for c in music["channels"]])
    print(f"60 Hz over its neighbours in the LFE: film {film_hum:.1f}, all bass {music_hum:.1f}")
    assert film_hum < music_hum / 4


def test_cli_loudness_and_preset(tmp_path, rng):
    out = tmp_path / "film.wav"
    src = tmp_path / "stereo.wav"
    write(src, _programme(rng, 3.0), 44100)
    r = run_cli("run", src, "-o", out, "--preset", "film", "-f", "5.1", "--loudness", "-23", "--true-peak",
                "-1", "-q")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["delivery"]["after"]["true_peak_dbtp"] <= -0.95
    assert report["settings"]["width_deg"] == 60.0
    info = run_cli("info", out, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["true_peak_dbtp"] == report["delivery"]["after"]["true_peak_dbtp"]
    r = run_cli("run", src, "-o", tmp_path / "x.wav", "--preset", "cinema")
    assert r.returncode == 2 and "unknown preset 'cinema'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("run", src, "-o", tmp_path / "x.wav", "--loudness", "12")
    assert r.returncode == 2 and "--loudness" in r.stderr
    assert not (tmp_path / "x.wav").exists()
