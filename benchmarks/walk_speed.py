"""Speed of the walk-through renderer: 8 sources, 60 s, 48 kHz, a listener walking through a hall
with reflections up to order 3 and a late tail, to headphones and to 7.1.4.

Each job runs in its own process; the table gives the job's own time (after imports) with its
real-time factor (the floor for live use is 1x), the process's wall time and peak resident memory.
Peers in the same run: the same scene with the listener standing still (what the walk costs), and
pyroomacoustics' own `simulate()` of the 8 sources at the listener's first position (one omni
microphone, reflections to order 3, no tail, no movement).

    python benchmarks/walk_speed.py [--seconds 60]
"""

from __future__ import annotations

import time
from pathlib import Path

from jobs import benchmark_main

RATE = 48000
SEATS = [(10, 34, 2.1), (13, 36, 2.1), (19, 36, 2.1), (21, 34, 1.8), (15, 38.6, 2.3), (17, 38.6, 2.3),
         (15.5, 41.2, 2.8), (18.5, 41.2, 2.8)]


def make(folder: Path, seconds: float) -> None:
    import numpy as np

    from upmix.io import write

    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    for i in range(len(SEATS)):
        noise = 0.05 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 0.5 * t + i))
        x = noise + 0.1 * np.sin(2 * np.pi * 110 * (i + 2) * t)
        write(folder / f"s{i}.wav", x[None].astype(np.float32), RATE, "PCM_24")
    lines = ["objects:"] + [f"  - {{stem: s{i}, position: [{x}, {y}, {z}]}}" for i, (x, y, z) in enumerate(SEATS)]
    lines += ["listener:", "  position: [16, 4, 1.2]", "  path:",
              "    - {time: 0, position: [16, 4, 1.2], yaw: 0}",
              f"    - {{time: {seconds * 0.6:g}, position: [16, 30, 1.2], yaw: 0}}",
              f"    - {{time: {seconds * 0.8:g}, position: [15, 33.5, 2.2], yaw: 20}}",
              f"    - {{time: {seconds:g}, position: [15.5, 37, 2.2], yaw: -10}}",
              "room: {dimensions: [32, 44, 18], rt60: 2.0}", "render: {reference_distance: 10}"]
    (folder / "scene.yaml").write_text("\n".join(lines) + "\n")
    still = [line for line in lines if not line.startswith("    - ") and line != "  path:"]
    (folder / "still.yaml").write_text("\n".join(still) + "\n")


def job(name: str, folder: Path) -> None:
    if name == "pyroomacoustics":
        import numpy as np
        import pyroomacoustics as pra

        from upmix.io import read

        start = time.perf_counter()
        room = pra.ShoeBox([32, 44, 18], fs=RATE, materials=pra.Material(0.3), max_order=3)
        for i, seat in enumerate(SEATS):
            room.add_source(list(seat), signal=read(folder / f"s{i}.wav")[0][0])
        room.add_microphone([16, 4, 1.2])
        room.simulate()
        np.asarray(room.mic_array.signals)
        print(time.perf_counter() - start)
        return
    from upmix.jobs.render import render_scene

    fmt, _, still = name.partition(":")
    scene = folder / ("still.yaml" if still else "scene.yaml")
    start = time.perf_counter()
    render_scene(scene, folder / f"walk_{fmt}.wav", stems_dir=folder, format=fmt, bits="float")
    print(time.perf_counter() - start)


def main() -> None:
    jobs = [("walk -> binaural", "binaural"), ("walk -> 7.1.4", "7.1.4"), ("still -> binaural", "binaural:still"),
            ("still -> 7.1.4", "7.1.4:still"), ("pyroomacoustics simulate (still, 1 mic)", "pyroomacoustics")]
    benchmark_main(__doc__, __file__, make, job, jobs, lambda seconds: (
        f"8 sources x {seconds:g} s at {RATE} Hz, listener walking 36 m through a 32 x 44 x 18 m hall "
        "(RT60 2 s, reflections to order 3 + tail)"))


if __name__ == "__main__":
    main()
