"""Modelled instruments: every part played by a new, randomly drawn instrument of its family.

A separator trained on a few sound sets (SoundFonts, a set of recordings) learns each set as a
set and carries little of it to sets it has not heard (``docs/separation.md``). `FamilySynth`
is domain randomisation for that gap: it needs no samples, and for every part it draws a fresh
instrument from a model of its kind, in which what makes a family a family (how a note starts,
sustains and ends; which harmonics it has; how its brightness follows its loudness; its noise and
its vibrato) is kept and everything else (spectral envelope, resonances, roll-off, times) is drawn
at random:

- bowed strings: a full harmonic series through a body of many narrow random resonances, which a
  vibrato (mostly present, starting late) sweeps the harmonics through; bow noise; slow attack;
  tremolo and ensembles of detuned players; pizzicato as a plucked string.
- woodwinds: flutes (few harmonics, breath noise, a chiff at the onset), clarinets (odd harmonics
  below a cut-off), double reeds and saxophones (a full series through one or two strong
  formants); quick attack, little vibrato.
- brass: the upper harmonics enter after the lower ones, the spectrum is brighter the louder the
  note, a formant whose place depends on the instrument's size, a pitch scoop at the onset;
  mutes.
- other: struck and plucked strings (decaying partials, upper ones faster; piano strings
  inharmonic; a plucking point that combs the spectrum), mallets and timpani (inharmonic partial
  ratios), organs (steady, switched on and off) and voices (vowel formants, vibrato, choirs).

Partials are summed as sinusoids per note (vectorised over partials and samples), capped below
0.45 of the sample rate so that nothing aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from .programs import TABLE

SET_NAME = "modelled-instruments"
"""The name a `FamilySynth` gives excerpt descriptions, and its entry in `data.SOUNDFONTS`."""

KIND_OF_PROGRAM: dict[int, str] = {p.number: p.kind for p in TABLE}
"""The modelled kind of instrument that plays each General MIDI program (0-based), from `programs.TABLE`."""

_GRID = np.linspace(np.log2(30.0), np.log2(12000.0), 160)  # log2 Hz of the spectral envelopes
_MALLETS = ((1.0, 3.93, 9.7), (1.0, 4.0, 9.2), (1.0, 4.0, 10.0), (1.0, 2.76, 5.4, 8.93), (1.0, 2.0, 3.0, 4.2))
_REED_FORMANTS = {68: ((900, 1500), (2400, 3600)), 69: ((600, 1100), (2000, 3000)), 70: ((350, 600), (900, 1400))}
"""Hz ranges of the two main formants of the oboe, the English horn and the bassoon (saxophones: the default)."""
_BRASS_FORMANTS = {56: (1000, 1600), 57: (450, 900), 58: (200, 400), 59: (1000, 1600), 60: (300, 700),
                   61: (600, 1400)}
"""Hz range of the main formant of each brass program: the larger the bell, the lower."""
_TIMPANI = (1.0, 1.5, 1.98, 2.44, 2.89, 3.33)


def _resonance(centre: np.ndarray | float, db: np.ndarray | float, octaves: np.ndarray | float) -> np.ndarray:
    """Gaussian bumps (in log frequency) on `_GRID` (dB): `db` high at log2 Hz `centre`, `octaves`
    wide (standard deviation); array arguments broadcast against the grid's last axis."""
    return db * np.exp(-0.5 * ((_GRID - centre) / octaves) ** 2)


def _bumps(rng: np.random.Generator, count: int, lo_hz: float, hi_hz: float, db: float,
           octaves: tuple[float, float]) -> np.ndarray:
    """A random envelope on `_GRID` (dB): the sum of `count` resonances of ±`db` between `lo_hz`
    and `hi_hz`, `octaves` wide."""
    centres = rng.uniform(np.log2(lo_hz), np.log2(hi_hz), count)
    gains = rng.uniform(-db, db, count)
    widths = rng.uniform(*octaves, count)
    return _resonance(centres[:, None], gains[:, None], widths[:, None]).sum(axis=0)


