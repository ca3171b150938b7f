"""The separation training data: FluidSynth renders the notes, stems add up to the mix whatever the
augmentation, works and SoundFonts split cleanly, and training runs, scores and resumes."""

import json
from pathlib import Path

import numpy as np
import pytest

from banks import require_fluidsynth
from training.data import (
    FAMILIES,
    PROGRAMS,
    SOUNDFONTS,
    Augment,
    ExcerptMaker,
    PartSynth,
    Work,
    _formant,
    _parse,
    _peak,
    _vibrato,
    find_soundfonts,
    load_notes,
    save_notes,
    scored_stems,
    split_of,
)
from upmix.errors import UpmixError

RATE = 22050


@pytest.fixture
def fonts():
    require_fluidsynth()
    return find_soundfonts("test")


def chorale_like(work_id="test/one", parts=4, beats=64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(parts):
        onsets = np.arange(0, beats, 1.0)
        pitches = 72 - 7 * k + rng.integers(-3, 4, len(onsets))
        out.append(np.stack([onsets, np.full(len(onsets), 0.9), pitches], axis=1).astype(np.float32))
    return Work(work_id, tuple(out))


def excerpts_of_one_set_add_up(use, name):
    """Excerpts played by the sound set `name` alone (the one set of the `use` of `SOUNDFONTS`)
    add up to their mix and name the set."""
    assert find_soundfonts(use) == [Path(name)]
    maker = ExcerptMaker([chorale_like()], [Path(name)], seconds=2.0, seed=3)
    for _ in range(3):
        mix, stems, desc = maker.make()
        assert stems.shape == (len(FAMILIES), 2, 2 * RATE)
        np.testing.assert_allclose(stems.sum(axis=0), mix, atol=1e-5)
        assert {p["soundfont"] for p in desc["parts"]} == {name}


def test_a_note_sounds_at_its_pitch(fonts):
    synth = PartSynth(fonts[0])
    x = synth.play(np.array([0.1]), np.array([0.5]), np.array([69]), np.array([100]), program=40, length=RATE)
    spec = np.abs(np.fft.rfft(x[int(0.15 * RATE):int(0.55 * RATE)] * np.hanning(int(0.4 * RATE))))
    f = np.fft.rfftfreq(int(0.4 * RATE), 1 / RATE)
    assert abs(f[np.argmax(spec)] - 440) < 5
    assert np.abs(x[:int(0.09 * RATE)]).max() < 1e-4  # nothing before the note (FluidSynth dithers)
    assert np.sqrt((x[-RATE // 10:] ** 2).mean()) < 0.01 * np.sqrt((x[int(0.2 * RATE):int(0.5 * RATE)] ** 2).mean())


def test_excerpts_add_up_whatever_the_augmentation(fonts):
    every = Augment(formant=4.0, vibrato=1.0, peak_db=6.0, font_per_part=1.0, reverb=1.0, mono=1.0, band_limit=1.0,
                    wow=1.0, hiss=1.0, hum=1.0, crackle=1.0)
    for augment in (Augment(), every, Augment.none()):
        maker = ExcerptMaker([chorale_like()], fonts, seconds=2.0, augment=augment, seed=3)
        fonts_used = []
        for _ in range(3):
            mix, stems, desc = maker.make()
            assert mix.shape == (2, 2 * RATE) and stems.shape == (len(FAMILIES), 2, 2 * RATE)
            np.testing.assert_allclose(stems.sum(axis=0), mix, atol=1e-5)
            assert 0.2 < np.abs(mix).max() <= 0.9 + 1e-6
            assert {p["family"] for p in desc["parts"]} <= set(FAMILIES)
            for part in desc["parts"]:
                assert part["program"] in [p for p, _, _ in PROGRAMS[part["family"]]]
                assert part["soundfont"] in SOUNDFONTS["test"]
            fonts_used.append({p["soundfont"] for p in desc["parts"]})
        if augment is every:  # mono fold-down: both channels equal; a SoundFont per part
            np.testing.assert_allclose(mix[0], mix[1], atol=1e-6)
            assert max(len(f) for f in fonts_used) == 2
        else:  # one SoundFont per excerpt
            assert all(len(f) == 1 for f in fonts_used)


def test_the_peaking_filter_has_its_gain_at_its_centre_and_none_far_from_it():
    import scipy.signal

    impulse = np.zeros(RATE, dtype=np.float32)
    impulse[0] = 1
    for db in (6.0, -6.0):
        _, h = scipy.signal.freqz(_peak(impulse, 1000.0, db, 1.0, RATE), worN=[50.0, 1000.0, 10000.0], fs=RATE)
        np.testing.assert_allclose(20 * np.log10(np.abs(h)), [0, db, 0], atol=0.3)


def test_vibrato_swings_the_pitch_by_its_depth_at_its_rate():
    import scipy.signal

    t = np.arange(2 * RATE) / RATE
    y = _vibrato(np.sin(2 * np.pi * 440 * t).astype(np.float32), 20.0, 5.0, 0.3, RATE)
    f = np.diff(np.unwrap(np.angle(scipy.signal.hilbert(y)))) * RATE / (2 * np.pi)
    cents = 1200 * np.log2(f[RATE // 4:-RATE // 4] / 440)
    assert np.percentile(cents, 99) == pytest.approx(20, abs=3)
    assert np.percentile(cents, 1) == pytest.approx(-20, abs=3)
    spectrum = np.abs(np.fft.rfft(cents - cents.mean()))
    assert np.fft.rfftfreq(len(cents), 1 / RATE)[np.argmax(spectrum)] == pytest.approx(5.0, abs=0.7)


def test_the_formant_shift_moves_the_envelope_and_keeps_the_notes(fonts):
    """A violin's A3 and E4 with the envelope 4 semitones down or up: the harmonics stay at
    multiples of 220 Hz, the spectral centroid follows the shift, the level stays near."""
    x = PartSynth(fonts[0]).play(np.array([0.1, 1.0]), np.array([0.8, 0.8]), np.array([57, 64]),
                                 np.array([100, 100]), program=40, length=2 * RATE)
    window = slice(int(0.2 * RATE), int(0.8 * RATE))
    f = np.fft.rfftfreq(window.stop - window.start, 1 / RATE)

    def spectrum(y):
        return np.abs(np.fft.rfft(y[window] * np.hanning(window.stop - window.start))) ** 2

    centroids = {}
    for k in (-4.0, 0.0, 4.0):
        y = _formant(x, k, 64.0, RATE)
        assert y.shape == x.shape and y.dtype == np.float32
        assert 0.7 < np.sqrt((y ** 2).mean() / (x ** 2).mean()) < 1.4  # parts are brought to one RMS later
        p = spectrum(y)
        strongest = f[np.argsort(p)[-3:]]
        np.testing.assert_allclose(strongest / 220, np.round(strongest / 220), atol=0.02)
        centroids[k] = (f * p).sum() / p.sum()
    assert centroids[-4.0] < 0.9 * centroids[0.0] and centroids[4.0] > 1.1 * centroids[0.0]


def test_the_excerpts_of_a_seed_do_not_change(fonts):
    """Fixed validation and test sets are drawn by seed: an augmentation added later must not draw
    random numbers when it is off, or every recorded score stops being comparable."""
    expected = {
        "default": [[("other", 46), ("other", 1), ("brass", 61), ("other", 13)],
                    [("woodwinds", 64), ("other", 52), ("strings", 48), ("strings", 41)]],
        "none": [[("strings", 48), ("strings", 44), ("woodwinds", 74), ("woodwinds", 66)],
                 [("strings", 43), ("strings", 43), ("woodwinds", 73), ("other", 52)]],
    }
    for name, augment in (("default", Augment()), ("none", Augment.none())):
        maker = ExcerptMaker([chorale_like(parts=4, beats=200)], fonts, 2.0, augment, seed=7)
        got = [[(p["family"], p["program"]) for p in maker.make()[2]["parts"]] for _ in range(2)]
        assert got == expected[name], name


def test_every_part_is_equally_loud(fonts):
    """Plucked, struck and sustained instruments enter the mix at the same RMS (without the gain
    augmentation), so the model cannot learn that a family is quiet by nature."""
    maker = ExcerptMaker([chorale_like(parts=4)], fonts, seconds=2.0, augment=Augment.none(), seed=1)
    levels = []
    for _ in range(8):
        mix, stems, desc = maker.make()
        counts = [sum(p["family"] == f for p in desc["parts"]) for f in FAMILIES]
        levels += [np.sqrt((stems[k] ** 2).mean()) / np.sqrt((mix ** 2).mean())
                   for k in range(len(FAMILIES)) if counts[k] == 1]
        levels_in_mix = np.array(levels[-sum(c == 1 for c in counts):]) if 1 in counts else np.ones(1)
        np.testing.assert_allclose(levels_in_mix, levels_in_mix[0], rtol=1e-3)
    assert len(levels) >= 8


def test_noises_go_to_other(fonts):
    quiet = Augment.none()
    noisy = Augment(transpose=0, gain_db=0.0, tilt_db=0.0, reverb=0.0, mono=0.0, band_limit=0.0, wow=0.0,
                    hiss=1.0, hum=1.0, crackle=1.0)
    a = ExcerptMaker([chorale_like()], fonts[:1], 2.0, quiet, seed=5).make()
    b = ExcerptMaker([chorale_like()], fonts[:1], 2.0, noisy, seed=5).make()
    other = FAMILIES.index("other")
    for k in range(len(FAMILIES)):  # the same parts, up to the excerpt's normalisation
        x, y = a[1][k].ravel().astype(float), b[1][k].ravel().astype(float)
        if k != other and x @ x > 0:
            assert np.linalg.norm(y - (x @ y) / (x @ x) * x) < 1e-4 * np.linalg.norm(y)
    x, y = a[1][other].ravel().astype(float), b[1][other].ravel().astype(float)
    assert np.linalg.norm(y - (x @ y) / max(x @ x, 1e-20) * x) > 1e-3 * np.linalg.norm(y)  # other got the noise


def test_a_family_playing_alone_is_not_scored():
    """The mixture of a solo family is its stem (SI-SDR infinite up to rounding): no improvement
    over it is defined, and -200 dB outliers must not enter the means."""
    rng = np.random.default_rng(0)
    stems = np.zeros((len(FAMILIES), 2, 1000), dtype=np.float32)
    stems[2] = rng.standard_normal((2, 1000))
    assert scored_stems(stems.sum(axis=0), stems) == []
    stems[0] = 1e-5 * rng.standard_normal((2, 1000))  # below -60 dB: not playing, and brass still alone
    assert scored_stems(stems.sum(axis=0), stems) == []
    stems[3] = 0.1 * rng.standard_normal((2, 1000))
    assert scored_stems(stems.sum(axis=0), stems) == [2, 3]


def test_splits_and_soundfonts_are_disjoint():
    ids = [f"bach/bwv{k}.mxl" for k in range(400)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]  # stable
    assert 0.7 < splits.count("train") / 400 < 0.9 and splits.count("test") > 20
    assert not set().union(*(SOUNDFONTS[u] for u in SOUNDFONTS if u != "test")) & set(SOUNDFONTS["test"])
    assert set(SOUNDFONTS["validation"]) < set(SOUNDFONTS["train"])  # training adds a bank validation lacks
    assert not set(SOUNDFONTS["sonivox"]) & set(SOUNDFONTS["validation"])  # a training bank only
    assert set(SOUNDFONTS["train-modelled"]) < set(SOUNDFONTS["train-modelled-sonivox"])
    assert not set(SOUNDFONTS["freepats"]) & set(SOUNDFONTS["validation"])
    assert set(SOUNDFONTS["train-modelled-sonivox"]) < set(SOUNDFONTS["train-modelled-sonivox-freepats"])
    for k in range(400):  # a work in two formats, or an opus's works, never straddle splits
        assert split_of(f"bach/bwv{k}.mxl") == split_of(f"bach/bwv{k}.krn") == split_of(f"bach/bwv{k}.krn#3")


def test_sets_play_as_often_as_their_weights_say():
    from training.config import font_weights
    from training.synthetic import SET_NAME

    sets = [Path(SET_NAME)] * 2  # two instances of the modelled set, told apart by identity
    maker = ExcerptMaker([chorale_like()], sets, 1.0, seed=0, weights=[1.0, 3.0])
    draws = [maker._synth() is maker.synths[1] for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(0.75, abs=0.03)
    even = ExcerptMaker([chorale_like()], sets, 1.0, seed=0)
    assert np.mean([even._synth() is even.synths[1] for _ in range(4000)]) == pytest.approx(0.5, abs=0.03)
    assert font_weights({SET_NAME: 4}, "train-modelled") == {SET_NAME: 4.0}
    assert font_weights(None, "train") is None
    with pytest.raises(UpmixError, match="data.weights: 'modelled-instruments' is not one of the 'train'"):
        font_weights({SET_NAME: 4}, "train")
    with pytest.raises(UpmixError, match="data.weights.FluidR3_GM.sf2: expected a positive number, got 0"):
        font_weights({"FluidR3_GM.sf2": 0}, "train")
    with pytest.raises(UpmixError, match="3 weights for 2 SoundFonts and sets"):
        ExcerptMaker([chorale_like()], sets, 1.0, weights=[1.0, 2.0, 3.0])


def test_corpus_parsing_and_note_files(tmp_path):
    pytest.importorskip("music21")
    from music21 import corpus

    path = next(str(p) for p in corpus.getCorePaths() if str(p).endswith("bach/bwv66.6.mxl"))
    [(work_id, parts)] = _parse(path)
    assert work_id == "bach/bwv66.6.mxl" and len(parts) == 4
    assert [len(p) for p in parts] == [36, 42, 44, 41]  # 37, 42, 45, 41 notes, ties merged
    assert all(np.all(np.diff(p[:, 0]) >= 0) and p[:, 2].min() >= 36 for p in parts)
    save_notes(tmp_path / "n.npz", [Work(work_id, tuple(parts)), chorale_like()])
    works = load_notes(tmp_path / "n.npz")
    assert [w.id for w in works] == [work_id, "test/one"] and works[0].length == pytest.approx(36.0)


def test_training_runs_scores_and_resumes(tmp_path, fonts, capsys):
    import torch

    from training.config import TrainConfig
    from training.train import (
        average_checkpoints,
        calibrate,
        export_weights,
        score_checkpoint,
        scoring_set,
        train,
    )

    save_notes(tmp_path / "n.npz", [chorale_like(f"w{k}", seed=k) for k in range(60)])
    cfg = {"run": str(tmp_path / "run"), "seed": 1,
           "model": {"features": 8, "hidden": 8, "layers": 1, "mask_hidden": 8},
           "data": {"seconds": 1.0, "workers": 0, "notes": str(tmp_path / "n.npz"), "soundfonts": "test"},
           "augment": {"reverb": 0.0}, "train": {"batch": 2, "steps": 2, "lr": 0.001, "keep_every": 2},
           "eval": {"every": 1, "excerpts": 2, "seconds": 1.0, "soundfonts": "test"}}
    best = train(TrainConfig.from_dict(cfg), device="cpu")
    assert np.isfinite(best["si_sdri"])
    log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2]
    cfg["train"]["steps"] = 3
    conf = TrainConfig.from_dict(cfg)
    train(conf, device="cpu")  # resumes at step 2
    log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3]
    score = score_checkpoint(conf, tmp_path / "run/last.pt", "validation", 2, augmented=True, soundfonts="test")
    assert score["step"] == 3 and np.isfinite(score["si_sdri"]) and score["even_split_loss"] > 0
    export_weights(tmp_path / "run/best.pt", tmp_path / "w.safetensors")
    excerpts = scoring_set(conf, "validation", 2, "test")
    calibrated = calibrate(tmp_path / "run/last.pt", excerpts, (1.0, 4.0))
    assert set(calibrated["temperatures"]) == {1.0, 4.0} and calibrated["step"] == 3
    assert calibrated["best"] == max((1.0, 4.0), key=lambda t: calibrated["temperatures"][t]["si_sdri"])
    assert calibrated["temperatures"][1.0]["si_sdri"] == pytest.approx(
        score_checkpoint(conf, tmp_path / "run/last.pt", "validation", 2, False, "test")["si_sdri"])
    assert calibrated["temperatures"][4.0]["si_sdri"] != calibrated["temperatures"][1.0]["si_sdri"]
    export_weights(tmp_path / "run/best.pt", tmp_path / "warm.safetensors", temperature=4.0)
    from upmix.separation.orchestra import read_weights

    assert read_weights(tmp_path / "warm.safetensors")[0].temperature == 4.0
    assert read_weights(tmp_path / "w.safetensors")[0].temperature == 1.0
    assert sorted(p.name for p in (tmp_path / "run").glob("step-*.pt")) == ["step-2.pt"]  # keep_every: 2
    mean = average_checkpoints([tmp_path / "run/step-2.pt", tmp_path / "run/last.pt"], tmp_path / "avg.pt")
    two, three = (torch.load(tmp_path / f"run/{n}.pt", weights_only=True)["model"] for n in ("step-2", "last"))
    for k, v in mean["model"].items():
        torch.testing.assert_close(v, (two[k] + three[k]) / 2)
    assert mean["step"] == 3 and mean["score"] == {"averaged_steps": [2, 3]}
    soup = average_checkpoints([tmp_path / "run/last.pt"] * 2, tmp_path / "soup.pt",
                               start=tmp_path / "run/step-2.pt")  # two forks from step 2 of one step each
    start = torch.load(tmp_path / "run/step-2.pt", weights_only=True)["seconds"]
    assert soup["step"] == 4 and soup["seconds"] == pytest.approx(start + 2 * (mean["seconds"] - start))
    assert not torch.equal(mean["model"]["split.0.weight"], three["split.0.weight"])
    assert np.isfinite(score_checkpoint(conf, tmp_path / "avg.pt", "validation", 2, False, "test")["si_sdri"])
    other = torch.load(tmp_path / "run/last.pt", weights_only=True)
    torch.save({**other, "config": other["config"].replace('"hidden": 8', '"hidden": 16')}, tmp_path / "other.pt")
    with pytest.raises(UpmixError, match="model config differs"):
        average_checkpoints([tmp_path / "run/last.pt", tmp_path / "other.pt"], tmp_path / "bad.pt")
    from training.train import main

    with pytest.raises(SystemExit) as usage:
        main(["--start", str(tmp_path / "run/step-2.pt")])
    assert usage.value.code == 2 and "--start goes with --average" in capsys.readouterr().err
    for args in (["--temperature", "2"], ["--export", str(tmp_path / "x.safetensors"), "--temperature", "0"]):
        with pytest.raises(SystemExit) as usage:
            main(args)
        assert usage.value.code == 2 and "--temperature goes with --export" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(SystemExit) as usage:
        main(["--config", _write_yaml(tmp_path / "c.yaml", {**cfg, "run": str(tmp_path / "r0"),
                                                           "model": {"temperature": 0}})])
    assert usage.value.code == 2 and capsys.readouterr().err == (
        "error: model: temperature must be a positive number, not 0\n")
    assert not (tmp_path / "r0").exists()
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    for checkpoint, message in ((tmp_path / "notes.txt", "not a training checkpoint"),
                                (tmp_path / "absent.pt", "cannot read the checkpoint")):
        for args in (["--export", str(tmp_path / "x.safetensors"), "--checkpoint", str(checkpoint)],
                     ["--calibrate", str(checkpoint), "--excerpts", "1", "--soundfonts", "test"]):
            with pytest.raises(SystemExit) as usage:
                main(["--config", _write_yaml(tmp_path / "c.yaml", cfg), *args])
            err = capsys.readouterr().err
            assert usage.value.code == 2 and err == f"error: {checkpoint}: {message}" + err.split(message)[1]
            assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()
    forked = {**cfg, "run": str(tmp_path / "fork"), "train": {**cfg["train"], "steps": 5}}
    main(["--config", _write_yaml(tmp_path / "fork.yaml", forked), "--init", str(tmp_path / "warm.safetensors")])
    started = torch.load(tmp_path / "fork/last.pt", weights_only=True)
    assert json.loads(started["config"])["temperature"] == 1.0  # a fork of calibrated weights trains at 1
    exported = torch.load(tmp_path / "run/best.pt", weights_only=True)
    assert started["step"] == exported["step"] and "optimiser" not in started
    for k, v in started["model"].items():
        torch.testing.assert_close(v, exported["model"][k], atol=1e-3, rtol=1e-3)  # float16 weights
    train(TrainConfig.from_dict(forked), device="cpu")  # forks from the weights' step
    log = [json.loads(line) for line in (tmp_path / "fork/log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(exported["step"] + 1, 6))
    for bad, message in ((forked, "has a checkpoint already"), ({**forked, "run": str(tmp_path / "f2"),
                         "model": {**cfg["model"], "hidden": 16}}, "not of the config's model")):
        with pytest.raises(SystemExit) as usage:
            main(["--config", _write_yaml(tmp_path / "bad.yaml", bad), "--init", str(tmp_path / "w.safetensors")])
        assert usage.value.code == 2 and message in capsys.readouterr().err
    from upmix.separation.orchestra import OrchestraSeparator

    x = np.random.default_rng(0).standard_normal((2, RATE)).astype(np.float32) * 0.1
    sep = OrchestraSeparator(device="cpu", weights=tmp_path / "warm.safetensors")
    stems = sep.separate(x, RATE)
    assert set(stems) == set(FAMILIES) and sep.config.temperature == 4.0
    np.testing.assert_allclose(sum(stems.values()), x, atol=1e-5)


def _write_yaml(path, cfg):
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return str(path)
