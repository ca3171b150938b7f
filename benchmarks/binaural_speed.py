"""Speed of binaural rendering: 8 objects, 60 s, 48 kHz, static and moving, to headphones.

Each job runs in its own process; the table gives the job's own time (after imports) with its
real-time factor, the process's wall time and its peak resident memory:

- ``static scene``: `upmix render SCENE -f binaural` of 8 objects around the listener (stems
  read, HRIR convolution, 24-bit output and report written), first with an empty cache (the HRTF
  set is prepared, about a second), then with the prepared set cached;
- ``moving objects``: the same 8 sources, each circling the head at its own speed and height,
  through `MovingBinaural` (filters updated every 256 samples and crossfaded, per-ear delays
  gliding), written to a 24-bit file.

    python benchmarks/binaural_speed.py [--seconds 60]
"""

from __future__ import annotations

import time
from pathlib import Path

from jobs import benchmark_main

RATE = 48000
OBJECTS = [(30, 0), (-30, 0), (0, 0), (110, 0), (-110, 10), (45, 35), (-135, 30), (160, -10)]


def make(folder: Path, seconds: float) -> None:
    import numpy as np

    from upmix.io import write

    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    for i in range(len(OBJECTS)):
        t = np.arange(n) / RATE
        x = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * 110 * (i + 1) * t)
        write(folder / f"s{i}.wav", x[None].astype(np.float32), RATE, "PCM_24")
    lines = ["objects:"] + [f"  - {{stem: s{i}, position: {{azimuth: {a}, elevation: {e}, distance: 2}}}}"
                            for i, (a, e) in enumerate(OBJECTS)]
    (folder / "scene.yaml").write_text("\n".join(lines) + "\nrender: {reference_distance: 2}\n")


def job(name: str, folder: Path) -> None:
    """Run one job and print its own duration in seconds."""
    import numpy as np
    import torch

    from upmix.geometry import cartesian
    from upmix.io import AudioWriter, read
    from upmix.jobs.output import compute_threads
    from upmix.jobs.render import render_scene
    from upmix.render.binaural import MOVE_BLOCK, MovingBinaural, get_hrtf

    start = time.perf_counter()
    if name == "static":
        render_scene(folder / "scene.yaml", folder / "static.wav", stems_dir=folder, format="binaural")
    else:
        x = np.concatenate([read(folder / f"s{i}.wav")[0] for i in range(len(OBJECTS))])
        n = x.shape[1] - x.shape[1] % MOVE_BLOCK
        engine = MovingBinaural(get_hrtf(None, RATE), len(OBJECTS), 0, torch.device("cpu"))
        speed = np.linspace(45, 180, len(OBJECTS))  # degrees per second
        base = np.array([a for a, _ in OBJECTS], dtype=float)
        el = np.array([e for _, e in OBJECTS], dtype=float)
        chunk = MOVE_BLOCK * 256
        with compute_threads(), AudioWriter(folder / "moving.wav", RATE, 2) as w:
            for s in range(0, n, chunk):
                m = min(chunk, n - s)
                t = (s + np.arange(m // MOVE_BLOCK + 1) * MOVE_BLOCK) / RATE
                az = base[:, None] + speed[:, None] * t
                dirs = cartesian(az, np.broadcast_to(el[:, None], az.shape))
                ones = np.full(az.shape, 0.5)
                w.write(engine.process(x[:, s:s + m], dirs, ones, 0 * ones))
    print(time.perf_counter() - start)


def main() -> None:
    jobs = [("static, cold", "static"), ("static, cached", "static"), ("moving objects", "moving")]
    benchmark_main(__doc__, __file__, make, job, jobs,
                   lambda seconds: f"8 objects x {seconds:g} s at {RATE} Hz -> binaural (MIT KEMAR)", fresh_cache=True)


if __name__ == "__main__":
    main()