def _body(rng: np.random.Generator) -> np.ndarray:
    """The body of a bowed or plucked string instrument: 10-23 narrow resonances of ±9 dB (dB on `_GRID`)."""
    return _bumps(rng, int(rng.integers(10, 24)), 150, 6000, 9, (0.03, 0.15))


@dataclass(frozen=True)
class Instrument:
    """A modelled instrument: what `FamilySynth.note` plays. Levels in dB, times in seconds,
    frequencies in Hz, pitch deviations in cents."""

    kind: str  # a value of `KIND_OF_PROGRAM`
    envelope: np.ndarray  # spectral envelope on `_GRID` (dB), read at each partial's frequency
    slope: float = 1.0  # roll-off of the partials: amplitude ∝ k^-slope
    bright: float = 0.0  # added to `slope` at velocity 0, in proportion (1 - velocity / 127)
    odd: float = 1.0  # amplitude of even harmonics below `odd_cut` (clarinets)
    odd_cut: float = np.inf
    pluck: float = 0.0  # plucking or striking point, a fraction of the string (0: none)
    stretch: float = 0.0  # inharmonicity B: partial k at k f0 sqrt(1 + B k²)
    ratios: np.ndarray | None = None  # partial frequencies / f0 where not harmonic (mallets, organ stops)
    levels: np.ndarray | None = None  # their levels (dB)
    lowcut: float = 0.0  # the fundamental lowered by this much (dB)
    attack: float = 0.03  # time constant of a sustained note's onset
    spread: float = 0.0  # partial k's attack is attack (1 + spread (k - 1)): brass blooms
    release: float = 0.08  # time constant after the note-off
    decay: tuple[float, float] | None = None  # (fast / slow ratio, slow rate 1/s) of struck and plucked notes
    rings: bool = False  # a plucked note rings on after its note-off (harp, guitar)
    vibrato: float = 0.0  # depth (cents; 0: none)
    rate: float = 5.5  # vibrato rate
    delay: float = 0.0  # vibrato onset after the note's (reached over 0.3 s)
    tremolo: tuple[float, float] | None = None  # (depth 0-1, rate Hz) of an amplitude modulation
    scoop: float = 0.0  # pitch scoop from below at the onset (cents)
    noise: float = -80.0  # breath, bow or hammer noise relative to the tone (dB; -80: none)
    noise_band: tuple[float, float] = (1000.0, 5000.0)
    chiff: float = 0.0  # time constant of an onset noise burst (0: none)
    players: int = 1  # an ensemble of this many, each detuned and a little late


