"""Recorded single-note instrument samples as a training "SoundFont": the tonejs-instruments sets.

General MIDI SoundFonts are all that Debian packages, and a model trained on a few of them learns
their samples rather than the families' timbre (``docs/separation.md``). The tonejs-instruments
sets on npm are other recordings (orchestral instruments from public-domain sample libraries,
edited for consistent levels: 20 instruments, 2-38 notes each, 44.1 kHz MP3; samples CC-BY-3.0,
code MIT). `fetch_samples` downloads the pinned packages once into the cache;
`SampleSynth` plays note lists with them behind the same interface as FluidSynth's `PartSynth`,
so an excerpt maker can draw it like any SoundFont.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

from upmix.dsp import resample
from upmix.errors import UpmixError

from .npm import download, tarball_url
from .programs import TABLE

SET_NAME = "tonejs-instruments"
"""The folder (and the name the excerpt descriptions give) of the sample set."""

PACKAGES: dict[str, tuple[str, str]] = {
    "bass-electric": ("1.1.2", "79eadbeb4e9752b7b976acfcfc663a3173b6f946"),
    "bassoon": ("1.1.2", "5d3b2449f5b414eddfdb7c218554cbf333bce238"),
    "cello": ("1.1.1", "246e801b80accdbe9481a9a9b1bb212aa9346d90"),
    "clarinet": ("1.1.2", "f5900a1c8e7e7708fe2c154f8108ea1e9b044f53"),
    "contrabass": ("1.1.2", "ead51151ed8073c30330b5be4a6d26117b5f77cc"),
    "flute": ("1.1.2", "232d9cb3757dfb935fb196dec6def6d8ce26ca80"),
    "french-horn": ("1.1.2", "d9ffb0d8f6bc93b86a2f467bdedf66df06073f18"),
    "guitar-acoustic": ("1.1.2", "c62d7ee9d77a13379a93086c15bc03080b6cc299"),
    "guitar-electric": ("1.1.1", "f039a478cceeb9990c4ec8050619dfe76bd35225"),
    "guitar-nylon": ("1.1.1", "0c3263bae8cd836998c3a66470c41fde5df3bbd1"),
    "harmonium": ("1.1.1", "bc1769d809b65734027fd15e5e79834c682182f9"),
    "harp": ("1.1.1", "172e570db9044987d7839b1b0bb7f995f80d28d1"),
    "organ": ("1.1.1", "7db291ccb71ca877d21e78fe78ded782de668a99"),
    "piano": ("1.1.2", "3f4072fde6be8790ed16802411cebc6f037de346"),
    "saxophone": ("1.1.2", "0b79ff7112e161f88ef5648de4f5ca3e95511727"),
    "trombone": ("1.1.2", "fe18334b9f78d39f40cbf1ce9817e292624f7632"),
    "trumpet": ("1.1.2", "3a4734ca9dbf35e575a28395ae65fe934fb921ba"),
    "tuba": ("1.1.2", "ce6e20a2de41d218ce43843bd92b89c6dc9ec38b"),
    "violin": ("1.1.1", "f8730c3699b90d7bdba6e9d982b344724d5f2fa7"),
    "xylophone": ("1.1.2", "5ba15a754b884deee7333c02f433ab4c1eaa37e5"),
}
"""npm package ``tonejs-instrument-<name>-mp3`` of each instrument: version and sha1 of its tarball."""

INSTRUMENT_OF_PROGRAM: dict[int, str] = {p.number: p.sampled for p in TABLE}
"""The sampled instrument that plays each General MIDI program (0-based) of `programs.TABLE`: the
instrument itself where the set has it, else one of the same family and a similar range."""

DECAYING = frozenset({"piano", "harp", "guitar-acoustic", "guitar-electric", "guitar-nylon", "bass-electric",
                      "xylophone"})
"""Plucked and struck instruments: after a note-off they ring on (a longer release)."""

_NAME = re.compile(r"([A-G])(s?)(\d)")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _url(name: str, version: str) -> str:
    return tarball_url(f"tonejs-instrument-{name}-mp3", version)


def unpack(tarball: bytes, name: str, folder: Path) -> int:
    """Check an instrument's npm tarball against its pinned sha1 and extract its samples (and
    README, which holds the licence) into ``folder/name``; the number of samples."""
    version, sha1 = PACKAGES[name]
    if hashlib.sha1(tarball).hexdigest() != sha1:
        raise UpmixError(f"tonejs-instrument-{name}-mp3 {version} does not match its pinned sha1", folder)
    partial = folder / f"{name}.partial"  # renamed when complete, so an interrupted fetch leaves no half set
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            base = Path(member.name).name
            if member.isfile() and (_NAME.fullmatch(Path(base).stem) or base == "README.md"):
                (partial / base).write_bytes(tar.extractfile(member).read())
                count += base != "README.md"
    partial.rename(folder / name)
    return count


def fetch_samples(folder: Path) -> int:
    """Download the pinned tonejs-instruments packages from the npm registry (about 48 MB) into
    `folder`, skipping instruments already there; the number of instruments present."""
    for name, (version, _) in PACKAGES.items():
        if (folder / name).is_dir():
            continue
        unpack(download(_url(name, version), folder), name, folder)
    return sum((folder / name).is_dir() for name in PACKAGES)


def midi_pitch(stem: str) -> int | None:
    """MIDI pitch of a sample named like ``A4`` or ``Cs3`` (s = sharp), None for other names."""
    m = _NAME.fullmatch(stem)
    return None if m is None else 12 * (int(m[3]) + 1) + _STEPS[m[1]] + (m[2] == "s")


class SampleSynth:
    """Plays note lists with single-note samples: each note takes the nearest sampled pitch,
    resampled to its own, cut at its note-off with a raised-cosine release.

    Args:
        folder: a folder of instrument folders of samples named by pitch (``A4.mp3``, ``Cs3.wav``).
        sample_rate: Hz.
    """

    def __init__(self, folder: Path, sample_rate: int) -> None:
        if not folder.is_dir():
            raise UpmixError("no such sample folder (python -m training.data fetch-samples)", folder)
        self.folder, self.sample_rate, self.name = folder, sample_rate, folder.name
        self._loaded: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}

    def _instrument(self, name: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """(pitches, samples at `sample_rate`) of an instrument, read on first use."""
        if name not in self._loaded:
            found = sorted((midi_pitch(f.stem), f) for f in (self.folder / name).iterdir()
                           if midi_pitch(f.stem) is not None)
            if not found:
                raise UpmixError(f"no samples of {name}", self.folder / name)
            samples = []
            for _, path in found:
                x, rate = sf.read(path, dtype="float32", always_2d=True)
                samples.append(resample(x.mean(axis=1), rate, self.sample_rate))
            self._loaded[name] = (np.array([p for p, _ in found], dtype=float), samples)
        return self._loaded[name]

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32: notes at `onsets` for `durations` seconds; velocity
        1-127 as amplitude (velocity / 127)², General MIDI's recommended 40 log10(velocity / 127) dB."""
        name = INSTRUMENT_OF_PROGRAM[program]
        sampled, samples = self._instrument(name)
        rate = self.sample_rate
        release = int((1.0 if name in DECAYING else 0.2) * rate)
        out = np.zeros(length, dtype=np.float32)
        for onset, duration, pitch, velocity in zip(onsets, durations, pitches, velocities):
            start = max(int(round(onset * rate)), 0)
            held = int(round((onset + duration) * rate)) - start
            if start >= length or held <= 0:
                continue
            k = int(np.argmin(np.abs(sampled - pitch)))
            ratio = 2.0 ** ((pitch - sampled[k]) / 12)
            sample = samples[k]
            n = min(held + release, int((len(sample) - 1) / ratio), length - start)
            note = np.interp(np.arange(n) * ratio, np.arange(len(sample)), sample)
            if n > held:
                note[held:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(n - held) / release)
            out[start:start + n] += (velocity / 127) ** 2 * note.astype(np.float32)
        return out
