"""Separation by direction (the ``sources`` separator, issue 27) on real recorded instruments.

**Material** (from package registries, cached under ``~/.cache/upmix/bench/``; nothing is in the repo):

- tonejs-instruments samples (npm, `training.samples`) playing parts of music21 corpus works (Bach
  chorales, Monteverdi madrigals with five voices, Haydn, Mozart and Beethoven quartet movements;
  note lists read as `training.data` reads them), each part a different instrument chosen for its
  register (violin, cello, double bass, flute, clarinet, bassoon, alto sax, trumpet, trombone, tuba,
  horn, nylon guitar, harp), parts brought to the same loudness +-3 dB;
- Debian's ``fretsonfire-songs-muldjord`` and ``-sectoid`` (``apt-get download``, ``dpkg-deb -x``;
  skipped with a printed line when apt-get cannot fetch them): every third ensemble is an excerpt of
  a song with two sources, its guitar track and its backing track (``song.ogg``, itself a stereo
  mix, downmixed to mono before it is placed like any other source).

An ensemble is an excerpt of ``--seconds`` at 48 kHz with 2-5 sources (songs: 2). Every ensemble is
"recorded" three ways, one table each:

1. **pan-potted dry**: constant-power pan-pots (`upmix.analysis.pan_gains`) at stereo azimuths
   (`upmix.analysis.stereo_azimuth`: energy-vector azimuth on a +-30 degree pair, +30 = hard left)
   drawn at random, at least 15 degrees apart;
2. **hall, spaced pair**: two omnis 60 cm apart, and
3. **hall, ORTF**: two cardioids 17 cm apart, aimed +-55 degrees,

   both in a pyroomacoustics shoebox hall (25 x 18 x 10 m, Sabine RT60 1.5 s from
   ``pra.inverse_sabine``, image sources up to its order, 58; measured T30 is printed), at 48 kHz,
   the sources on a 3 m arc in front of the pair (about the critical distance) at 15 degree steps
   from -45 to +45 degrees, drawn without replacement.

**Held out**: works and songs are split by a fixed rule, ``crc32(name) % 2 == 0`` is held out; both
lists are printed. The acceptance targets are judged on the held-out set only. Nothing in the
separator or in this benchmark is tuned on it (the development set is for looking at).

**Scoring**: every stem is stereo, scored against the stereo reference image of its source with
SI-SDR over both channels at once (the channels concatenated, one scale for both:
`upmix.analysis.si_sdr`), the same for all methods. SI-SDRi is the improvement over the mixture
itself as the estimate. In the hall the reference is the source's own recording through the same
room, reverberation and all ("reverberant image"); beside it the scores against its direct path and
the first 50 ms of the room after it ("direct+early") are printed, and the PASS/FAIL lines give
both. Medians are over sources (all mixes together).

- Matching: on pan-pots the stems are matched to the true sources by azimuth (Hungarian algorithm,
  `scipy.optimize.linear_sum_assignment`); in the hall, where the separator's azimuth for a spaced
  pair has no known ground truth, by SI-SDR (the best assignment, generous to every method). A true
  source no stem is matched to scores `MISSED_DB`.
- Direction error: pan-pot: against the pan-pot's stereo azimuth. ORTF: against the stereo
  azimuth of the level difference of the direct path (cardioid gains and distance). Spaced pair:
  not reported: its level differences are below 1 dB and the separator's mapping of time
  differences to azimuth has no reference.
- Ambience: the late reverberation is each source convolved with the room response from 80 ms after
  its direct sound on, summed (L, stereo). The share the ambience stem holds is <a, L> / <x, L>
  (a: the ambience stem, x: the mixture); since the stems add up to the mixture, the shares of all
  stems add to 1.

**Methods**

- ``ours``: `upmix.separation.sources.SourceSeparator`, count found automatically;
- ``ours N``: the same with the true count forced;
- ``IRM``: ideal ratio (power) masks per channel from the true stems, STFT 2048 / 512 Hann: an
  upper bound for masking; against the direct+early reference the rest of the mixture is one more
  masked "source";
- ``spatial``: `upmix.separation.SpatialSeparator` on a stage with one speaker per source at its
  TRUE direction (pan-pot azimuth; in the hall the direct path's level-difference azimuth), as
  ``benchmarks/separation_quality.py`` does: it is given the directions the others must find. Its
  feeds are mono: each feed's share of the power of all its feeds per STFT bin masks the stereo
  mixture, so its stems keep the recording's image (`spatial_estimates`);
- ``DUET`` (Rickard & Yilmaz 2004) with the TRUE count: a power-weighted histogram over symmetric
  attenuation and delay, its strongest peaks, binary masks by the maximum-likelihood assignment,
  applied to both channels (`duet`).

**Speed and memory**: ours, DUET and spatial on 60 s of 48 kHz stereo (the pan-potted development
ensembles strung together) in a child process with ``torch.set_num_threads(2)``: real-time factor
and the child's peak RSS. A 10-minute input: ``upmix separate --model sources`` on a 10-minute WAV
in a child, its peak RSS (``ru_maxrss`` of the child), only when the CLI offers that model.

    python benchmarks/source_separation.py [--mixes 8] [--seconds 8] [--seed 2027] [--json OUT] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.optimize
import scipy.signal
import torch

from upmix.analysis import si_sdr
from upmix.cache import cache_dir
from upmix.stage import STEREO_HALF_ANGLE, pan_angle, stereo_azimuth

try:
    from upmix.separation.sources import SourceSeparator
except ImportError:  # the separator is not there yet: the baselines still run
    SourceSeparator = None

RATE = 48000
"""Sample rate of all material, Hz."""

N_FFT, HOP = 2048, 512
"""STFT of the oracle masks and of DUET (Hann window)."""

MIN_GAP_DEG = 15.0
"""Closest two pan-potted sources are, degrees of stereo azimuth."""

MISSED_DB = -50.0
"""SI-SDR given to a true source that no stem was matched to, dB."""

HALL_DIM = (25.0, 18.0, 10.0)
HALL_RT60 = 1.5
MIC_CENTRE = (12.5, 5.0, 1.6)
STAGE_RADIUS = 3.0
STAGE_GRID = (-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0)
"""The hall (m), its Sabine RT60 (s), the centre of the microphone pair (m), the radius (m) of the
arc the sources stand on (about the hall's critical distance, 0.057 sqrt(V / RT60) = 3.1 m, where a
main pair is usually placed), and their places on it (degrees, + = left, 0 = straight ahead)."""

SETUPS = {"spaced": (0.60, None), "ortf": (0.17, 55.0)}
"""Microphone pairs: spacing (m) and the cardioids' angle off the front (degrees; None: omnis)."""

