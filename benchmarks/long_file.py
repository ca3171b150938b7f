"""Streaming proof: `upmix run` on a 10-minute and a 2-hour 48 kHz stereo reel to 7.1.4.

Each input is generated on disk block by block (`upmix_speed.make_input`: panned tones, noise
bursts and a decorrelated bed; 24-bit WAV, 2.1 GB for 2 hours), then upmixed to a 12-channel
24-bit WAV (12.4 GB for 2 hours) in a child process whose wall time and peak RSS are measured.
The table gives the real-time factor and the peak RSS against the shortest input's: memory must
not grow with the input's length (target: under 2 GB, and the 2-hour run within 10 % of the
10-minute one). Files go to a temporary folder under --tmp and are removed afterwards.

    python benchmarks/long_file.py [--minutes 10 120] [--tmp DIR] [-- EXTRA UPMIX RUN OPTIONS]

e.g. ``-- --preset film --loudness -24 --true-peak -2`` measures the film delivery path (a second
pass through an intermediate float file of the same length).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs import timed

RSS_TARGET_MIB = 2048
RSS_SPREAD = 0.10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 120.0], help="input lengths")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the (large) files")
    ap.add_argument("extra", nargs="*", help="more `upmix run` options, after --")
    args = ap.parse_args()
    rows = []
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for minutes in args.minutes:
            seconds = minutes * 60
            src, out = Path(tmp) / "reel.wav", Path(tmp) / "reel_7.1.4.wav"
            # made in a child process: this parent stays small, so the children's peak RSS is theirs
            subprocess.run([sys.executable, str(here / "upmix_speed.py"), "--make", str(src), str(seconds)],
                           check=True)
            _, wall, rss = timed([sys.executable, "-m", "upmix", "run", str(src), "-o", str(out), "-f", "7.1.4",
                                  "-q", *args.extra])
            report = json.loads(out.with_suffix(".json").read_text())
            rows.append((minutes, wall, report["processing_time_s"], rss, out.stat().st_size, report))
            src.unlink()
            out.unlink()
            out.with_suffix(".json").unlink()  # the next length writes its own report there
    base = rows[0][3]
    print(f"\nupmix run, stereo 48 kHz 24-bit -> 7.1.4 24-bit, {os.cpu_count()} CPUs"
          f"{' ' + ' '.join(args.extra) if args.extra else ''}\n")
    print(f"| {'input':>8} | {'output GB':>9} | {'process s':>9} | {'x real time':>11} | {'job s':>8} "
          f"| {'peak RSS MiB':>12} | {'RSS vs first':>12} |")
    print("|" + "|".join("-" * (w + 2) for w in (8, 9, 9, 11, 8, 12, 12)) + "|")
    for minutes, wall, job, rss, size, _ in rows:
        print(f"| {minutes:6.0f} m | {size / 1e9:9.2f} | {wall:9.1f} | {minutes * 60 / wall:11.1f} | {job:8.1f} "
              f"| {rss:12.0f} | {rss / base - 1:+11.1%} |")
    worst = max(r[3] for r in rows)
    spread = max(abs(r[3] / base - 1) for r in rows)
    print(f"\npeak RSS {worst:.0f} MiB (target < {RSS_TARGET_MIB}): {'met' if worst < RSS_TARGET_MIB else 'NOT met'}; "
          f"largest difference from the first input {spread:.1%} (target <= {RSS_SPREAD:.0%}): "
          f"{'met' if spread <= RSS_SPREAD else 'NOT met'}")


if __name__ == "__main__":
    main()
