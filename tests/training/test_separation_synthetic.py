"""Modelled instruments: notes at their pitch and time, the traits each family is modelled by, new
instruments for every part, and excerpts that add up and repeat by seed."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_separation_data import chorale_like

from training.data import FAMILIES, PROGRAMS, ExcerptMaker, find_soundfonts
from training.synthetic import KIND_OF_PROGRAM, SET_NAME, FamilySynth, Instrument

RATE = 22050


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Hz, magnitude) of a Hann-windowed stretch."""
    return np.fft.rfftfreq(len(x), 1 / RATE), np.abs(np.fft.rfft(x * np.hanning(len(x))))


def harmonic_levels(x: np.ndarray, f0: float, count: int) -> np.ndarray:
    """Magnitude at each of the first `count` harmonics of `f0` (the largest bin within 3 % of it)."""
    f, mag = spectrum(x)
    return np.array([mag[np.abs(f - k * f0) < 0.03 * k * f0].max() for k in range(1, count + 1)])


def centroid(x: np.ndarray) -> float:
    f, mag = spectrum(x)
    return float((f * mag ** 2).sum() / (mag ** 2).sum())


def steady(synth: FamilySynth, program: int, **changes) -> Instrument:
    """An instrument of `program` without vibrato and pitch scoop (so that harmonics are lines)."""
    return replace(synth.instrument(program), vibrato=0.0, scoop=0.0, **changes)


def test_every_program_has_a_modelled_kind():
    assert {p for options in PROGRAMS.values() for p, _, _ in options} == set(KIND_OF_PROGRAM)


@pytest.mark.parametrize("program", [40, 71, 56, 0, 19])
def test_a_note_sounds_at_its_pitch_from_its_onset_and_stops_after_its_release(program):
    synth = FamilySynth(RATE, seed=1)
    x = synth.play(np.array([0.25]), np.array([0.5]), np.array([57]), np.array([100]), program, 3 * RATE)
    assert x.shape == (3 * RATE,) and x.dtype == np.float32 and np.isfinite(x).all()
    assert not x[:int(0.25 * RATE) - 1].any()
    f, mag = spectrum(x[int(0.35 * RATE):int(0.75 * RATE)])
    strong = f[mag > 0.03 * mag.max()]  # within 30 dB: harmonics of A3 (220 Hz), give or take a vibrato
    assert np.all(np.abs(strong - 220 * np.round(strong / 220)) < 12 + 0.025 * strong) and strong.min() > 200
    held = np.abs(x[int(0.4 * RATE):int(0.75 * RATE)]).max()
    assert np.abs(x[int(2.5 * RATE):]).max() < 1e-3 * held  # a piano's damper stops it too


def test_nothing_is_made_at_or_above_0_45_of_the_sample_rate():
    synth = FamilySynth(RATE, seed=2)
    for program in (40, 56, 8, 19, 52):
        x = synth.play(np.array([0.0]), np.array([1.0]), np.array([100]), np.array([127]), program, RATE)
        f, mag = spectrum(x)
        assert (mag[f > 0.46 * RATE] ** 2).sum() < 1e-4 * (mag ** 2).sum(), program


def test_a_clarinet_has_odd_harmonics_below_its_cutoff():
    synth = FamilySynth(RATE, seed=3)
    for _ in range(5):
        p = steady(synth, 71, odd_cut=3000.0)
        levels = harmonic_levels(synth.note(p, 196.0, RATE, RATE, 100)[RATE // 4:], 196.0, 10)
        assert levels[[0, 2, 4, 6, 8]].sum() > 4 * levels[[1, 3, 5, 7, 9]].sum()


def test_brass_is_brighter_the_louder_it_plays():
    synth = FamilySynth(RATE, seed=4)
    for _ in range(5):
        p = steady(synth, 56)
        soft, loud = (centroid(synth.note(p, 349.0, RATE, RATE, v)[RATE // 4:]) for v in (40, 120))
        assert loud > 1.3 * soft


def test_brass_harmonics_enter_from_the_bottom_up():
    synth = FamilySynth(RATE, seed=5)
    p = steady(synth, 57, attack=0.03, spread=0.5)
    x = synth.note(p, 220.0, RATE, RATE, 100)
    early, late = (harmonic_levels(x[a:a + 1024], 220.0, 8) for a in (0, RATE // 2))
    assert early[5] / early[0] < 0.5 * late[5] / late[0]  # the sixth harmonic lags the first


@pytest.mark.parametrize(("program", "falls_db"), [(46, 12), (0, 4), (40, -3)])
def test_plucked_and_struck_notes_decay_and_bowed_ones_sustain(program, falls_db):
    synth = FamilySynth(RATE, seed=6)
    x = synth.note(steady(synth, program, tremolo=None), 262.0, 2 * RATE, 2 * RATE, 100)
    first, last = (np.sqrt((x[a:a + RATE // 5] ** 2).mean()) for a in (RATE // 5, int(1.75 * RATE)))
    fall = 20 * np.log10(first / last)
    assert fall > falls_db if falls_db > 0 else abs(fall) < -falls_db


def test_strings_mostly_swing_their_pitch_and_clarinets_never():
    synth = FamilySynth(RATE, seed=7)
    violins = [synth.instrument(40).vibrato for _ in range(200)]
    assert 0.75 < np.mean(np.array(violins) > 0) < 0.95 and max(violins) <= 35
    assert not any(synth.instrument(71).vibrato for _ in range(50))


def test_every_part_gets_a_new_instrument():
    synth = FamilySynth(RATE, seed=8)
    args = (np.array([0.0]), np.array([0.5]), np.array([60]), np.array([100]), 40, RATE // 2)
    a, b = synth.play(*args), synth.play(*args)
    assert abs(centroid(a) - centroid(b)) > 1.0 or not np.allclose(a, b)
    again = FamilySynth(RATE, seed=8)
    np.testing.assert_array_equal(again.play(*args), a)  # the same seed, the same instruments


def test_excerpts_with_modelled_instruments_add_up_and_repeat_by_seed():
    def excerpts(seed):
        maker = ExcerptMaker([chorale_like()], [Path(SET_NAME)], seconds=2.0, seed=seed)
        return [maker.make() for _ in range(3)]

    first = excerpts(9)
    for mix, stems, desc in first:
        assert stems.shape == (len(FAMILIES), 2, 2 * RATE)
        np.testing.assert_allclose(stems.sum(axis=0), mix, atol=1e-5)
        assert {p["soundfont"] for p in desc["parts"]} == {SET_NAME}
    for (mix, _, _), (again, _, _) in zip(first, excerpts(9)):
        np.testing.assert_array_equal(mix, again)


def test_the_modelled_set_needs_nothing_installed():
    assert find_soundfonts("modelled") == [Path(SET_NAME)]
    assert find_soundfonts("train-modelled")[-1] == Path(SET_NAME)
