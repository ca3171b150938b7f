"""The Sonivox EAS wave table as a training sound set: notes at their pitch, no reverb tail,
excerpts that add up, and clear errors."""


import numpy as np
import pytest
from test_separation_data import excerpts_of_one_set_add_up

from banks import require_sonivox
from training import sonivox
from training.data import find_soundfonts
from training.sonivox import SET_NAME, EasSynth
from upmix.errors import UpmixError

RATE = 22050


@pytest.fixture
def synth():
    require_sonivox()
    return EasSynth(RATE)


def test_a_note_sounds_at_its_pitch_and_stops_without_a_reverb_tail(synth):
    x = synth.play(np.array([0.1]), np.array([0.5]), np.array([69]), np.array([100]), program=40, length=2 * RATE)
    assert x.shape == (2 * RATE,) and x.dtype == np.float32
    spec = np.abs(np.fft.rfft(x[int(0.15 * RATE):int(0.55 * RATE)] * np.hanning(int(0.4 * RATE))))
    f = np.fft.rfftfreq(int(0.4 * RATE), 1 / RATE)
    assert abs(f[np.argmax(spec)] - 440) < 5
    held = np.sqrt((x[int(0.2 * RATE):int(0.5 * RATE)] ** 2).mean())
    assert held > 0.01
    assert np.abs(x[:int(0.09 * RATE)]).max() == 0  # nothing before the note
    assert np.sqrt((x[int(1.3 * RATE):] ** 2).mean()) < 1e-4 * held  # reverb bypassed (on, it leaves -60 dB)


def test_parts_are_independent_and_programs_differ(synth):
    notes = (np.array([0.0, 0.5]), np.array([0.4, 0.4]), np.array([60, 64]), np.array([90, 90]))
    first = synth.play(*notes, program=56, length=RATE)
    synth.play(np.array([0.0]), np.array([2.0]), np.array([40]), np.array([127]), program=48, length=RATE // 2)
    np.testing.assert_array_equal(synth.play(*notes, program=56, length=RATE), first)  # nothing carried over
    flute = synth.play(*notes, program=73, length=RATE)
    assert np.abs(flute - first).max() > 0.05


def test_excerpts_played_by_sonivox_add_up(synth):
    excerpts_of_one_set_add_up("sonivox", SET_NAME)


def test_clear_errors(monkeypatch):
    require_sonivox()
    with pytest.raises(UpmixError, match="renders at 22050 Hz, not 44100 Hz"):
        EasSynth(44100)
    monkeypatch.setattr(sonivox, "LIBRARY", "libsonivox-missing.so.0")
    assert not sonivox.available()
    with pytest.raises(UpmixError, match="not installed \\(apt-get install libsonivox3\\)"):
        EasSynth(RATE)
    with pytest.raises(UpmixError, match="no sonivox SoundFont installed \\(apt-get install libsonivox3\\)"):
        find_soundfonts("sonivox")
