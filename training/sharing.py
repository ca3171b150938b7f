"""Whether a training sound set holds sample data that a test SoundFont has too.

A training bank that shares samples with a test bank would let the held-out test score what the
model has heard. Several free General MIDI banks were assembled from the same older free samples,
so every bank added to training is checked first (``python -m training.sharing BANK.sf2``;
``python -m training.freepats`` for the FreePats patches): `shared_waves` looks up
stretches of each of its waves in a test SoundFont's sample data by normalised cross-correlation,
at any gain. Limit: a copy that was resampled or filtered on its way into the other bank is not
found.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.signal

from upmix.errors import UpmixError

from .programs import PROGRAMS, SOUNDFONT_DIRS


def _chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(kind, offset of the body, size of the body) of each RIFF chunk from `start` to `end`."""
    at = start
    while at + 8 <= end:
        kind, size = data[at:at + 4], struct.unpack_from("<I", data, at + 4)[0]
        yield kind, at + 8, size
        at += 8 + size + size % 2


def _list(data: bytes, kind: bytes) -> dict[bytes, bytes]:
    """The sub-chunks of a SoundFont's top-level LIST chunk of `kind` (``sdta``, ``pdta``); {} if absent."""
    for name, at, size in _chunks(data, 12, len(data)):
        if name == b"LIST" and data[at:at + 4] == kind:
            return {sub: data[a:a + s] for sub, a, s in _chunks(data, at + 4, at + size)}
    return {}


def _samples(data: bytes, path: Path) -> np.ndarray:
    smpl = _list(data, b"sdta").get(b"smpl")
    if smpl is None:
        raise UpmixError("no sample data (sdta/smpl) in this SoundFont", path)
    return np.frombuffer(smpl, dtype="<i2")


def soundfont_samples(path: Path) -> np.ndarray:
    """All sample data (int16) of a .sf2 SoundFont: its ``sdta`` list's ``smpl`` chunk."""
    return _samples(path.read_bytes(), path)


def program_waves(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """The waves each melodic General MIDI program (bank 0, 0-based) of a .sf2 SoundFont plays:
    {program: {sample name: int16 sample data at its own rate}}, through the preset's instrument
    zones to their samples."""
    data = path.read_bytes()
    smpl, pdta = _samples(data, path), _list(data, b"pdta")
    if not {b"phdr", b"pbag", b"pgen", b"inst", b"ibag", b"igen", b"shdr"} <= pdta.keys():
        raise UpmixError("no preset data (pdta) in this SoundFont", path)

    def records(kind: bytes, fmt: str) -> list[tuple]:
        return list(struct.iter_unpack(fmt, pdta[kind]))

    presets = records(b"phdr", "<20sHHHIII")
    pbag, pgen = records(b"pbag", "<HH"), records(b"pgen", "<HH")
    insts, ibag, igen = records(b"inst", "<20sH"), records(b"ibag", "<HH"), records(b"igen", "<HH")
    shdr = records(b"shdr", "<20sIIIIIBbHH")

    def generated(bags: list[tuple], gens: list[tuple], first: int, last: int, operator: int) -> set[int]:
        """The amounts of `operator` in the generators of zones `first` to `last` (exclusive)."""
        return {amount for z in range(first, last) for op, amount in gens[bags[z][0]:bags[z + 1][0]] if op == operator}

    out: dict[int, dict[str, np.ndarray]] = {}
    for p in range(len(presets) - 1):  # the last record is the terminal one
        _, program, bank, first, *_ = presets[p]
        if bank != 0:
            continue
        waves = out.setdefault(program, {})
        for i in generated(pbag, pgen, first, presets[p + 1][3], 41):  # 41: instrument
            for s in generated(ibag, igen, insts[i][1], insts[i + 1][1], 53):  # 53: sampleID
                name, start, end = shdr[s][0].split(b"\0")[0].decode(errors="replace"), shdr[s][1], shdr[s][2]
                waves[name] = smpl[start:end]
    return out


def shared_waves(waves: list[np.ndarray], samples: np.ndarray, least: int = 512, window: int = 256) -> dict[int, int]:
    """Which `waves` a SoundFont's `samples` hold a copy of, at any gain but not resampled: for
    each wave, a 512-sample stretch at four places is looked up in `samples` (normalised
    cross-correlation) and, at its best match, the longest run of `window`-sample windows that
    correlate above 0.99 is measured. Returns {wave index: run in samples} for runs of at least `least`."""
    d = samples.astype(np.float64)
    power = np.concatenate([[0.0], np.cumsum(d * d)])
    energy = np.sqrt(np.maximum(power[512:] - power[:-512], 1e-9))  # of each 512-sample stretch of `d`
    found = {}
    for k, x in enumerate(w.astype(np.float64) for w in waves):
        longest = 0
        for a in np.linspace(0, max(len(x) - 512, 0), 4).astype(int):
            probe = x[a:a + 512]
            if len(probe) < 512 or np.abs(probe).max() < 256:
                continue
            shift = int(np.argmax(scipy.signal.oaconvolve(d, probe[::-1], "valid") / energy)) - a
            run = 0
            for w in range(max(0, -shift), min(len(x), len(d) - shift) - window + 1, window):
                ours, theirs = x[w:w + window], d[w + shift:w + shift + window]
                alike = ours @ theirs > 0.99 * np.linalg.norm(ours) * np.linalg.norm(theirs) and np.abs(ours).max() > 64
                run = run + window if alike else 0
                longest = max(longest, run)
        if longest >= least:
            found[k] = longest
    return found


def main(argv: list[str] | None = None) -> None:
    """Print, per program the excerpts play, the waves of a .sf2 bank that each test SoundFont holds."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training.sharing", description=main.__doc__)
    ap.add_argument("bank", type=Path)
    ap.add_argument("--test", nargs="+", type=Path,
                    default=[SOUNDFONT_DIRS[0] / "TimGM6mb.sf2", SOUNDFONT_DIRS[0] / "sf_GMbank.sf2"])
    args = ap.parse_args(argv)
    try:
        waves = program_waves(args.bank)
        for soundfont in args.test:
            samples = soundfont_samples(soundfont)
            for program in sorted({p for family in PROGRAMS.values() for p, _, _ in family}):
                names = sorted(waves.get(program, {}))
                runs = shared_waves([waves[program][n] for n in names], samples)
                if runs:
                    found = ", ".join(f"{names[k]} {r}" for k, r in runs.items())
                    print(f"{soundfont.name}: program {program}, {found}", flush=True)
    except (OSError, UpmixError) as e:
        ap.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
