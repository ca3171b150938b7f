"""Speed and memory of `upmix run` (stereo 48 kHz -> 5.1 and 7.1.4) against ffmpeg's `surround` filter.

The input is real music: the tracks of Debian's ``wesnoth-1.16-music`` (as `upmix_real.py` fetches
them) strung together to 60 s and to 10 minutes, peak-normalised to 0.95; where the package cannot
be had, the synthetic test signal of `make_input` (panned tones, noise bursts, a decorrelated bed),
and the table says so. On the same file, in the same run, interleaved and repeated:

- ``upmix run IN -o OUT -f 5.1`` and ``-f 7.1.4`` (24-bit WAV and its report): the whole process's
  wall time (start-up included) and peak RSS;
- ``ffmpeg -i IN -af surround=chl_out=5.1 OUT`` and ``chl_out=7.1`` (16-bit WAV): the same.

Prints the median over the repeats, real-time factors, and upmix's time over ffmpeg's (5.1 against
5.1, 7.1.4 against 7.1) with the issue's targets: at most 1.0 for 10 minutes, 1.5 for 60 s.

    python benchmarks/upmix_speed.py [--durations 60 600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs import timed

RATE = 48000
TARGETS = {60.0: 1.5, 600.0: 1.0}
"""Issue 28's ceilings on upmix's time over ffmpeg's, by input length in seconds."""
PAIRS = (("5.1", "5.1"), ("7.1.4", "7.1"))
"""(upmix format, the ffmpeg `surround` layout it is compared with)."""


def make_input(path: Path, seconds: float) -> None:
    """Write a synthetic stereo test file of `seconds` block by block (bounded memory)."""
    import numpy as np

    from upmix.io import AudioWriter

    rng = np.random.default_rng(1)
    block = RATE
    with AudioWriter(path, RATE, 2, "PCM_24") as w:
        for k in range(int(seconds)):
            t = (k * block + np.arange(block)) / RATE
            p = np.sin(2 * np.pi * 0.05 * t)  # a source sweeping slowly across the stage
            tone = 0.1 * np.sin(2 * np.pi * (220 + 30 * (k % 7)) * t)
            bed = 0.03 * rng.standard_normal((2, block))
            burst = 0.05 * rng.standard_normal(block) * (k % 3 == 0)
            angle = (p + 1) * np.pi / 4
            x = np.stack([np.cos(angle) * tone + burst, np.sin(angle) * tone + 0.5 * burst]) + bed
            w.write(x.astype(np.float32))


def make_music(path: Path, seconds: float) -> bool:
    """Write `seconds` of the wesnoth tracks strung together (48 kHz stereo, 24-bit, peak 0.95);
    False when the tracks cannot be had."""
    import numpy as np
    from upmix_real import fetch_music

    from upmix.io import read, write

    parts, have = [], 0
    for track in fetch_music():
        x, _ = read(track, sample_rate=RATE)
        parts.append(x if x.shape[0] == 2 else np.repeat(x[:1], 2, axis=0))
        have += parts[-1].shape[1]
        if have >= seconds * RATE:
            break
    if have < seconds * RATE:
        return False
    x = np.concatenate(parts, axis=1)[:, :int(seconds * RATE)]
    write(path, (x * (0.95 / np.abs(x).max())).astype(np.float32), RATE, "PCM_24")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[60.0, 600.0], help="seconds of audio")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each job (the median is shown)")
    ap.add_argument("--make", nargs=2, help=argparse.SUPPRESS)  # synthetic input (benchmarks/long_file.py)
    ap.add_argument("--make-music", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        make_input(Path(args.make[0]), float(args.make[1]))
        return
    if args.make_music:
        path, seconds = Path(args.make_music[0]), float(args.make_music[1])
        if not make_music(path, seconds):
            make_input(path, seconds)
            path.with_suffix(".synthetic").touch()
        return
    ffmpeg = shutil.which("ffmpeg")
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.durations:
            src = Path(tmp) / f"in_{seconds:g}.wav"
            # made in a child process: this parent stays small, so the children's peak RSS is theirs
            subprocess.run([sys.executable, __file__, "--make-music", str(src), str(seconds)], check=True)
            material = "synthetic" if src.with_suffix(".synthetic").exists() else "wesnoth music"
            jobs = {f"upmix run -f {fmt}": [sys.executable, "-m", "upmix", "run", str(src), "-o",
                                            str(Path(tmp) / "upmix.wav"), "-f", fmt, "-q", "-y"] for fmt, _ in PAIRS}
            if ffmpeg:
                jobs |= {f"ffmpeg surround {chl}": [ffmpeg, "-v", "error", "-y", "-i", str(src), "-af",
                                                    f"surround=chl_out={chl}", str(Path(tmp) / "ffmpeg.wav")]
                         for _, chl in PAIRS}
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
            for _ in range(args.repeat):  # interleaved, so a busy spell of the machine hits every job alike
                for name, cmd in jobs.items():
                    _, wall, rss = timed(cmd)
                    runs[name].append((wall, rss))
            median = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
            for name, r in runs.items():
                peer = next((f"ffmpeg surround {chl}" for fmt, chl in PAIRS if name == f"upmix run -f {fmt}"), None)
                ratio = median[name] / median[peer] if peer in median else None
                rows.append((f"{seconds:g} s {material}", name, median[name], seconds / median[name],
                             max(rss for _, rss in r), ratio))
                if ratio is not None:
                    target = TARGETS.get(seconds)
                    verdict = "-" if target is None else "PASS" if ratio <= target else "FAIL"
                    verdicts.append(f"- {verdict}  {seconds:g} s, {name}: {ratio:.2f}x ffmpeg's time"
                                    + (f" (target <= {target})" if target else ""))
    print(f"\nstereo 48 kHz -> upmix (24-bit) and ffmpeg surround (16-bit), {os.cpu_count()} CPUs, "
          f"median of {args.repeat} interleaved runs, whole processes\n")
    print(f"| {'input':>22} | {'job':<22} | {'wall s':>7} | {'x real time':>11} | {'peak RSS MiB':>12} "
          f"| {'time / ffmpeg':>13} |")
    print("|" + "|".join("-" * (w + 2) for w in (22, 22, 7, 11, 12, 13)) + "|")
    for material, name, wall, rtf, rss, ratio in rows:
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        print(f"| {material:>22} | {name:<22} | {wall:7.2f} | {rtf:11.1f} | {rss:12.0f} | {shown:>13} |")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
