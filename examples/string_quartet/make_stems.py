"""Synthesise the bundled string-quartet example (a short D-major chorale).

Each part is additive synthesis of a bowed string: a harmonic series with a bowed-string spectral
tilt, a slow bow attack, vibrato that fades in, and a little bow noise. Writes 16-bit FLAC at
44.1 kHz (so the example also exercises resampling to the 48 kHz output): the four stems into
./stems, and a stereo mix, quartet_stereo.flac: the chorale played twice, the parts
amplitude-panned left to right (first violin at 60 % left ... cello at 60 % right) in a synthetic
hall whose reverberation (1.6 s, decorrelated between the channels) is what an upmix finds as
ambience.

    python examples/string_quartet/make_stems.py
"""

from pathlib import Path

import numpy as np

from upmix.io import write

RATE = 44100
BEAT = 1.25  # seconds per chord
# MIDI notes per chord: cello, viola, second violin, first violin
CHORDS = [(50, 57, 66, 74), (43, 59, 67, 74), (45, 57, 64, 73), (50, 57, 66, 74),
          (47, 59, 66, 74), (52, 59, 67, 71), (45, 61, 67, 76), (50, 57, 66, 74)]
PARTS = {"cello": 0, "viola": 1, "violin_2": 2, "violin_1": 3}
PANS = {"violin_1": -0.6, "violin_2": -0.2, "viola": 0.2, "cello": 0.6}  # -1 = hard left


def bowed_note(midi: int, dur: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(dur * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.6 * t + rng.uniform(0, 6.3)) * np.clip(t / 0.4, 0, 1)
    phase = 2 * np.pi * f0 * np.cumsum(vib) / RATE
    tone = np.zeros_like(t)
    for k in range(1, int(min(20000, RATE / 2) / f0)):
        tone += (1.0 / k) * (0.85 ** k + 0.15) * np.sin(k * phase + rng.uniform(0, 6.3))
    env = np.clip(t / 0.12, 0, 1) * np.clip((dur - t) / 0.15, 0, 1)
    noise = rng.standard_normal(len(t)) * 0.02 * env
    return (tone * env + noise).astype(np.float32)


def hall(n_channels: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Decorrelated exponentially decaying noise tails, one per channel, a crude hall."""
    t = np.arange(int(rt60 * RATE)) / RATE
    tails = rng.standard_normal((n_channels, len(t))) * np.exp(-6.9 * t / rt60)
    tails[:, :int(0.02 * RATE)] = 0.0  # pre-delay before the reverberation builds up
    return tails / np.sqrt(np.sum(tails ** 2, axis=1, keepdims=True))


def main() -> None:
    rng = np.random.default_rng(7)
    here = Path(__file__).parent
    (here / "stems").mkdir(exist_ok=True)
    mix = 0.0
    for name, voice in PARTS.items():
        notes = [bowed_note(chord[voice], BEAT * (2 if i == len(CHORDS) - 1 else 1), rng)
                 for i, chord in enumerate(CHORDS)]
        x = np.concatenate(notes)
        x *= 0.25 / np.max(np.abs(x))
        write(here / "stems" / f"{name}.flac", x[None], RATE, "PCM_16")
        print(f"wrote {here / 'stems' / name}.flac ({len(x) / RATE:.2f} s)")
        angle = (PANS[name] + 1) * np.pi / 4
        twice = np.concatenate([x, x])
        mix = mix + np.stack([np.cos(angle) * twice, np.sin(angle) * twice])
    tails = hall(2, 1.6, rng)
    wet = np.stack([np.convolve(mix[c], tails[c])[:mix.shape[1] + RATE] for c in range(2)])
    stereo = np.pad(mix, ((0, 0), (0, RATE))) + 0.5 * wet
    stereo *= 0.5 / np.max(np.abs(stereo))
    write(here / "quartet_stereo.flac", stereo.astype(np.float32), RATE, "PCM_16")
    print(f"wrote {here / 'quartet_stereo.flac'} ({stereo.shape[1] / RATE:.2f} s)")


if __name__ == "__main__":
    main()