class FamilySynth:
    """Plays note lists with a new modelled instrument per part (see the module docstring), behind
    the interface of `data.PartSynth`.

    Args:
        sample_rate: Hz.
        seed: seed of the instruments' random draws.
    """

    def __init__(self, sample_rate: int, seed: int = 0) -> None:
        self.sample_rate, self.name = sample_rate, SET_NAME
        self.rng = np.random.default_rng(seed)

    def instrument(self, program: int) -> Instrument:
        """A random instrument of `program`'s kind (`KIND_OF_PROGRAM`)."""
        rng, kind = self.rng, KIND_OF_PROGRAM[program]
        p = {"envelope": _bumps(rng, 6, 100, 8000, 4, (0.3, 1.0))}
        u = rng.uniform
        if kind in ("bowed", "tremolo", "ensemble"):
            p.update(slope=u(0.7, 1.3), attack=u(0.04, 0.2), spread=u(0.0, 0.3), release=u(0.05, 0.2),
                     noise=u(-34, -20), noise_band=(u(1500, 4000), u(5000, 9000)),
                     vibrato=u(8, 35) if rng.random() < 0.85 else 0.0, rate=u(4.5, 7.0), delay=u(0.0, 0.4))
            p["envelope"] = p["envelope"] + _body(rng)
            if kind == "tremolo":
                p["tremolo"] = (u(0.5, 0.9), u(8, 14))
            if kind == "ensemble":
                p.update(players=int(rng.integers(3, 6)), attack=u(0.08, 0.5))
        elif kind == "pizzicato":
            p.update(slope=u(1.4, 2.2), decay=(u(4, 10), u(0.3, 1.2)), release=u(0.05, 0.15), pluck=u(0.1, 0.3),
                     noise=u(-30, -20), noise_band=(u(500, 2000), u(3000, 7000)), chiff=u(0.01, 0.03))
            p["envelope"] = p["envelope"] + _body(rng)
        elif kind == "flute":
            p.update(slope=u(2.0, 3.5), attack=u(0.03, 0.1), release=u(0.04, 0.12), noise=u(-26, -14),
                     noise_band=(u(800, 2000), u(4000, 9000)), chiff=u(0.02, 0.06),
                     vibrato=u(5, 20) if rng.random() < 0.5 else 0.0, rate=u(4.5, 6.0), delay=u(0.1, 0.3))
        elif kind == "clarinet":
            p.update(slope=u(0.2, 0.6), odd=u(0.03, 0.2), odd_cut=u(1200, 2600), attack=u(0.02, 0.06),
                     release=u(0.03, 0.1), noise=u(-36, -26), noise_band=(1000.0, 6000.0))
            p["envelope"] = p["envelope"] - u(3, 8) * np.clip(_GRID - np.log2(p["odd_cut"]), 0, None)
        elif kind in ("reed", "sax"):
            low, high = _REED_FORMANTS.get(program, ((400, 1000), (1400, 2800)))
            p.update(slope=u(0.6, 1.1), attack=u(0.02, 0.06), release=u(0.03, 0.1), noise=u(-34, -22),
                     noise_band=(u(1000, 2000), u(4000, 8000)), lowcut=u(0.0, 12.0),
                     vibrato=u(5, 20) if rng.random() < 0.4 else 0.0, rate=u(4.5, 6.5), delay=u(0.1, 0.3))
            p["envelope"] = (p["envelope"] + _resonance(np.log2(u(*low)), u(8, 18), u(0.2, 0.5))
                             + _resonance(np.log2(u(*high)), u(4, 12), u(0.2, 0.4)))
        elif kind in ("brass", "muted", "section"):
            p.update(slope=u(0.0, 0.5), bright=u(1.0, 2.0), attack=u(0.01, 0.04), spread=u(0.15, 0.4),
                     release=u(0.04, 0.12), scoop=u(10, 50), noise=u(-40, -30), noise_band=(500.0, 4000.0),
                     vibrato=u(3, 12) if rng.random() < 0.15 else 0.0, rate=u(4.5, 6.0))
            centre = np.log2(u(*_BRASS_FORMANTS[program]))  # a flat series up to it, a steep roll-off above
            p["envelope"] = p["envelope"] + _resonance(centre, u(4, 10), u(0.3, 0.7)) - u(
                6, 14) * np.clip(_GRID - centre, 0, None)
            if kind == "muted":
                p["envelope"] = p["envelope"] + _resonance(np.log2(u(1500, 3000)), u(12, 20), u(0.2, 0.4))
                p["envelope"] = p["envelope"] - u(6, 12) * np.clip(np.log2(800) - _GRID, 0, None)
            if kind == "section":
                p["players"] = int(rng.integers(2, 5))
        elif kind == "piano":
            p.update(slope=u(0.8, 1.5), bright=u(0.3, 0.8), stretch=float(np.exp(u(np.log(5e-5), np.log(6e-4)))),
                     decay=(u(1.5, 5), u(0.2, 0.8)), release=u(0.08, 0.2), pluck=u(0.08, 0.15),
                     noise=u(-30, -18), noise_band=(u(100, 400), u(1500, 5000)), chiff=u(0.005, 0.02))
        elif kind == "pluck":
            p.update(slope=u(0.3, 1.2), decay=(u(1.5, 8), u(0.3, 1.5)), release=u(0.1, 1.0), pluck=u(0.05, 0.3),
                     stretch=u(0, 5e-5), noise=u(-32, -20), noise_band=(u(1000, 3000), u(5000, 9000)),
                     chiff=u(0.003, 0.015))
            p["rings"] = p["release"] >= 0.5
        elif kind in ("mallet", "timpani"):
            ratios = np.array(_TIMPANI if kind == "timpani" else _MALLETS[rng.integers(len(_MALLETS))])
            ratios[1:] *= 1 + rng.uniform(-0.02, 0.02, len(ratios) - 1)  # overtones a little off their ideal ratios
            p.update(ratios=ratios, levels=rng.uniform(-20, 0, len(ratios)), slope=0.0,
                     decay=(u(2, 10) if kind == "mallet" else u(1, 3), u(0.5, 2.0)),
                     release=u(0.3, 1.0), noise=u(-26, -14), noise_band=(u(200, 2000), u(3000, 8000)),
                     chiff=u(0.003, 0.02), tremolo=(u(0.2, 0.6), u(4, 8)) if rng.random() < 0.25 else None)
        elif kind == "organ":
            if rng.random() < 0.5:  # a flue organ: stops of 8' to 1' (harmonics 1-8 of the note) at random levels
                p.update(ratios=np.array([1.0, 2, 3, 4, 5, 6, 8]), levels=rng.uniform(-40, 0, 7))
                p["levels"][0] = 0.0
            else:  # a reed organ: a full series, odd harmonics stronger
                p.update(slope=u(0.5, 1.2), odd=u(0.3, 1.0))
            p.update(attack=u(0.005, 0.03), release=u(0.01, 0.05), noise=u(-50, -36))
        elif kind == "voice":
            p.update(slope=u(1.0, 1.6), attack=u(0.05, 0.2), release=u(0.08, 0.2), noise=u(-34, -24),
                     noise_band=(2000.0, 8000.0), vibrato=u(15, 60) if rng.random() < 0.7 else 0.0,
                     rate=u(4.5, 6.5), delay=u(0.1, 0.4), players=int(rng.integers(1, 7)))
            p["envelope"] = (p["envelope"] + _resonance(np.log2(u(300, 800)), u(12, 20), u(0.15, 0.3))
                             + _resonance(np.log2(u(800, 2200)), u(8, 16), u(0.12, 0.25))
                             + _resonance(np.log2(u(2300, 3200)), u(4, 12), u(0.1, 0.2)))
        return Instrument(kind, **p)

    def note(self, p: Instrument, f0: float, held: int, length: int, velocity: float) -> np.ndarray:
        """One note (length,) float32 of instrument `p` at `f0` Hz, held for `held` samples; its
        release or decay fills the rest."""
        rng, rate = self.rng, self.sample_rate
        t = np.arange(length, dtype=np.float32) / rate
        loud = velocity / 127
        if p.ratios is not None:
            ratios = np.asarray(p.ratios, dtype=np.float32)
        else:
            k = np.arange(1, 81, dtype=np.float32)
            ratios = k * np.sqrt(1 + p.stretch * k ** 2)
        ratios = ratios[ratios * f0 < 0.45 * rate / (1 + p.vibrato / 1200 + 0.01)]
        if not len(ratios):
            return np.zeros(length, dtype=np.float32)
        k = np.arange(1, len(ratios) + 1, dtype=np.float32)
        slope = p.slope + p.bright * (1 - loud)  # brass and pianos are brighter when loud
        if p.levels is not None:
            db = p.levels[:len(ratios)] - 20 * slope * np.log10(np.maximum(ratios, 1))
        else:
            db = -20 * slope * np.log10(k) + 20 * np.log10(np.where((k % 2 == 0) & (k * f0 < p.odd_cut),
                                                                    p.odd, 1.0))
            if p.pluck:  # a string plucked or struck at a fraction of its length has no harmonics there
                db = db + 20 * np.log10(np.abs(np.sin(np.pi * k * p.pluck)) + 0.05)
        db = db - p.lowcut * (ratios == 1)
        deviation = np.zeros(length, dtype=np.float32)  # relative pitch deviation
        if p.vibrato:
            ramp = np.clip((t - p.delay) / 0.3, 0, 1)
            deviation += ramp * (2 ** (p.vibrato / 1200) - 1) * np.sin(
                2 * np.pi * p.rate * (1 + rng.uniform(-0.05, 0.05)) * t + rng.uniform(0, 2 * np.pi))
        if p.scoop:
            deviation += (2 ** (-p.scoop * rng.uniform(0.5, 1.0) / 1200) - 1) * np.exp(-t / 0.04)
        phase = 2 * np.pi * f0 * np.cumsum(1 + deviation) / rate
        partial_hz = ratios[:, None] * f0 * (1 + deviation[None, ::64])  # envelope read every 64 samples
        envelope = np.interp(np.log2(partial_hz), _GRID, p.envelope)
        level = 10 ** ((db[:, None] + envelope) / 20)
        level = np.repeat(level, 64, axis=1)[:, :length]
        if p.decay is not None:  # struck or plucked: each partial decays, the upper ones faster
            fast, slow = p.decay
            rates = slow * (1 + (ratios * f0 / 1000) ** 1.2 * rng.uniform(0.5, 2.0))
            shape = 0.6 * np.exp(-np.outer(rates * fast, t)) + 0.4 * np.exp(-np.outer(rates, t))
            damp = np.exp(-np.clip(t - held / rate, 0, None) / p.release)
            shape = shape if p.rings else shape * damp
        else:  # sustained: an attack (later for upper partials), then a release after the note-off
            attack = p.attack * (1 + p.spread * (k - 1))[:, None]
            shape = (1 - np.exp(-t[None] / attack)) * np.exp(-np.clip(t - held / rate, 0, None) / p.release)
        if p.tremolo:
            depth, hz = p.tremolo
            shape = shape * (1 - depth * 0.5 * (1 - np.cos(2 * np.pi * hz * t)))
        start = rng.uniform(0, 2 * np.pi, len(ratios)).astype(np.float32)
        out = (level * shape * np.sin(ratios[:, None] * phase[None] + start[:, None])).sum(axis=0)
        if p.noise > -80:
            out = out + self._noise(p, out, t, held)
        return out.astype(np.float32)

    def _noise(self, p: Instrument, tone: np.ndarray, t: np.ndarray, held: int) -> np.ndarray:
        """Band-limited noise (breath, bow, hammer) following the note's level, plus an onset burst."""
        lo, hi = p.noise_band
        hi = min(hi, 0.45 * self.sample_rate)
        sos = scipy.signal.butter(2, [lo, hi], btype="band", fs=self.sample_rate, output="sos")
        noise = scipy.signal.sosfilt(sos, self.rng.standard_normal(len(t))).astype(np.float32)
        noise /= np.sqrt((noise ** 2).mean()) + 1e-9
        rms = np.sqrt((tone[:max(held, 1)] ** 2).mean())
        follow = np.clip(np.abs(scipy.signal.sosfilt(scipy.signal.butter(1, 20, fs=self.sample_rate, output="sos"),
                                                    np.abs(tone))) / (rms + 1e-9), 0, 2)
        burst = 8 * np.exp(-t / p.chiff) if p.chiff else 0.0
        return (10 ** (p.noise / 20) * rms * noise * (follow + burst)).astype(np.float32)

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32 played by a new instrument of `program`'s kind: notes at
        `onsets` for `durations` seconds, MIDI `pitches`, velocities 1-127 as amplitude
        (velocity / 127)²; an ensemble is several such players, each slightly detuned."""
        rate = self.sample_rate
        p = self.instrument(program)
        out = np.zeros(length, dtype=np.float32)
        tail = 5 * p.release if p.decay is None else 3.0
        for player in range(p.players):
            detune = 2 ** (self.rng.uniform(-12, 12) / 1200) if p.players > 1 else 1.0
            lag = self.rng.uniform(0, 0.03) if p.players > 1 else 0.0
            for onset, duration, pitch, velocity in zip(onsets, durations, pitches, velocities):
                start = max(int(round((onset + lag) * rate)), 0)
                held = int(round((onset + lag + duration) * rate)) - start
                if start >= length or held <= 0:
                    continue
                n = min(held + int(tail * rate), length - start)
                f0 = 440.0 * 2 ** ((pitch - 69) / 12) * detune
                out[start:start + n] += (velocity / 127) ** 2 * self.note(p, f0, held, n, velocity)
        return out
