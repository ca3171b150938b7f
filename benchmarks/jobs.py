"""What the benchmark scripts share: timing a job in a child process and printing the job table.

A job is a child process (so its peak memory is its own) that prints its own time, after imports,
as one number; the parent stays small (no numpy), since a child's peak RSS counts the parent's pages.
"""

from __future__ import annotations

import os
import subprocess
import time


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


def print_jobs(rows: dict[str, tuple[float, float, float]], seconds: float) -> None:
    """A table of `timed` results for jobs that each processed `seconds` of audio."""
    w = max(map(len, rows))
    print(f"| {'job':{w}} | {'job s':>6} | {'x real time':>11} | {'process s':>9} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * (w + 2)}|{'-' * 8}|{'-' * 13}|{'-' * 11}|{'-' * 14}|")
    for name, (own, wall, rss) in rows.items():
        print(f"| {name:{w}} | {own:6.2f} | {seconds / own:11.1f} | {wall:9.2f} | {rss:12.0f} |")
