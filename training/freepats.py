"""Parts played by the FreePats General MIDI patch set through TiMidity++.

FreePats (GPL-2, Debian ``freepats``) is a set of Gravis UltraSound patches (``.pat``), a format
FluidSynth does not read; TiMidity++ (Debian ``timidity``) is the player made for it, so
`PatchSynth` writes each part as a standard MIDI file and renders it with the ``timidity``
program. `sharing.shared_waves` finds some of the patches' sample data in the test SoundFonts
(``python -m training.freepats``),
and `PatchSynth` never plays those programs (`SHARED`). TiMidity++ always reads its system
configuration first (on Debian it loads FluidR3_GM for every program); FreePats' configuration is
read after it and replaces the programs it defines, and `PatchSynth` plays only those, so nothing
of another bank sounds. Reverb and chorus are off, so the parts add up to the mix exactly.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from upmix.errors import UpmixError

from .programs import PROGRAMS, SOUNDFONT_DIRS, TABLE
from .sharing import shared_waves, soundfont_samples

SET_NAME = "freepats"
"""The name a `PatchSynth` gives excerpt descriptions, and its entry in `data.SOUNDFONTS`."""

PATCHES = Path("/usr/share/midi/freepats")
CONFIG = Path("/etc/timidity/freepats.cfg")
INSTALL = "apt-get install timidity freepats"

SHARED = frozenset({46, 69, 73, 74})
"""General MIDI programs (0-based) whose FreePats patch has sample data that the test banks have
too (harp, English horn, flute, recorder; ``docs/separation.md``): never played."""

STAND_INS = {p.number: p.freepats for p in TABLE if p.freepats is not None}
"""General MIDI programs (0-based) FreePats lacks or must not play (`SHARED`), and the program of
the same family that plays them: viola, contrabass and slow strings by violin, cello and strings;
vibraphone and marimba by xylophone; reed organ by church organ; choir by voice; harp by nylon
guitar; English horn by oboe; flute and recorder by piccolo."""


def available() -> bool:
    """Whether the ``timidity`` program and the FreePats patches are installed here."""
    return shutil.which("timidity") is not None and CONFIG.exists() and PATCHES.is_dir()


def programs(config: Path = CONFIG) -> set[int]:
    """The melodic programs (bank 0, 0-based) a TiMidity++ configuration defines."""
    melodic = config.read_text().split("bank 0", 1)[-1]
    return {int(m) for m in re.findall(r"^\s*(\d+)\s+\S+\.pat", melodic, re.MULTILINE)}


def patch_waves(path: Path) -> list[np.ndarray]:
    """The waves of a Gravis UltraSound patch with one instrument and one layer (as FreePats'
    are), as int16 sample data at their own rates."""
    data = path.read_bytes()
    if not data.startswith(b"GF1PATCH"):
        raise UpmixError("not a Gravis UltraSound patch", path)
    waves, at = [], 129 + 63 + 47  # the patch, instrument and layer headers
    while at + 96 <= len(data):
        size, modes = struct.unpack_from("<I", data, at + 8)[0], data[at + 55]
        raw = data[at + 96:at + 96 + size]
        at += 96 + size
        if modes & 1:  # 16-bit, else 8-bit; bit 1: unsigned
            x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<u2" if modes & 2 else "<i2").astype(np.int32)
            x = x - 32768 if modes & 2 else x
        else:
            x = np.frombuffer(raw, dtype=np.uint8 if modes & 2 else np.int8).astype(np.int32)
            x = (x - 128 if modes & 2 else x) * 256
        waves.append(x.astype(np.int16))
    return waves


def _number(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def midi_file(events: list[tuple[int, int, int, int]], program: int) -> bytes:
    """A one-track standard MIDI file at 1000 ticks a second: `events` are (millisecond, status,
    data, data) channel messages, played on channel 1 after a program change to `program`."""
    track = bytearray(b"\x00\xff\x51\x03" + (500_000).to_bytes(3, "big") + bytes([0, 0xC0, program]))
    now = 0
    for when, *message in sorted(events):
        track += _number(when - now) + bytes(message)
        now = when
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 500) + b"MTrk" + struct.pack(">I", len(track)) + track


class PatchSynth:
    """Plays note lists with the FreePats patches through TiMidity++, reverb and chorus off.

    Args:
        sample_rate: Hz.
    """

    def __init__(self, sample_rate: int) -> None:
        if not available():
            raise UpmixError(f"TiMidity++ or the FreePats patches are not installed ({INSTALL})", CONFIG)
        self.sample_rate, self.name = sample_rate, SET_NAME
        self._programs = programs()

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32: notes at `onsets` for `durations` seconds, MIDI `pitches`
        and velocities 1-127, General MIDI `program` (0-based; `STAND_INS` plays those FreePats lacks).
        Note events fall on whole milliseconds."""
        program = STAND_INS.get(program, program)
        if program not in self._programs:
            raise UpmixError(f"FreePats has no patch for program {program}", CONFIG)
        end = int(length * 1000 / self.sample_rate)
        events = [(min(max(round(t * 1000), 0), end), 0x90, int(p), int(v))
                  for t, p, v in zip(onsets, pitches, velocities)]
        events += [(min(max(round((t + d) * 1000), 0), end), 0x80, int(p), 0)
                   for t, d, p in zip(onsets, durations, pitches)]
        with tempfile.NamedTemporaryFile(suffix=".mid") as f:
            f.write(midi_file(events, program))
            f.flush()
            done = subprocess.run(["timidity", "-L", str(PATCHES), "-c", str(CONFIG), "-s", str(self.sample_rate),
                                   "-Or1slM", "-o", "-", "-EFreverb=d", "-EFchorus=d", "-EFns=0", "--preserve-silence",
                                   "--quiet=2", f.name], capture_output=True, check=False)
        if done.returncode != 0:
            raise UpmixError(f"timidity failed: {done.stderr.decode(errors='replace').strip()[:200]}", CONFIG)
        x = np.frombuffer(done.stdout[: len(done.stdout) // 2 * 2], dtype="<i2")[:length]
        return np.pad(x.astype(np.float32) / 32768.0, (0, length - len(x)))


def main(argv: list[str] | None = None) -> None:
    """Print which FreePats programs the excerpts play have sample data in each given SoundFont."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training.freepats", description=main.__doc__)
    ap.add_argument("soundfonts", nargs="*", type=Path,
                    default=[SOUNDFONT_DIRS[0] / "TimGM6mb.sf2", SOUNDFONT_DIRS[0] / "sf_GMbank.sf2"])
    args = ap.parse_args(argv)
    played = sorted({STAND_INS.get(p, p) for family in PROGRAMS.values() for p, _, _ in family} | SHARED)
    patches = {int(p.name[:3]): p for p in (PATCHES / "Tone_000").glob("*.pat")}
    for soundfont in args.soundfonts:
        samples = soundfont_samples(soundfont)
        for program in played:
            runs = shared_waves(patch_waves(patches[program]), samples)
            if runs:
                print(f"{soundfont.name}: program {program} ({patches[program].stem}), waves {runs}", flush=True)


if __name__ == "__main__":
    main()
