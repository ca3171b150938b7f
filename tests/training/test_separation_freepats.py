"""The FreePats patches (through TiMidity++) as a training sound set: notes in time and at their
pitch, no reverb tail, only FreePats' own patches and none whose samples the test banks share,
excerpts that add up, and clear errors."""


import numpy as np
import pytest
from test_separation_data import excerpts_of_one_set_add_up

from banks import require_fluidsynth, require_freepats
from training import freepats, sharing
from training.data import PROGRAMS, SOUNDFONT_DIRS, find_soundfonts
from training.freepats import SET_NAME, PatchSynth
from upmix.errors import UpmixError

RATE = 22050


@pytest.fixture
def synth():
    require_freepats()
    return PatchSynth(RATE)


def test_a_note_sounds_in_time_at_its_pitch_and_stops_without_a_reverb_tail(synth):
    x = synth.play(np.array([0.5]), np.array([0.5]), np.array([69]), np.array([100]), program=40, length=3 * RATE)
    assert x.shape == (3 * RATE,) and x.dtype == np.float32
    assert np.abs(x[:int(0.495 * RATE)]).max() == 0  # TiMidity++ keeps the leading silence
    assert np.abs(x[int(0.5 * RATE):int(0.51 * RATE)]).max() > 0.01
    spec = np.abs(np.fft.rfft(x[int(0.6 * RATE):int(0.95 * RATE)] * np.hanning(int(0.35 * RATE))))
    f = np.fft.rfftfreq(int(0.35 * RATE), 1 / RATE)
    assert abs(f[np.argmax(spec)] - 440) < 5
    held = np.sqrt((x[int(0.6 * RATE):int(0.95 * RATE)] ** 2).mean())
    assert np.sqrt((x[int(2.0 * RATE):] ** 2).mean()) < 1e-4 * held  # no reverb


def test_every_program_the_excerpts_play_has_its_own_unshared_patch():
    require_freepats()
    defined = freepats.programs()
    for family, options in PROGRAMS.items():
        for program, _, _ in options:
            played = freepats.STAND_INS.get(program, program)
            assert played in defined and played not in freepats.SHARED, (family, program)
    assert freepats.SHARED <= set(freepats.STAND_INS)


def test_a_program_freepats_lacks_is_played_by_its_stand_in(synth):
    notes = (np.array([0.0, 0.5]), np.array([0.4, 0.4]), np.array([60, 64]), np.array([90, 90]))
    violin = synth.play(*notes, program=40, length=RATE)
    np.testing.assert_array_equal(synth.play(*notes, program=41, length=RATE), violin)  # viola
    assert np.abs(synth.play(*notes, program=56, length=RATE) - violin).max() > 0.05


def test_the_check_finds_a_patch_copied_into_a_test_soundfont():
    require_freepats()
    require_fluidsynth()
    samples = sharing.soundfont_samples(SOUNDFONT_DIRS[0] / "TimGM6mb.sf2")
    english_horn = freepats.patch_waves(freepats.PATCHES / "Tone_000" / "069_English_Horn.pat")
    assert sharing.shared_waves(english_horn[:2], samples) == {0: 2048}
    violin = freepats.patch_waves(freepats.PATCHES / "Tone_000" / "040_Violin.pat")
    assert sharing.shared_waves(violin[:2], samples) == {}
    gained = [(w * 0.5).astype(np.int16) for w in violin[:1]]  # a copy at another gain is a copy
    assert sharing.shared_waves(violin[:1], np.concatenate([samples[:100_000], gained[0], samples[100_000:200_000]]))


def test_excerpts_played_by_freepats_add_up(synth):
    excerpts_of_one_set_add_up("freepats", SET_NAME)


def test_clear_errors(monkeypatch, tmp_path):
    require_freepats()
    with pytest.raises(UpmixError, match="no patch for program 127"):
        PatchSynth(RATE).play(np.array([0.0]), np.array([0.5]), np.array([60]), np.array([90]), 127, RATE)
    not_a_patch = tmp_path / "x.pat"
    not_a_patch.write_bytes(b"RIFF0000")
    with pytest.raises(UpmixError, match="not a Gravis UltraSound patch"):
        freepats.patch_waves(not_a_patch)
    with pytest.raises(UpmixError, match="no sample data"):
        sharing.soundfont_samples(not_a_patch)
    monkeypatch.setattr(freepats, "CONFIG", tmp_path / "missing.cfg")
    assert not freepats.available()
    with pytest.raises(UpmixError, match="not installed \\(apt-get install timidity freepats\\)"):
        PatchSynth(RATE)
    with pytest.raises(UpmixError, match="no freepats SoundFont installed \\(apt-get install timidity freepats\\)"):
        find_soundfonts("freepats")