EARLY_S, LATE_S = 0.050, 0.080
"""The direct+early reference keeps the room response up to this long after the direct sound; the
late reverberation starts this long after it, seconds."""

SPEED_SECONDS = 60.0
LONG_MINUTES = 10
TARGETS = {"pan_si_sdr": 9.0, "pan_count": 0.9, "pan_direction": 2.0, "hall_si_sdri": 5.0,
           "ambience": 0.7, "speed": 10.0, "long_rss_gb": 1.5}
"""The issue's acceptance targets."""

WORKS = (
    "bach/bwv1.6.mxl", "bach/bwv10.7.mxl", "bach/bwv101.7.mxl", "bach/bwv102.7.mxl", "bach/bwv103.6.mxl",
    "bach/bwv104.6.mxl", "bach/bwv108.6.mxl", "bach/bwv11.6.mxl", "bach/bwv110.7.mxl", "bach/bwv111.6.mxl",
    "bach/bwv113.8.mxl", "bach/bwv114.7.mxl", "bach/bwv115.6.mxl", "bach/bwv116.6.mxl", "bach/bwv117.4.mxl",
    "bach/bwv119.9.mxl",
    "monteverdi/madrigal.3.1.mxl", "monteverdi/madrigal.3.2.mxl", "monteverdi/madrigal.3.3.mxl",
    "monteverdi/madrigal.3.4.mxl", "monteverdi/madrigal.3.5.mxl", "monteverdi/madrigal.3.6.mxl",
    "monteverdi/madrigal.3.7.mxl", "monteverdi/madrigal.3.8.mxl",
    "haydn/opus74no1/movement1.mxl", "mozart/k155/movement1.mxl", "mozart/k156/movement1.mxl",
    "beethoven/opus18no1/movement1.mxl",
)
"""music21 corpus works whose parts the instruments play."""

PROGRAMS = (40, 42, 43, 73, 71, 70, 65, 56, 57, 58, 60, 24, 46)
"""General MIDI programs the parts are drawn from (`training.programs.TABLE`), each played by a
different tonejs-instruments recording."""

SONG_PACKAGES = ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid")
SONGS_UNDER = "usr/share/games/fretsonfire/data/songs"


def bench_dir() -> Path:
    """Where the material is kept: the upmix cache's ``bench`` folder."""
    return cache_dir() / "bench"


def is_held_out(name: str) -> bool:
    """The fixed split of works and songs: held out when crc32 of the name is even."""
    return zlib.crc32(name.encode()) % 2 == 0


