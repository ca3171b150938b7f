"""What the benchmark scripts share: timing a job in a child process, the job table, and the
command line of a benchmark made of such jobs.

A job is a child process (so its peak memory is its own) that prints its own time, after imports,
as one number; the parent stays small (no numpy), since a child's peak RSS counts the parent's pages.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from upmix.allocator import keep_freed_memory


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(job seconds (what the child prints, else its wall time), process wall seconds, peak RSS MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    own = float(output) if output.strip() else wall
    return own, wall, usage.ru_maxrss / 1024


def print_jobs(rows: dict[str, tuple[float, float, float]], seconds: float | dict[str, float]) -> None:
    """A table of `timed` results for jobs that each processed `seconds` of audio (one figure for
    all, or one per job)."""
    w = max(map(len, rows))
    print(f"| {'job':{w}} | {'job s':>6} | {'x real time':>11} | {'process s':>9} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * (w + 2)}|{'-' * 8}|{'-' * 13}|{'-' * 11}|{'-' * 14}|")
    for name, (own, wall, rss) in rows.items():
        audio = seconds[name] if isinstance(seconds, dict) else seconds
        print(f"| {name:{w}} | {own:6.2f} | {audio / own:11.1f} | {wall:9.2f} | {rss:12.0f} |")


def benchmark_main(doc: str, script: str, make: Callable[[Path, float], None], job: Callable[[str, Path], None],
                   jobs: list[tuple[str, str]], title: Callable[[float], str], fresh_cache: bool = False) -> None:
    """The command line of a job benchmark: ``--seconds`` of audio made by `make(folder, seconds)`
    in a child, then every (label, name) of `jobs` run as ``job(name, folder)`` in a child of its
    own, and the table. `fresh_cache` gives the jobs an empty upmix cache (the first one fills it)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.job == "make":
        make(args.folder, args.seconds)
        return
    if args.job:
        keep_freed_memory()  # as the `upmix` command does
        job(args.job, args.folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        me = [sys.executable, script, "--seconds", str(args.seconds), "--folder", tmp, "--job"]
        subprocess.run(me + ["make"], check=True)
        if fresh_cache:
            os.environ["UPMIX_CACHE"] = str(Path(tmp) / "cache")
        rows = {label: timed(me + [name]) for label, name in jobs}
    print(f"\n{title(args.seconds)}, {os.cpu_count()} CPUs\n")
    print_jobs(rows, args.seconds)
