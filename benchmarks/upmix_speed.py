"""Speed and memory of `upmix run` (stereo 48 kHz -> 7.1.4) against ffmpeg's `surround` filter.

For a 60 s and a 10-minute stereo file (music-like: panned tones, noise bursts and a decorrelated
bed, generated block by block), runs in separate processes, on the same file, in the same run:

- ``upmix run IN -o OUT -f 7.1.4`` (12 channels, 24-bit): the whole process's wall time and peak
  RSS, and the job's own time as its report gives it (after Python and torch have loaded);
- ``ffmpeg -i IN -af surround=chl_out=7.1 OUT`` (8 channels): wall time and peak RSS.

Prints real-time factors (audio seconds per second) and upmix's speed relative to ffmpeg.

    python benchmarks/upmix_speed.py [--durations 60 600]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs import timed

RATE = 48000


def make_input(path: Path, seconds: float) -> None:
    """Write a stereo test file of `seconds` block by block (bounded memory)."""
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[60.0, 600.0], help="seconds of audio")
    ap.add_argument("--make", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        make_input(Path(args.make[0]), float(args.make[1]))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.durations:
            src = Path(tmp) / f"in_{seconds:g}.wav"
            # made in a child process: this parent stays small, so the children's peak RSS is theirs
            subprocess.run([sys.executable, __file__, "--make", str(src), str(seconds)], check=True)
            out = Path(tmp) / "upmix.wav"
            _, wall, rss = timed([sys.executable, "-m", "upmix", "run", str(src), "-o", str(out), "-f", "7.1.4", "-q"])
            job = json.loads(out.with_suffix(".json").read_text())["processing_time_s"]
            ff = None
            if shutil.which("ffmpeg"):
                ff = timed(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af", "surround=chl_out=7.1",
                            str(Path(tmp) / "ffmpeg.wav")])[1:]
            rows.append((seconds, wall, job, rss, ff))
    print(f"\nstereo 48 kHz -> upmix 7.1.4 (12 ch, 24-bit) vs ffmpeg surround 7.1 (8 ch), {os.cpu_count()} CPUs\n")
    print(f"| {'input':>8} | {'upmix process s':>15} | {'x real time':>11} | {'upmix job s':>11} | {'x real time':>11} "
          f"| {'peak RSS MiB':>12} | {'ffmpeg s':>8} | {'x real time':>11} | {'ffmpeg RSS MiB':>14} "
          f"| {'job vs ffmpeg':>13} | {'process vs ffmpeg':>17} |")
    print("|" + "|".join("-" * (w + 2) for w in (8, 15, 11, 11, 11, 12, 8, 11, 14, 13, 17)) + "|")
    for seconds, wall, job, rss, ff in rows:
        ffs = f"{ff[0]:8.2f} | {seconds / ff[0]:11.1f} | {ff[1]:14.0f} | {ff[0] / job:12.2f}x | {ff[0] / wall:16.2f}x" \
            if ff else f"{'-':>8} | {'-':>11} | {'-':>14} | {'-':>13} | {'-':>17}"
        print(f"| {seconds:7.0f}s | {wall:15.2f} | {seconds / wall:11.1f} | {job:11.2f} | {seconds / job:11.1f} "
              f"| {rss:12.0f} | {ffs} |")


if __name__ == "__main__":
    main()
