"""Speed and memory of `upmix separate`: 44.1 kHz stereo, 60 s and 10 minutes.

Each job runs in its own process and separates a file made for it (strings-like tones, noise and a
slow pan) to stem files; the table gives the job's own time after imports, its real-time factor,
the process's wall time and peak resident memory (the 10-minute job shows that memory does not
grow with the input). The training-free spatial separator runs beside as the peer; with a CUDA
device the orchestra model is timed there too.

    python benchmarks/separation_speed.py [--seconds 60] [--long 600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobs import print_jobs, timed

RATE = 44100


def make(path: Path, seconds: float) -> None:
    import numpy as np

    from upmix.io import AudioWriter

    rng = np.random.default_rng(0)
    block = RATE * 10
    with AudioWriter(path, RATE, 2, "PCM_24") as w:
        for k in range(int(np.ceil(seconds * RATE / block))):
            n = min(block, int(seconds * RATE) - k * block)
            t = (k * block + np.arange(n)) / RATE
            tones = sum(np.sin(2 * np.pi * f * t + 0.2 * np.sin(2 * np.pi * 5 * t)) / (i + 1)
                        for i, f in enumerate((196.0, 294.0, 392.0, 587.0)))
            pan = 0.5 + 0.4 * np.sin(2 * np.pi * 0.05 * t)
            x = 0.05 * np.stack([np.cos(pan) * tones, np.sin(pan) * tones]) + 0.005 * rng.standard_normal((2, n))
            w.write(x.astype(np.float32))


def job(model: str, device: str, source: Path, out: Path) -> None:
    from upmix.allocator import keep_freed_memory
    from upmix.jobs.separate import separate_file

    keep_freed_memory()  # as the `upmix` command does
    start = time.perf_counter()
    separate_file(source, out, model=model, device=device)
    print(time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--long", type=float, default=600.0, help="length of the memory job, seconds")
    ap.add_argument("--job", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        make(Path(args.make[0]), float(args.make[1]))
        return
    if args.job:
        job(args.job[0], args.job[1], Path(args.job[2]), Path(args.job[3]))
        return
    # the parent stays small (no torch): ask a child which CUDA device there is, if any
    probe = "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
    gpu = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    cuda = bool(gpu)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for seconds in (args.seconds, args.long):
            files[seconds] = Path(tmp) / f"in_{seconds:g}.wav"
            subprocess.run([sys.executable, __file__, "--make", str(files[seconds]), str(seconds)], check=True)
        rows, lengths = {}, {}
        plan = [(f"orchestra, cpu, {args.seconds:g} s", "orchestra", "cpu", args.seconds),
                (f"spatial (peer), cpu, {args.seconds:g} s", "spatial", "cpu", args.seconds),
                (f"orchestra, cpu, {args.long:g} s", "orchestra", "cpu", args.long)]
        if cuda:
            plan.insert(1, (f"orchestra, cuda, {args.seconds:g} s", "orchestra", "cuda", args.seconds))
        for label, model, device, seconds in plan:
            out = Path(tmp) / f"out_{len(rows)}"
            rows[label] = timed([sys.executable, __file__, "--job", model, device, str(files[seconds]), str(out)])
            lengths[label] = seconds
    print(f"\n44.1 kHz stereo -> stems (24-bit WAV), {os.cpu_count()} CPUs"
          f"{', ' + gpu if cuda else ', no CUDA device'}\n")
    print_jobs(rows, lengths)


if __name__ == "__main__":
    main()
