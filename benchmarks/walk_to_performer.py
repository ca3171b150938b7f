"""Walking up to a performer the `sources` separator found: how much that performer's share of
what is heard rises, against the other performers' (issue 27, "the walk-through").

The pan-potted string quartet of the example (`examples/string_quartet/quartet_stereo.flac`) is
split by `SourceSeparator` into one mono stem per performer and the ambience, and the stems are
seated as ``upmix run --separator sources --scene examples/walkthrough/quartet_among.yaml`` seats
them (the leftmost performer on the leftmost seat). The scene
is rendered binaurally in its hall at both ends of the walk of
`examples/walkthrough/quartet_walk.yaml` (from the hall's entrance to half a metre before the
first violin), once per stem with every other stem
silent: the renderer is linear, so each output is that stem's part of the full render. The
listener stands still where the walk starts and where it ends, for the whole recording, so the
music's own rise and fall is the same at both ends. A performer's share is its part's energy over
every part's (ambience included). Printed: each performer's path
gain and share at both ends, the change of share, and the margin of the performer walked to over
the largest change among the others (target >= 10 dB). ``--oracle`` seats the example's own dry
stems instead: what the scene's geometry and hall allow.

    python benchmarks/walk_to_performer.py [--directions 25,10,-10,-25 | --auto] [--oracle] [--seconds S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.scene import load_path, load_scene
from upmix.seating import performer_seats
from upmix.separation.sources import SourceSeparator

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "examples/string_quartet/quartet_stereo.flac"
SCENE = ROOT / "examples/walkthrough/quartet_among.yaml"
WALK = ROOT / "examples/walkthrough/quartet_walk.yaml"
TARGET_DB = 10.0
RATE = 48000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--directions", default="25,10,-10,-25",
                    help="the performers' stereo azimuths (the example's pan positions)")
    ap.add_argument("--auto", action="store_true", help="find the performers instead (one per seat)")
    ap.add_argument("--oracle", action="store_true",
                    help="seat the example's own dry stems instead of the separated ones: what the geometry allows")
    ap.add_argument("--walk", type=Path, default=WALK)
    ap.add_argument("--seconds", type=float, default=None, help="use only the recording's first seconds")
    args = ap.parse_args()
    audio, rate = read(RECORDING)
    if args.seconds is not None:
        audio = audio[:, :int(args.seconds * rate)]
    scene = load_scene(SCENE)
    seats = performer_seats(scene)
    start = time.perf_counter()
    sep = SourceSeparator(count=len(seats) if args.auto else None,
                          directions=None if args.auto else args.directions, device="cpu", mono=True)
    stems = sep.separate(audio, rate)
    names = [s.name for s in sep.specs()]
    if args.oracle:  # the parts as they were panned (the recording plays the chorale twice)
        for k, seat in enumerate(seats):
            dry = np.tile(read(RECORDING.parent / "stems" / f"{seat.stem}.flac")[0], 2)[:, :audio.shape[1]]
            stems[f"source_{k + 1:02d}"] = np.pad(dry, ((0, 0), (0, audio.shape[1] - dry.shape[1])))
        for side in ("ambience.left", "ambience.right"):
            stems[side] = np.zeros_like(stems[side])
    print(f"performers at {[s.azimuth for s in sep.sources]} degrees ({time.perf_counter() - start:.1f} s)")
    keys = load_path(args.walk, scene.room)
    ends = {"start": keys[0], "end": keys[-1]}
    seat_of = {o.stem: f"source_{k + 1:02d}" for k, o in enumerate(seats)}
    level = {k: float(np.sum(stems[k].astype(float) ** 2)) for k in names}
    energy: dict[str, dict[str, float]] = {w: {} for w in ends}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            play = folder / name
            play.mkdir()
            for other in names:
                write(play / f"{other}.wav", stems[other] if other == name else np.zeros_like(stems[other]), rate,
                      "FLOAT")
        for where, key in ends.items():  # the listener standing still where the walk starts and ends
            text = yaml.safe_load(SCENE.read_text())
            for obj in text["objects"]:
                obj["stem"] = seat_of[obj["stem"]]
            text["objects"] += [{"stem": side, "position": list(key.position), "diffuse": 1.0}
                                for side in ("ambience.left", "ambience.right")]
            text["listener"] = {"position": list(key.position), "yaw": float(key.yaw)}
            (folder / f"{where}.yaml").write_text(yaml.safe_dump(text))
            for name in names:
                out = folder / f"{where}-{name}.wav"
                render_scene(folder / f"{where}.yaml", out, stems_dir=folder / name, format="binaural",
                             sample_rate=RATE, bits="float")
                energy[where][name] = float(np.sum(read(out)[0].astype(float) ** 2))
    share = {w: {k: e / sum(es.values()) for k, e in es.items()} for w, es in energy.items()}
    gain = {w: {k: 10 * np.log10(max(energy[w][k] / max(level[k], 1e-20), 1e-20)) for k in names} for w in ends}
    walked_to = seat_of[seats[0].stem]  # the walk ends before the leftmost seat (the first violin)
    print(f"{'stem':16s} {'seat':10s} {'gain at start dB':>17s} {'at the end dB':>14s} "
          f"{'share at start dB':>18s} {'at the end dB':>14s} {'change dB':>10s}")
    change = {}
    seat_name = {v: k for k, v in seat_of.items()}
    for k in names:
        a, b = (10 * np.log10(max(share[w][k], 1e-12)) for w in ("start", "end"))
        change[k] = b - a
        print(f"{k:16s} {seat_name.get(k, '-'):10s} {gain['start'][k]:17.1f} {gain['end'][k]:14.1f} "
              f"{a:18.1f} {b:14.1f} {change[k]:10.1f}")
    others = max(v for k, v in change.items() if k.startswith("source_") and k != walked_to)
    margin = change[walked_to] - others
    print(f"walked to {walked_to} ({seat_name[walked_to]}): +{change[walked_to]:.1f} dB; the largest change "
          f"of another performer {others:+.1f} dB; margin {margin:.1f} dB (target >= {TARGET_DB:.0f}): "
          f"{'PASS' if margin >= TARGET_DB else 'FAIL'}")


if __name__ == "__main__":
    main()