def azimuth_gains(azimuth: np.ndarray) -> np.ndarray:
    """(..., 2) constant-power (left, right) gains that put a source at a stereo azimuth (degrees,
    +30 = hard left): the inverse of `upmix.analysis.stereo_azimuth`."""
    theta = pan_angle(azimuth)
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def gains_azimuth(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Stereo azimuth (degrees) of a source with channel amplitudes `left`, `right`."""
    return stereo_azimuth(np.arctan2(np.abs(right), np.abs(left)))


def pan_positions(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` stereo azimuths on the +-30 degree stage at least `MIN_GAP_DEG` apart, in random order."""
    free = 2 * STEREO_HALF_ANGLE - MIN_GAP_DEG * (count - 1)
    az = -STEREO_HALF_ANGLE + np.sort(rng.uniform(0, free, count)) + MIN_GAP_DEG * np.arange(count)
    return rng.permutation(az)


# ---------------------------------------------------------------------------------------------- STFT


def stft(x: np.ndarray) -> np.ndarray:
    """(..., bins, frames) complex STFT of (..., n), `N_FFT` / `HOP` Hann."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    flat = t.reshape(-1, t.shape[-1])
    spec = torch.stft(flat, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    return spec.reshape(*t.shape[:-1], *spec.shape[-2:]).numpy()


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of `stft`: (..., length) float32."""
    t = torch.from_numpy(np.ascontiguousarray(spec))
    flat = t.reshape(-1, *t.shape[-2:])
    out = torch.istft(flat, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)
    return out.reshape(*t.shape[:-2], length).numpy()


# ------------------------------------------------------------------------------------------ baselines

DUET_ALPHA_MAX = 4.0
DUET_ALPHA_STEP = 0.05
DUET_SMOOTHING = 1.5
DUET_PEAK_GAP = 0.4
"""DUET's histogram: symmetric attenuation a - 1/a clipped to +-this (|R/L| from 1/4 to 4, +-12 dB:
hard-panned sources collect at the edges), its bin width, the Gaussian smoothing in bins, and how
far apart in attenuation two peaks must be (the delay axis has 81 bins over the pair's range, and
peaks must be a tenth of the range apart)."""


def _centred(half: float, step: float) -> np.ndarray:
    """Bin centres from -half to half with one at 0."""
    m = int(round(half / step))
    return step * np.arange(-m, m + 1)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Edges of bins around equally spaced centres."""
    step = centres[1] - centres[0]
    return np.append(centres - step / 2, centres[-1] + step / 2)


def duet(mix: np.ndarray, count: int, max_delay: float) -> tuple[np.ndarray, np.ndarray]:
    """DUET (Rickard & Yilmaz 2004) with a known count: (estimates (count, 2, n), the stereo azimuth
    of each estimate's level ratio, degrees).

    Per STFT bin the level ratio a = |R/L| (as the symmetric attenuation a - 1/a) and the delay
    delta = -angle(R/L) / omega (samples) go into a 2-D histogram weighted by the bin's power
    |L|^2 + |R|^2 (DUET's |L||R| weight, p = 1, gives a hard-panned source no weight at all). Only
    bins whose delay is unambiguous for delays up to `max_delay` samples (omega * max_delay < pi)
    enter the histogram; every bin is then assigned to the peak with the maximum likelihood,
    min_j |a_j e^(-i omega delta_j) L - R|^2 / (1 + a_j^2), and its binary mask is applied to both
    channels. With `max_delay` 0 (a pan-pot or coincident pair) the delay is known to be 0 and
    the histogram is over the attenuation alone."""
    spec = stft(mix)
    left, right = spec[0], spec[1]
    bins = left.shape[0]
    omega = np.pi * np.arange(bins) / (bins - 1)
    eps = 1e-12
    ratio = (right + eps) / (left + eps)
    a = np.abs(ratio)
    alpha = np.clip(a - 1 / a, -DUET_ALPHA_MAX, DUET_ALPHA_MAX)
    usable = (np.arange(bins) >= 1) & (omega * max_delay < np.pi)
    delta = -np.angle(ratio[usable]) / omega[usable, None] if max_delay > 0 else np.zeros(ratio[usable].shape)
    alpha_centres = _centred(DUET_ALPHA_MAX, DUET_ALPHA_STEP)
    delta_centres = _centred(max_delay, max_delay / 40) if max_delay > 0 else np.zeros(1)
    weight = np.abs(left[usable]) ** 2 + np.abs(right[usable]) ** 2
    hist, _, _ = np.histogram2d(alpha[usable].ravel(), delta.ravel(), weights=weight.ravel(),
                                bins=(_edges(alpha_centres), _edges(delta_centres) if max_delay > 0 else [-1, 1]))
    smooth = scipy.ndimage.gaussian_filter(hist, DUET_SMOOTHING, mode="constant")
    size = (2 * round(DUET_PEAK_GAP / DUET_ALPHA_STEP) + 1, 2 * (len(delta_centres) // 20) + 1)
    peaks = np.argwhere((smooth == scipy.ndimage.maximum_filter(smooth, size=size, mode="constant")) & (smooth > 0))
    peaks = peaks[np.argsort(-smooth[tuple(peaks.T)])[:count]]
    alpha_j, delta_j = alpha_centres[peaks[:, 0]], delta_centres[peaks[:, 1]]
    a_j = (alpha_j + np.sqrt(alpha_j ** 2 + 4)) / 2
    steer = a_j[:, None, None] * np.exp(-1j * omega[None, :, None] * delta_j[:, None, None])
    cost = np.abs(steer * left[None] - right[None]) ** 2 / (1 + a_j[:, None, None] ** 2)
    owner = np.argmin(cost, axis=0)
    masks = owner[None] == np.arange(len(a_j))[:, None, None]
    estimates = istft(masks[:, None] * spec[None], mix.shape[-1])
    return estimates, gains_azimuth(np.ones_like(a_j), a_j)


def ideal_ratio_masks(mix: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Each reference's oracle power mask (per channel) applied to the mixture: (S, 2, n). With
    references that do not add up to the mixture, the rest of it is one more (unreturned) source."""
    spec, ref_spec = stft(mix), stft(refs)
    power = np.abs(ref_spec) ** 2
    rest = np.abs(spec - ref_spec.sum(axis=0)) ** 2
    masks = power / np.maximum(power.sum(axis=0) + rest, 1e-20)
    return istft(masks * spec[None], mix.shape[-1])


def spatial_estimates(mix: np.ndarray, azimuths: np.ndarray) -> np.ndarray:
    """Stereo stems from the spatial separator's direct feeds on a stage with one speaker at each
    (true) stereo azimuth: (S, 2, n). Its feeds are mono, so each one's share of the power of all
    its feeds (ambience included) in every STFT bin is applied to the stereo mixture as a mask;
    the stems keep the mixture's own image, time differences included."""
    from upmix.layouts import Layout, Speaker
    from upmix.seating import AMBIENCE_SEATS
    from upmix.separation import SpatialSeparator
    from upmix.stage import Stage, StageOptions

    names = [f"source{k}" for k in range(len(azimuths))]
    speakers = [Speaker(name=n, azimuth=float(az), nominal_azimuth=float(az)) for n, az in zip(names, azimuths)]
    speakers += [Speaker(name=name, azimuth=az, nominal_azimuth=az) for name, az in AMBIENCE_SEATS]
    stage = Stage(Layout(name="sources", speakers=tuple(speakers)),
                  StageOptions(width=STEREO_HALF_ANGLE, center=0.0, ambience_front=0.0))
    out = SpatialSeparator(stage, device="cpu").separate(mix, RATE)
    power = np.abs(stft(np.stack([out[k][0] for k in out]))) ** 2
    mine = [list(out).index(f"direct.{n}") for n in names]
    return istft(power[mine] / np.maximum(power.sum(axis=0), 1e-20) * stft(mix)[:, None], mix.shape[-1]).swapaxes(0, 1)


@dataclass
class Found:
    """A method's answer for one mixture: stereo estimates (K, 2, n), their azimuths (or None), the
    ambience stem (or None), an error message when it failed, and estimates of the direct+early
    references where they differ from `estimates` (the oracle's)."""

    estimates: np.ndarray
    azimuths: np.ndarray | None = None
    ambience: np.ndarray | None = None
    error: str | None = None
    early_estimates: np.ndarray | None = None


def ours(mix: np.ndarray, count: int | None) -> Found:
    """The ``sources`` separator's source stems, azimuths and ambience stem."""
    try:
        sep = SourceSeparator(count=count, device="cpu")
        stems = sep.separate(mix, RATE)
    except Exception as e:  # noqa: BLE001 - a failure is counted and shown, the benchmark goes on
        return Found(np.zeros((0, *mix.shape), np.float32), np.zeros(0), error=f"{type(e).__name__}: {e}")
    names = sorted(k for k in stems if k.startswith("source_"))
    return Found(np.stack([stems[k] for k in names]) if names else np.zeros((0, *mix.shape), np.float32),
                 np.array([s.azimuth for s in sep.sources]), stems.get("ambience"))


# ------------------------------------------------------------------------------------------- material


@dataclass
class Ensemble:
    """Dry mono sources (S, n) of one excerpt, the work or song they come from, their instruments."""

    name: str
    sources: np.ndarray
    instruments: list[str]


def load_works() -> list:
    """The `WORKS` as `training.data.Work` note lists (parsed once, kept in the cache)."""
    from training.data import Work, _parse, load_notes, save_notes

    path = bench_dir() / "works-v1.npz"
    if not path.exists():
        from music21 import corpus

        files = {str(p).split("/corpus/", 1)[-1]: str(p) for p in corpus.getCorePaths()}
        works = [Work(i, tuple(parts)) for name in WORKS for i, parts in _parse(files[name])]
        save_notes(path, works)
    return load_notes(path)


def fetch_songs() -> list[Path]:
    """The fretsonfire song folders that have a guitar and a backing track, fetched once with
    ``apt-get download`` and ``dpkg-deb -x``; [] (with a printed line) when that fails."""
    root = bench_dir() / "fretsonfire"
    if not (root / SONGS_UNDER).is_dir():
        debs = bench_dir() / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        try:
            for attempt in range(2):
                done = subprocess.run(["apt-get", "download", *SONG_PACKAGES], cwd=debs, capture_output=True, text=True)
                if done.returncode == 0:
                    break
                if attempt == 0:
                    subprocess.run(["apt-get", "update"], capture_output=True)
            else:
                raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "apt-get failed")
            partial = root.with_suffix(".partial")
            for deb in sorted(debs.glob("fretsonfire-songs-*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True)
            partial.rename(root)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"fretsonfire songs: not available ({e}); the song material is skipped")
            return []
    return sorted(p.parent for p in (root / SONGS_UNDER).glob("*/*/guitar.ogg") if (p.parent / "song.ogg").exists())


def song_name(folder: Path) -> str:
    """``muldjord/chaos_god``: the band and song folder."""
    return f"{folder.parent.name}/{folder.name}"


def _song_excerpt(folder: Path, rng: np.random.Generator, n: int) -> Ensemble | None:
    """Guitar and backing (both downmixed to mono) of a random stretch where both play."""
    import soundfile as sf

    from upmix.dsp import resample

    tracks = []
    for name in ("guitar.ogg", "song.ogg"):
        x, rate = sf.read(folder / name, dtype="float32", always_2d=True)
        tracks.append(resample(x.mean(axis=1), rate, RATE))
    length = min(len(t) for t in tracks)
    if length <= n:
        return None
    level = [np.sqrt(np.mean(t[:length] ** 2)) for t in tracks]
    for _ in range(50):
        start = int(rng.integers(0, length - n))
        parts = [t[start:start + n] for t in tracks]
        if all(np.sqrt(np.mean(p ** 2)) > 0.3 * lv for p, lv in zip(parts, level)):
            return Ensemble(song_name(folder), np.stack(parts), ["guitar", "backing"])
    return None


def _program_for(pitches: np.ndarray, rng: np.random.Generator, used: set[str]) -> tuple[int, int, str]:
    """The program of `PROGRAMS` whose instrument is not in `used` and whose range, after an
    octave shift, holds the part best (ties drawn at random): (program, shift in semitones, instrument)."""
    from training.programs import TABLE

    lo, hi = np.percentile(pitches, [5, 95])
    table = {p.number: p for p in TABLE}
    best = None
    for number in rng.permutation(PROGRAMS):
        p = table[int(number)]
        if p.sampled in used:
            continue
        shift = 12 * round(((p.low + p.high) - (lo + hi)) / 24)
        outside = max(p.low - (lo + shift), 0) + max(hi + shift - p.high, 0)
        if best is None or outside < best[0]:
            best = (outside, int(number), int(shift), p.sampled)
    return best[1:]


def _work_excerpt(work, count: int, synth, rng: np.random.Generator, n: int, seconds: float) -> Ensemble | None:
    """`count` parts of a random stretch of a work, each on its own instrument; None when fewer play."""
    tempo = rng.uniform(60, 100) / 60  # quarter notes per second
    span = seconds * tempo
    start = rng.uniform(0, max(work.length - span, 0.0))
    parts = [p[(p[:, 0] < start + span) & (p[:, 0] + p[:, 1] > start)] for p in work.parts]
    parts = [p for p in parts if len(p) >= 4]
    if len(parts) < count:
        return None
    chosen = sorted(rng.choice(len(parts), count, replace=False))
    sources, instruments = [], []
    for k in chosen:
        part = parts[k]
        program, shift, instrument = _program_for(part[:, 2], rng, set(instruments))
        velocities = np.clip(rng.normal(85, 8, len(part)), 30, 127)
        mono = synth.play((part[:, 0] - start) / tempo, part[:, 1] / tempo, part[:, 2] + shift, velocities, program, n)
        level = np.sqrt(np.mean(mono ** 2))
        if level < 1e-5:
            return None
        sources.append(mono * 10 ** (rng.uniform(-3, 3) / 20) * 0.05 / level)
        instruments.append(instrument)
    return Ensemble(work.id, np.stack(sources).astype(np.float32), instruments)


def make_ensembles(works: list, songs: list[Path], count: int, seconds: float, seed: int) -> list[Ensemble]:
    """`count` ensembles: every third a song excerpt (when there are songs), the rest work excerpts
    with 2, 3, 4, 5, 2, ... sources in turn (from works with that many parts)."""
    from training.samples import SET_NAME, SampleSynth, fetch_samples

    folder = bench_dir() / SET_NAME
    fetch_samples(folder)
    synth = SampleSynth(folder, RATE)
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out: list[Ensemble] = []
    from_works = 0
    while len(out) < count:
        if songs and len(out) % 3 == 2:
            found = _song_excerpt(songs[rng.integers(len(songs))], rng, n)
        else:
            parts = 2 + from_works % 4
            fit = [w for w in works if len(w.parts) >= parts]
            found = _work_excerpt(fit[rng.integers(len(fit))], parts, synth, rng, n, seconds)
            from_works += found is not None
        if found is not None:
            out.append(found)
    return out


def cached_ensembles(split: str, works: list, songs: list[Path], count: int, seconds: float,
                     seed: int) -> list[Ensemble]:
    """`make_ensembles`, kept in the cache (sources as float16) by split, count, length and seed."""
    path = bench_dir() / f"ensembles-{split}-{count}x{seconds:g}s-seed{seed}-v2.npz"
    if path.exists():
        with np.load(path) as data:
            sources = np.split(data["sources"].astype(np.float32), np.cumsum(data["counts"])[:-1])
            return [Ensemble(str(nm), s, str(ins).split(",")) for nm, s, ins in
                    zip(data["names"], sources, data["instruments"])]
    made = make_ensembles(works, songs, count, seconds, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, sources=np.concatenate([e.sources for e in made]).astype(np.float16),
                        counts=[len(e.sources) for e in made], names=[e.name for e in made],
                        instruments=[",".join(e.instruments) for e in made])
    partial.rename(path)
    return [Ensemble(e.name, e.sources.astype(np.float16).astype(np.float32), e.instruments) for e in made]


# ----------------------------------------------------------------------------------------------- hall


def _geometry(setup: str, radius: float = STAGE_RADIUS) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """(mic positions (2, 3), source positions (grid, 3) at `radius` m, mic aim azimuths in
    pyroomacoustics' convention (degrees from +x, counter-clockwise) or None for omnis). Front is
    +y, left is -x."""
    spacing, angle = SETUPS[setup]
    centre = np.array(MIC_CENTRE)
    mics = centre + np.array([[-spacing / 2, 0, 0], [spacing / 2, 0, 0]])
    rad = np.radians(STAGE_GRID)
    places = centre + radius * np.stack([-np.sin(rad), np.cos(rad), np.zeros_like(rad)], axis=1)
    aims = [None, None] if angle is None else [90.0 + angle, 90.0 - angle]
    return mics, places, aims


def direct_azimuths(setup: str) -> np.ndarray:
    """Stereo azimuth (degrees) of each grid place as the direct path's level difference gives it:
    the cardioids' gains (0.5 (1 + cos)) over the distance."""
    mics, places, aims = _geometry(setup)
    gains = []
    for mic, aim in zip(mics, aims):
        offset = places - mic
        g = 1 / np.linalg.norm(offset, axis=1)
        if aim is not None:
            facing = np.array([math.cos(math.radians(aim)), math.sin(math.radians(aim)), 0.0])
            g = g * 0.5 * (1 + offset @ facing * g)
        gains.append(g)
    return gains_azimuth(gains[0], gains[1])


def hall_responses(setup: str, radius: float = STAGE_RADIUS) -> np.ndarray:
    """(grid places, 2 mics, taps) room responses at `RATE` for sources `radius` m from the pair,
    computed once and cached."""
    path = bench_dir() / f"hall-{setup}-r{radius:g}-v1.npz"
    if path.exists():
        with np.load(path) as data:
            return data["rir"]
    import pyroomacoustics as pra
    from pyroomacoustics.directivities import Cardioid, DirectionVector

    absorption, order = pra.inverse_sabine(HALL_RT60, HALL_DIM)
    mics, places, aims = _geometry(setup, radius)
    room = pra.ShoeBox(list(HALL_DIM), fs=RATE, materials=pra.Material(absorption), max_order=order,
                       air_absorption=True)
    for place in places:
        room.add_source(place)
    directivity = None if aims[0] is None else [
        Cardioid(DirectionVector(azimuth=aim, colatitude=90, degrees=True)) for aim in aims]
    room.add_microphone_array(pra.MicrophoneArray(mics.T, RATE, directivity=directivity))
    room.compute_rir()
    taps = int(2.5 * RATE)
    rir = np.zeros((len(places), 2, taps), np.float32)
    for m in range(2):
        for s in range(len(places)):
            h = np.asarray(room.rir[m][s])[:taps]
            rir[s, m, :len(h)] = h
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, rir=rir)
    partial.rename(path)
    return rir


def split_response(h: np.ndarray, early_s: float = EARLY_S, late_s: float = LATE_S
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(direct+early, late) parts of a (2, taps) response: up to `early_s` after the direct sound
    (the first arrival within 20 dB of the strongest, earliest over both mics), and from `late_s`
    after it (seconds)."""
    first = int(min(np.argmax(np.abs(c) > 0.1 * np.abs(c).max()) for c in h))
    early, late = h.copy(), h.copy()
    early[:, first + int(early_s * RATE):] = 0
    late[:, :first + int(late_s * RATE)] = 0
    return early, late


def measured_t30(h: np.ndarray) -> float:
    """Reverberation time (s) from the -5..-35 dB decay of the Schroeder integral."""
    import pyroomacoustics as pra

    return float(pra.experimental.measure_rt60(h, RATE, decay_db=30))


# ---------------------------------------------------------------------------------------- conditions


@dataclass
class Recording:
    """A mixture (2, n), its sources' stereo images (S, 2, n), their direct+early parts (or None),
    the late reverberation (2, n, or None), the sources' true stereo azimuths and the delay range
    (samples) of the microphone pair."""

    mix: np.ndarray
    refs: np.ndarray
    early: np.ndarray | None
    late: np.ndarray | None
    azimuths: np.ndarray
    max_delay: float


def pan_potted(ens: Ensemble, rng: np.random.Generator) -> Recording:
    """The sources pan-potted at random stereo azimuths at least `MIN_GAP_DEG` apart."""
    az = pan_positions(rng, len(ens.sources))
    refs = azimuth_gains(az)[:, :, None] * ens.sources[:, None]
    scale = 0.9 / np.abs(refs.sum(axis=0)).max()
    return Recording((refs.sum(axis=0) * scale).astype(np.float32), refs * scale, None, None, az, 0.0)


def in_hall(ens: Ensemble, rng: np.random.Generator, setup: str, rir: np.ndarray, truth: np.ndarray) -> Recording:
    """The sources at random places of `STAGE_GRID` recorded by the pair `setup`."""
    places = rng.choice(len(STAGE_GRID), len(ens.sources), replace=False)
    n = ens.sources.shape[1]
    refs, early, late = [], [], np.zeros((2, n))
    for src, place in zip(ens.sources, places):
        h_early, h_late = split_response(rir[place])
        refs.append(scipy.signal.fftconvolve(src[None], rir[place], axes=-1)[:, :n])
        early.append(scipy.signal.fftconvolve(src[None], h_early, axes=-1)[:, :n])
        late += scipy.signal.fftconvolve(src[None], h_late, axes=-1)[:, :n]
    refs_a = np.stack(refs)
    scale = 0.9 / np.abs(refs_a.sum(axis=0)).max()
    spacing = SETUPS[setup][0]
    return Recording((refs_a.sum(axis=0) * scale).astype(np.float32), refs_a * scale, np.stack(early) * scale,
                     late * scale, truth[places], spacing / 343.0 * RATE * 1.1)


CONDITIONS = {"pan": "pan-potted dry", "spaced": "hall, spaced pair (omnis 60 cm)",
              "ortf": "hall, ORTF (cardioids 17 cm, +-55 deg)"}


# ------------------------------------------------------------------------------------------- scoring


@dataclass
class Scores:
    """Per source: SI-SDR and SI-SDRi (dB) against the reference image and against the direct+early
    part; per mixture: found and true counts, direction errors (degrees) and the ambience share."""

    si_sdr: list[float] = field(default_factory=list)
    si_sdri: list[float] = field(default_factory=list)
    early_si_sdr: list[float] = field(default_factory=list)
    early_si_sdri: list[float] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)
    direction: list[float] = field(default_factory=list)
    ambience: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        med = lambda v: float(np.median(v)) if v else None  # noqa: E731
        return {"si_sdr": med(self.si_sdr), "si_sdri": med(self.si_sdri), "early_si_sdr": med(self.early_si_sdr),
                "early_si_sdri": med(self.early_si_sdri), "count_exact": float(np.mean(self.exact)) if self.exact
                else None, "direction_error": med(self.direction), "ambience_share": med(self.ambience),
                "sources": len(self.si_sdr), "failures": len(self.errors)}


def match(found: Found, rec: Recording, how: str) -> list[tuple[int, int]]:
    """(estimate, true source) pairs: in ``order`` (the method made estimate k for source k), by
    ``azimuth`` (Hungarian on the absolute difference) or by ``si_sdr`` against the reference
    images (Hungarian on its negative)."""
    if len(found.estimates) == 0:
        return []
    if how == "order":
        return [(k, k) for k in range(len(found.estimates))]
    if how == "azimuth":
        cost = np.abs(found.azimuths[:, None] - rec.azimuths[None, :])
    else:
        cost = -np.array([[si_sdr(e, r) for r in rec.refs] for e in found.estimates])
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist()))


def score(scores: Scores, found: Found, rec: Recording, how: str, directions: bool, count_known: bool) -> None:
    """Add one mixture's scores of a method, its estimates matched to the sources `how` (`match`)."""
    pairs = dict((t, e) for e, t in match(found, rec, how))
    early_estimates = found.estimates if found.early_estimates is None else found.early_estimates
    for t, ref in enumerate(rec.refs):
        e = pairs.get(t)
        est = None if e is None else found.estimates[e]
        value = MISSED_DB if est is None else si_sdr(est, ref)
        scores.si_sdr.append(value)
        scores.si_sdri.append(value - si_sdr(rec.mix, ref))
        if rec.early is not None:
            early = MISSED_DB if est is None else si_sdr(early_estimates[e], rec.early[t])
            scores.early_si_sdr.append(early)
            scores.early_si_sdri.append(early - si_sdr(rec.mix, rec.early[t]))
        if directions and found.azimuths is not None and e is not None:
            scores.direction.append(abs(float(found.azimuths[e]) - float(rec.azimuths[t])))
    if not count_known:
        scores.exact.append(len(found.estimates) == len(rec.refs))
    if found.ambience is not None and rec.late is not None:
        scores.ambience.append(float(np.vdot(found.ambience, rec.late) / np.vdot(rec.mix, rec.late)))
    if found.error:
        scores.errors.append(found.error)


METHODS = ("ours", "ours N", "IRM", "spatial", "DUET")


def run_condition(cond: str, ensembles: list[Ensemble], seed: int, split_index: int) -> dict[str, Scores]:
    """Every method's scores on the ensembles recorded one way."""
    rng = np.random.default_rng([seed, split_index, list(CONDITIONS).index(cond)])
    rir = None if cond == "pan" else hall_responses(cond)
    truth = None if cond == "pan" else direct_azimuths(cond)
    scores = {m: Scores() for m in METHODS if SourceSeparator is not None or not m.startswith("ours")}
    for ens in ensembles:
        rec = pan_potted(ens, rng) if cond == "pan" else in_hall(ens, rng, cond, rir, truth)
        count = len(rec.refs)
        how, directions = ("azimuth" if cond == "pan" else "si_sdr"), cond in ("pan", "ortf")
        if SourceSeparator is not None:
            score(scores["ours"], ours(rec.mix, None), rec, how, directions, count_known=False)
            score(scores["ours N"], ours(rec.mix, count), rec, how, directions, count_known=True)
        irm_early = None if rec.early is None else ideal_ratio_masks(rec.mix, rec.early)
        score(scores["IRM"], Found(ideal_ratio_masks(rec.mix, rec.refs), early_estimates=irm_early), rec, "order",
              False, True)
        score(scores["spatial"], Found(spatial_estimates(rec.mix, rec.azimuths)), rec, "order", False, True)
        est, az = duet(rec.mix, count, rec.max_delay)
        score(scores["DUET"], Found(est, az), rec, how, cond == "pan", True)
    return scores


# --------------------------------------------------------------------------------------------- speed


def time_child(path: str) -> None:
    """In a child process: time ours, DUET and spatial on the stereo mixture in `path` (.npy) and
    print one JSON line with their seconds and this process's peak RSS."""
    torch.set_num_threads(2)
    mix = np.load(path)
    out: dict[str, float] = {}
    if SourceSeparator is not None:
        ours(mix[:, :RATE], None)  # warm-up
        start = time.perf_counter()
        found = ours(mix, None)
        out["ours"] = time.perf_counter() - start
        if found.error:
            out["ours_error"] = found.error
        out["ours_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    duet(mix, 4, 0.0)
    out["DUET"] = time.perf_counter() - start
    start = time.perf_counter()
    spatial_estimates(mix, np.array([22.5, 7.5, -7.5, -22.5]))
    out["spatial"] = time.perf_counter() - start
    print(json.dumps(out))


def sources_cli() -> bool:
    """Whether ``upmix separate`` offers ``--model sources``."""
    done = subprocess.run([sys.executable, "-m", "upmix", "separate", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    return "sources" in done.stdout


def speed(ensembles: list[Ensemble], seed: int, seconds: float, long_minutes: int) -> dict:
    """Real-time factors and peak RSS (`time_child`), and the CLI's peak RSS on a long input."""
    rng = np.random.default_rng([seed, 99])
    mixes = [pan_potted(e, rng).mix for e in ensembles]
    n = int(seconds * RATE)
    mix = np.tile(np.concatenate(mixes, axis=1), (1, n // sum(m.shape[1] for m in mixes) + 1))[:, :n]
    result: dict = {"seconds": seconds}
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "mix.npy", mix)
        done = subprocess.run([sys.executable, __file__, "--time-child", str(Path(tmp) / "mix.npy")],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        times = json.loads(done.stdout.strip().splitlines()[-1])
        result.update({f"rtf_{k}": seconds / v for k, v in times.items() if k in ("ours", "DUET", "spatial")})
        result["ours_rss_mb"], result["ours_error"] = times.get("ours_rss_mb"), times.get("ours_error")
        if long_minutes and SourceSeparator is not None and sources_cli():
            import soundfile as sf

            wav = Path(tmp) / "long.wav"
            long = np.tile(mix, (1, int(long_minutes * 60 / seconds) + 1))[:, :long_minutes * 60 * RATE]
            sf.write(wav, long.T, RATE, subtype="PCM_24")
            del long
            measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                       "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "upmix", "separate",
                                   str(wav), "-o", str(Path(tmp) / "stems"), "--model", "sources", "--device", "cpu",
                                   "-q", "-y"], capture_output=True, text=True, env=env)
            elapsed = time.perf_counter() - start
            code, rss = done.stdout.strip().splitlines()[-1].split()
            result["long"] = {"minutes": long_minutes, "exit": int(code), "rss_mb": int(rss) / 1024,
                              "rtf": long_minutes * 60 / elapsed, "stderr": done.stderr.strip()[-500:]}
        else:
            result["long"] = None
    return result


# --------------------------------------------------------------------------------------------- report


def _cell(value: float | None, fmt: str) -> str:
    """`value` formatted by `fmt` (a trailing ``%`` is printed as such), ``-`` for None."""
    return "-" if value is None else format(value, fmt.rstrip("%")) + "%" * fmt.endswith("%")


def percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def print_table(cond: str, split: str, scores: dict[str, Scores]) -> dict[str, dict]:
    """One condition's table; its numbers."""
    hall = cond != "pan"
    print(f"\n### {CONDITIONS[cond]} - {split}\n")
    head = "| method  | SI-SDR | SI-SDRi |" + (" SI-SDR early | SI-SDRi early | ambience |" if hall else "")
    head += " count exact | dir err | sources |"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    out = {}
    for method, s in scores.items():
        r = s.summary()
        out[method] = {**r, "values": asdict(s)}
        row = f"| {method:7} | {_cell(r['si_sdr'], '.2f'):>6} | {_cell(r['si_sdri'], '.2f'):>7} |"
        if hall:
            row += (f" {_cell(r['early_si_sdr'], '.2f'):>12} | {_cell(r['early_si_sdri'], '.2f'):>13} |"
                    f" {_cell(percent(r['ambience_share']), '.1f%'):>8} |")
        exact = r["count_exact"]
        row += (f" {'given' if exact is None else format(100 * exact, '.0f') + '%':>11} |"
                f" {_cell(r['direction_error'], '.2f'):>7} | {r['sources']:7d} |")
        print(row + (f"  ({r['failures']} failed: {s.errors[0]})" if r["failures"] else ""))
    return out


def verdict(ok: bool | None) -> str:
    return "NOT MEASURED" if ok is None else "PASS" if ok else "FAIL"


def summary(results: dict, speed_result: dict | None) -> list[tuple[str, bool | None]]:
    """The issue's targets on the held-out set: (line, passed or None when not measured)."""
    held = results["held-out"]
    get = lambda cond, method, key: held.get(cond, {}).get(method, {}).get(key)  # noqa: E731
    ge = lambda v, t: None if v is None else v >= t  # noqa: E731
    lines = [
        (f"pan-pot: median SI-SDR {_cell(get('pan', 'ours', 'si_sdr'), '.2f')} dB >= {TARGETS['pan_si_sdr']:g}",
         ge(get("pan", "ours", "si_sdr"), TARGETS["pan_si_sdr"])),
        (f"pan-pot: count exact in {_cell(percent(get('pan', 'ours', 'count_exact')), '.0f')} % of mixes >= "
         f"{100 * TARGETS['pan_count']:.0f} %", ge(get("pan", "ours", "count_exact"), TARGETS["pan_count"])),
        (f"pan-pot: median direction error {_cell(get('pan', 'ours', 'direction_error'), '.2f')} deg <= "
         f"{TARGETS['pan_direction']:g}", None if get("pan", "ours", "direction_error") is None
         else get("pan", "ours", "direction_error") <= TARGETS["pan_direction"]),
    ]
    for cond in ("spaced", "ortf"):
        for key, what in (("si_sdri", "reverberant image"), ("early_si_sdri", "direct+early")):
            v = get(cond, "ours", key)
            lines.append((f"{cond}: median SI-SDRi {_cell(v, '.2f')} dB >= {TARGETS['hall_si_sdri']:g} "
                          f"({what} reference)", ge(v, TARGETS["hall_si_sdri"])))
        v = get(cond, "ours", "ambience_share")
        lines.append((f"{cond}: ambience holds {_cell(percent(v), '.1f')} % of the late reverberation >= "
                      f"{100 * TARGETS['ambience']:.0f} %", ge(v, TARGETS["ambience"])))
    rtf = speed_result and speed_result.get("rtf_ours")
    lines.append((f"speed: {_cell(rtf, '.1f')}x real time on 2 threads >= {TARGETS['speed']:g}x",
                  ge(rtf, TARGETS["speed"])))
    long = speed_result and speed_result.get("long")
    rss = long["rss_mb"] / 1024 if long else None
    if not long:
        note = " (not measured: no `upmix separate --model sources`, or --quick)"
    else:
        note = f" (the command failed, exit {long['exit']})" if long["exit"] else ""
    minutes = long["minutes"] if long else LONG_MINUTES
    lines.append((f"memory: {minutes}-minute input peak RSS {_cell(rss, '.2f')} GB < {TARGETS['long_rss_gb']:g} GB"
                  + note, None if rss is None else rss < TARGETS["long_rss_gb"] and long["exit"] == 0))
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixes", type=int, default=8, help="ensembles per split (each recorded all three ways)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of an ensemble, s")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 short ensembles per split, a short speed run")
    ap.add_argument("--time-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.time_child:
        time_child(args.time_child)
        return
    torch.set_num_threads(2)
    mixes, seconds = (2, 4.0) if args.quick else (args.mixes, args.seconds)
    if SourceSeparator is None:
        print("upmix.separation.sources is not there: the `sources` rows are left out, only baselines run")
    works, songs = load_works(), fetch_songs()
    split_works = {s: [w for w in works if is_held_out(w.id) == (s == "held-out")] for s in ("development", "held-out")}
    split_songs = {s: [p for p in songs if is_held_out(song_name(p)) == (s == "held-out")] for s in split_works}
    for s in split_works:
        print(f"{s}: works {', '.join(w.id for w in split_works[s])}; "
              f"songs {', '.join(map(song_name, split_songs[s])) or 'none'}")
    t30 = {setup: measured_t30(hall_responses(setup)[3, 0]) for setup in SETUPS}
    print(f"hall: {' x '.join(map(str, HALL_DIM))} m, Sabine RT60 {HALL_RT60} s; measured T30 at the centre place "
          + ", ".join(f"{k} {v:.2f} s" for k, v in t30.items()))
    results: dict = {"splits": {s: {"works": [w.id for w in split_works[s]],
                                    "songs": [song_name(p) for p in split_songs[s]]} for s in split_works},
                     "t30": t30}
    dev = None
    for index, split in enumerate(split_works):
        ensembles = cached_ensembles(split, split_works[split], split_songs[split], mixes, seconds,
                                     args.seed + index)
        dev = dev or ensembles
        counts = np.bincount([len(e.sources) for e in ensembles], minlength=6)[2:]
        print(f"\n## {split}: {len(ensembles)} ensembles of {seconds:g} s, "
              f"{' '.join(f'{c}x{k + 2}' for k, c in enumerate(counts) if c)} sources")
        results[split] = {}
        for cond in CONDITIONS:
            results[split][cond] = print_table(cond, split, run_condition(cond, ensembles, args.seed, index))
    print("\nSI-SDR and SI-SDRi: median over sources, dB (stereo, channels together); count exact: % of mixes "
          "with the right count (given: the method is told it); dir err: median degrees; ambience: median share "
          "of the late reverberation in the ambience stem. spatial is given the true directions, DUET the true count.")
    speed_result = speed(dev, args.seed, 10.0 if args.quick else SPEED_SECONDS, 0 if args.quick else LONG_MINUTES)
    results["speed"] = speed_result
    print(f"\nspeed on {speed_result['seconds']:g} s of 48 kHz stereo, 2 threads (x real time): "
          + ", ".join(f"{k[4:]} {v:.1f}" for k, v in speed_result.items() if k.startswith("rtf_"))
          + (f"; ours' peak RSS {speed_result['ours_rss_mb']:.0f} MB" if speed_result.get("ours_rss_mb") else "")
          + (f"; ours failed: {speed_result['ours_error']}" if speed_result.get("ours_error") else ""))
    long = speed_result.get("long")
    if long:
        print(f"{long['minutes']}-minute input, `upmix separate --model sources`: exit {long['exit']}, "
              f"peak RSS {long['rss_mb']:.0f} MB, {long['rtf']:.1f}x real time"
              + (f"; it said: {long['stderr']}" if long["exit"] else ""))
    print("\n## Held-out summary against the issue's targets\n")
    lines = summary(results, speed_result)
    for line, ok in lines:
        print(f"- {verdict(ok):12} {line}")
    held = results["held-out"]
    for cond in CONDITIONS:
        o, d = held[cond].get("ours", {}).get("si_sdr"), held[cond]["DUET"]["si_sdr"]
        print(f"- {cond}: median SI-SDR ours {_cell(o, '.2f')} dB, DUET {d:.2f} dB, ours - DUET "
              f"{_cell(None if o is None else o - d, '+.2f')} dB")
    results["summary"] = [{"target": line, "result": verdict(ok)} for line, ok in lines]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
