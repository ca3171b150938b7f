"""Speed of `upmix render`: 8 objects of 60 s at 48 kHz to 7.1.4.

Each job runs in its own process. The table gives the job's own time (after Python and the
libraries have been imported) with its real-time factor (audio seconds per second), the whole
process's wall time including start-up, and its peak resident memory:

- ``render core``: reading the 8 stems and mixing them to 12 channels (no output file);
- ``render to file``: the whole `upmix render` job (24-bit WAV, loudness and peak report);
- ``ffmpeg pan``: the peer, ffmpeg mixing the same stems with the same gain matrix and delays
  (adelay + join + pan) into a 24-bit 12-channel WAV, when ffmpeg is installed (its job time is
  its process time).

    python benchmarks/render_speed.py [--seconds 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobs import timed

RATE = 48000
OBJECTS = [  # (azimuth, elevation, distance m, width deg)
    (30, 0, 3.0, 0), (-30, 0, 3.2, 0), (0, 0, 2.5, 10), (110, 0, 4.0, 0),
    (-110, 0, 4.1, 30), (45, 35, 3.5, 0), (-135, 30, 5.0, 20), (160, -10, 6.0, 0),
]


def make_stems(folder: Path, seconds: float) -> Path:
    import numpy as np

    from upmix.io import write

    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    for i in range(len(OBJECTS)):
        t = np.arange(n) / RATE
        x = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * (110 * (i + 1)) * t)
        write(folder / f"s{i}.wav", x[None].astype(np.float32), RATE, "PCM_24")
    lines = ["objects:"] + [f"  - {{stem: s{i}, position: {{azimuth: {a}, elevation: {e}, distance: {d}}}, "
                            f"width: {w}}}" for i, (a, e, d, w) in enumerate(OBJECTS)]
    scene = folder / "scene.yaml"
    scene.write_text("\n".join(lines) + "\noutput: {format: 7.1.4}\n")
    return scene


def job(name: str, folder: Path) -> None:
    """Run one job in this process and print its own duration in seconds."""
    from upmix.jobs.render import render_scene
    from upmix.render.renderer import SceneRenderer, file_sources
    from upmix.render.targets import get_target
    from upmix.scene import load_scene

    scene = folder / "scene.yaml"
    start = time.perf_counter()
    if name == "core":
        sc = load_scene(scene)
        r = SceneRenderer(sc, get_target("7.1.4"), RATE, file_sources(sc, folder, RATE))
        for _ in r.blocks():
            pass
    elif name == "file":
        render_scene(scene, folder / "out.wav", stems_dir=folder, format="7.1.4")
    print(time.perf_counter() - start)


def ffmpeg_command(folder: Path) -> list[str]:
    """The same mix as upmix's (gains and integer delays from upmix's own plan) done by ffmpeg."""
    from upmix.render.renderer import SceneRenderer, file_sources
    from upmix.render.targets import get_target
    from upmix.scene import load_scene

    sc = load_scene(folder / "scene.yaml")
    target = get_target("7.1.4")
    plans = SceneRenderer(sc, target, RATE, file_sources(sc, folder, RATE)).plans
    inputs = sum((["-i", str(folder / f"s{i}.wav")] for i in range(len(plans))), [])
    chains = [f"[{i}:a]adelay={p.delay}S[d{i}]" for i, p in enumerate(plans)]
    merge = "".join(f"[d{i}]" for i in range(len(plans))) + f"join=inputs={len(plans)}:channel_layout=7.1[m]"
    labels = ["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR", "TFL", "TFR", "TBL", "TBR"]
    terms = []
    gains = [target.gains(p.voice_directions, p.voice_widths)[0] * p.gain for p in plans]
    for ch, lab in enumerate(labels):
        parts = [f"{g[ch]:.6f}*c{i}" for i, g in enumerate(gains) if g[ch] > 0]
        terms.append(f"{lab}={'+'.join(parts) or '0*c0'}")
    pan = f"[m]pan={'+'.join(labels)}|{'|'.join(terms)}[out]"
    return (["ffmpeg", "-v", "error", "-y"] + inputs +
            ["-filter_complex", ";".join(chains + [merge, pan]), "-map", "[out]", "-c:a", "pcm_s24le",
             str(folder / "ffmpeg.wav")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per job; the fastest is reported")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.job == "stems":
        make_stems(args.folder, args.seconds)
        return
    if args.job == "ffmpeg-command":
        print(json.dumps(ffmpeg_command(args.folder)))
        return
    if args.job:
        job(args.job, args.folder)
        return
    # this parent process stays small (no numpy): a child's peak RSS includes its parent's pages
    # at fork, so anything big here would show up in every job's figure
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        me = [sys.executable, __file__, "--seconds", str(args.seconds), "--folder", str(folder), "--job"]
        subprocess.run(me + ["stems"], check=True)
        jobs = {"render core (read + mix)": me + ["core"], "render to file (upmix render)": me + ["file"]}
        if shutil.which("ffmpeg"):
            cmd = subprocess.run(me + ["ffmpeg-command"], check=True, capture_output=True, text=True).stdout
            jobs["ffmpeg pan (peer)"] = json.loads(cmd)
        results = {name: min(timed(cmd) for _ in range(args.repeat)) for name, cmd in jobs.items()}
        peer = results.get("ffmpeg pan (peer)")
        print(f"\n8 objects x {args.seconds:g} s at {RATE} Hz -> 7.1.4 (12 channels), "
              f"{os.cpu_count()} CPUs, best of {args.repeat} \n")
        print(f"| {'job':30} | {'job s':>6} | {'x real time':>11} | {'process s':>9} | {'peak RSS MiB':>12} "
              f"| {'speed vs ffmpeg':>15} |")
        print(f"|{'-' * 32}|{'-' * 8}|{'-' * 13}|{'-' * 11}|{'-' * 14}|{'-' * 17}|")
        for name, (own, wall, rss) in results.items():
            ratio = f"{peer[0] / own:.2f}x" if peer else "-"
            print(f"| {name:30} | {own:6.3f} | {args.seconds / own:11.1f} | {wall:9.2f} | {rss:12.0f} "
                  f"| {ratio:>15} |")
        if peer:
            speed = peer[0] / results["render to file (upmix render)"][0]
            print(f"\n- {'PASS' if speed >= 1.0 else 'FAIL'}  render to file: {speed:.2f}x ffmpeg's speed "
                  "(issue 28: at least 1.0)")


if __name__ == "__main__":
    main()
