"""Accuracy of rooms and walks: the numbers behind tests/test_room.py and tests/test_walk.py.

- reverberation time (T30) per octave band of a 20 x 15 x 10 m room with RT60 1.5 s, on 4+7+0
  and headphones;
- the left-wall reflection: arrival against its geometric delay, its direction (energy vector on
  4+7+0, interaural time difference against the HRTF's on headphones);
- a listener walking from 10 m to 1 m towards a 1 kHz tone: level rise (expected 20 dB) and the
  worst energy away from the tone (clicks), in free field and in a room.

    python benchmarks/room_accuracy.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from upmix.analysis import energy_vector_azimuth, out_of_tone_db, reverberation_time
from upmix.geometry import SPEED_OF_SOUND, cartesian
from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.layouts import get_layout
from upmix.render.binaural import get_hrtf, lag

RATE = 48000
ROOM = "room: {dimensions: [20, 15, 10], rt60: 1.5}\n"
WALK = (Path(__file__).resolve().parent.parent / "tests/data/scenes/walk_to_tone.yaml").read_text()
WALK_ROOM = "room: {dimensions: [10, 14, 4], rt60: 0.6}\n"


def render(folder: Path, scene: str, fmt: str) -> np.ndarray:
    (folder / "scene.yaml").write_text(scene)
    render_scene(folder / "scene.yaml", folder / "out.wav", stems_dir=folder, format=fmt, bits="float")
    return read(folder / "out.wav")[0].astype(float)


def room_table(folder: Path) -> None:
    click = np.zeros((1, RATE))
    click[0, 0] = 1.0
    write(folder / "click.wav", click, RATE, "FLOAT")
    scene = "objects:\n  - {stem: click, position: [8, 7.5, 3]}\nlistener: {position: [3, 7.5, 3]}\n" + ROOM
    irs = {fmt: render(folder, scene, fmt) for fmt in ("4+7+0", "binaural")}
    bands = (250, 500, 1000, 2000, 4000)
    print("\nT30-based RT60 (s) of a 20 x 15 x 10 m room with RT60 1.5 s (limit: within 10 %)\n")
    print("| target   | " + " | ".join(f"{b:>5} Hz" for b in bands) + " | worst error |")
    print("|----------|" + "|".join("-" * 10 for _ in bands) + "|-------------|")
    for fmt, ir in irs.items():
        rt = [reverberation_time(ir, RATE, b) for b in bands]
        worst = max(abs(r / 1.5 - 1) for r in rt)
        print(f"| {fmt:8} | " + " | ".join(f"{r:8.3f}" for r in rt) + f" | {100 * worst:10.1f}% |")
    left = 11.0 / SPEED_OF_SOUND * RATE  # image behind x = 0 at (-8, 7.5, 3): 11 m, due left
    y = irs["4+7+0"]
    energy = (y ** 2).sum(axis=0)
    w0 = int(left) - 100
    peak = w0 + int(np.argmax(energy[w0:w0 + 200]))
    layout = get_layout("4+7+0")
    az = energy_vector_azimuth((y[:, peak - 24:peak + 25] ** 2).sum(axis=1), layout)
    hrtf = get_hrtf(None, RATE)
    ref = hrtf.hrirs(cartesian(90, 0)[None])[0]
    w0, w1 = int(left) - 120, int(left) + 120
    ears = irs["binaural"][:, w0:w1] * np.hanning(w1 - w0)
    onset = np.mean([w0 + np.argmax(np.abs(e) > 0.5 * np.abs(e).max()) for e in ears])
    ref_onset = np.mean([np.argmax(np.abs(e) > 0.5 * np.abs(e).max()) - hrtf.latency for e in ref])
    print(f"\nleft-wall reflection (geometric arrival {left:.2f} samples, from +90 degrees)\n")
    rows = [("4+7+0", f"{peak:d}", f"energy vector azimuth {az:.2f} deg"),
            ("binaural", f"{onset - ref_onset:.2f}",
             f"ITD {lag(ears[0], ears[1]):.2f} samples (HRTF at +90: {lag(ref[0], ref[1]):.2f})")]
    print(f"| target   | arrival (samples) | {'direction':42} |")
    print(f"|----------|-------------------|{'-' * 44}|")
    for fmt, arrival, direction in rows:
        print(f"| {fmt:8} | {arrival:>17} | {direction:42} |")

def walk_table(folder: Path) -> None:
    t = np.arange(9 * RATE) / RATE
    fade = np.sin(np.pi / 2 * np.clip(t / 0.05, 0, 1)) ** 2
    write(folder / "tone.wav", (0.25 * fade * np.sin(2 * np.pi * 1000 * t))[None], RATE, "FLOAT")
    print("\nwalking from 10 m to 1 m towards a 1 kHz tone (limits: rise 20 +- 1 dB, away from the tone < -60 dB)\n")
    print("| field      | target   | level rise dB | worst energy away from the tone dB |")
    print("|------------|----------|---------------|------------------------------------|")
    for name, room in (("free field", ""), ("room", WALK_ROOM)):
        for fmt in ("4+7+0", "binaural"):
            y = render(folder, WALK + room, fmt)
            level = [10 * np.log10((y[:, a:b] ** 2).sum(axis=0).mean())
                     for a, b in ((RATE // 2, RATE), (int(7.8 * RATE), int(8.8 * RATE)))]
            away = out_of_tone_db(y[:, int(0.2 * RATE):int(8.8 * RATE)], RATE, 1000)
            print(f"| {name:10} | {fmt:8} | {level[1] - level[0]:13.2f} | {away:34.1f} |")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        room_table(Path(tmp))
        walk_table(Path(tmp))


if __name__ == "__main__":
    main()
