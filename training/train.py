"""Train the orchestral-family separator: ``python -m training.train --config CONFIG``.

CONFIG is a YAML file (or the name of one in ``training/configs/``, e.g. ``orchestra``), read into a
`config.TrainConfig`:

    run: runs/orchestra            # checkpoints and the log go here
    seed: 0
    model: {features: 64, hidden: 64, layers: 4, mask_hidden: 128}    # ModelConfig fields
    data: {seconds: 4.0, workers: 1, notes: null, soundfonts: train, weights: null}
                                   # notes: default the cache's; soundfonts: a use of data.SOUNDFONTS
                                   # (train-samples adds recordings); weights: how often a SoundFont or
                                   # set plays, by file name, relative to the others' 1
    augment: {reverb: 0.5, ...}                        # Augment fields
    train: {batch: 4, lr: 0.001, steps: 20000, clip: 5.0, minutes: null, keep_every: null}
    eval: {every: 250, excerpts: 24, seconds: 6.0, soundfonts: validation}

Training excerpts are rendered on the fly (`training.data.ExcerptStream`) from the
training works with the training SoundFonts. Every ``eval.every`` steps the model is scored on a
fixed set of validation works (the sampled training SoundFonts, clean) by the mean SI-SDR improvement over
the stems present; ``last.pt`` (resumable: model, optimiser, step) and ``best.pt`` are written,
and a line is appended to ``log.jsonl``; with ``train.keep_every: K`` (a multiple of ``eval.every``)
the state at every K-th step is kept as ``step-K.pt`` too. Rerunning the same command resumes from ``last.pt``.
``--export PATH [--checkpoint CKPT] [--temperature T]`` writes the best weights (or CKPT's) as safetensors
(float16) for `upmix.separation.orchestra`, with mask temperature T; ``--calibrate CKPT [--split S]
[--excerpts N] [--soundfonts U]`` scores CKPT at each mask temperature (`calibrate`) on the
validation works played by the recordings (by default) and names the best; ``--init WEIGHTS``
starts a new run from such weights (the shipped ones, say), so that training forks from them;
``--average CKPT [CKPT ...] [--start CKPT]`` writes their weights' mean to ``RUN/average.pt``
(with ``--start``, of runs forked from that checkpoint);
``--score CHECKPOINT [--split S] [--excerpts N] [--augmented] [--soundfonts U]`` scores a checkpoint on more
excerpts than the run's validation (model selection, diagnosis).

Loss: mean squared error of the stems' waveforms, on the mix normalised to unit RMS. Not L1: where
the model is unsure which family a bin belongs to, the L1 optimum is the median, a hard
assignment to the likeliest family, which is badly wrong when it is wrong; the squared error's
optimum is the expected share, and SI-SDR is a squared-error measure too (an A/B:
docs/experiments.md).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from upmix.allocator import keep_freed_memory
from upmix.errors import UpmixError
from upmix.separation.model import BandSplitRNN, ModelConfig
from upmix.separation.orchestra import read_weights
from upmix.separation.transforms import Geometry
from upmix.stft import resolve_device

from .config import TrainConfig, load_config
from .data import (
    FAMILIES,
    SAMPLE_RATE,
    SOUNDFONTS,
    ExcerptStream,
    find_soundfonts,
    fixed_set,
    si_sdr_improvements,
)


def loss_fn(model: BandSplitRNN, geometry: Geometry, mix: torch.Tensor, stems: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the stems' waveforms for a batch (mix (B, 2, n), stems (B, S, 2, n)),
    each excerpt's mix at unit RMS."""
    scale = mix.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-5)
    mix, stems = mix / scale, stems / scale[:, None]
    estimate = model(geometry.stft(mix))
    return (geometry.istft(estimate, mix.shape[-1]) - stems).pow(2).mean()


@torch.no_grad()
def evaluate(model: BandSplitRNN, geometry: Geometry, excerpts: list, device: torch.device) -> dict:
    """Mean SI-SDR improvement (dB) over the scored stems of each excerpt (`scored_stems`), and per stem."""
    model.eval()
    gains: dict[str, list[float]] = {name: [] for name in FAMILIES}
    for mix, stems, _ in excerpts:
        x = torch.from_numpy(mix)[None].to(device)
        scale = x.pow(2).mean().sqrt().clamp_min(1e-5)
        est = geometry.istft(model(geometry.stft(x / scale)), x.shape[-1])[0].cpu().numpy() * float(scale)
        for k, gain in si_sdr_improvements(est, mix, stems).items():
            gains[FAMILIES[k]].append(gain)
    model.train()
    per_stem = {k: float(np.mean(v)) if v else None for k, v in gains.items()}
    present = [v for v in per_stem.values() if v is not None]
    return {"si_sdri": float(np.mean(present)), "per_stem": per_stem}


class _EvenSplit(torch.nn.Module):
    """The trivial separator: a quarter of the mix for every family (SI-SDR improvement 0)."""

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return spec[:, None].expand(-1, len(FAMILIES), *spec.shape[1:]) / len(FAMILIES)


def read_checkpoint(checkpoint: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's state (``model``, ``config``, ``step``, ...); an `UpmixError` naming the
    file when it cannot be read."""
    try:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise UpmixError("not a training checkpoint (torch could not unpickle it)", checkpoint) from None
    except (OSError, RuntimeError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UpmixError(f"cannot read the checkpoint ({reason})", checkpoint) from None
    if not isinstance(state, dict) or not {"model", "config", "step"} <= state.keys():
        raise UpmixError("not a training checkpoint (no model, config and step)", checkpoint)
    return state


def load_checkpoint(checkpoint: Path) -> tuple[dict, BandSplitRNN]:
    """A checkpoint's state and its model (on the CPU)."""
    state = read_checkpoint(checkpoint)
    model = BandSplitRNN(ModelConfig.from_json(state["config"]))
    model.load_state_dict(state["model"])
    return state, model


def scoring_set(cfg: TrainConfig, split: str, count: int, soundfonts: str | None = None,
                augmented: bool = False) -> list:
    """`count` 6-second excerpts of a split's works played by a use's SoundFonts (default the
    split's), clean or with the config's augmentation: the excerpts `score_checkpoint` and
    `calibrate` score on."""
    return fixed_set(cfg.data.notes_path, split, soundfonts or split, count, 6.0, seed=99,
                     augment=cfg.augment if augmented else None)


def score_checkpoint(cfg: TrainConfig, checkpoint: Path, split: str, count: int, augmented: bool,
                     soundfonts: str | None = None) -> dict:
    """A checkpoint's SI-SDR improvement on `count` 6-second excerpts of a split's works played by
    a use's SoundFonts (``train``, ``validation`` or ``test``; default the split's), with the
    config's augmentation or clean, and its training loss there against an even split's."""
    state, model = load_checkpoint(checkpoint)
    geometry = Geometry.at(model.config, SAMPLE_RATE)
    excerpts = scoring_set(cfg, split, count, soundfonts, augmented)
    mix = torch.from_numpy(np.stack([e[0] for e in excerpts]))
    stems = torch.from_numpy(np.stack([e[1] for e in excerpts]))
    with torch.no_grad():
        losses = {"loss": float(loss_fn(model.eval(), geometry, mix, stems)),
                  "even_split_loss": float(loss_fn(_EvenSplit(), geometry, mix, stems))}
    return {"step": state["step"], **evaluate(model, geometry, excerpts, torch.device("cpu")), **losses}


TEMPERATURES = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
"""The mask temperatures `calibrate` tries by default."""


def calibrate(checkpoint: Path, excerpts: list, temperatures: Sequence[float] = TEMPERATURES) -> dict:
    """A checkpoint's mean SI-SDR improvement on `excerpts` at each mask temperature
    (`ModelConfig.temperature`), and the best of them: the temperature to export the weights
    with (``--export W --temperature T``). Choose it on excerpts the weights never heard (the
    validation works played by the tonejs-instruments recordings, ``--soundfonts samples``):
    a model is more sure of itself on the sounds it learned than it has reason to be elsewhere."""
    state, model = load_checkpoint(checkpoint)
    config, geometry = model.config, Geometry.at(model.config, SAMPLE_RATE)
    scores = {}
    for t in temperatures:
        model.config = replace(config, temperature=float(t))
        scores[float(t)] = evaluate(model, geometry, excerpts, torch.device("cpu"))
    best = max(scores, key=lambda t: scores[t]["si_sdri"])
    return {"step": state["step"], "temperatures": scores, "best": best}


def export_weights(checkpoint: Path, path: Path, temperature: float | None = None) -> None:
    """Write a checkpoint's model as float16 safetensors with its config and scores as metadata,
    with its mask temperature set to `temperature` where given (`calibrate`)."""
    from safetensors.torch import save_file

    state = read_checkpoint(checkpoint)
    config = ModelConfig.from_json(state["config"])
    if temperature is not None:
        config = replace(config, temperature=float(temperature))
    tensors = {k: v.to(torch.float16).contiguous() for k, v in state["model"].items()}
    meta = {"config": config.to_json(), "step": str(state["step"]), "validation": json.dumps(state["score"]),
            "trained_seconds": str(round(state["seconds"]))}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def average_checkpoints(checkpoints: Sequence[Path], path: Path, start: Path | None = None) -> dict:
    """Write the mean of checkpoints' weights (same model config) as a checkpoint at `path`, for
    `score_checkpoint` and `export_weights`: stochastic weight averaging (Izmailov et al. 2018) of
    a run's low-learning-rate tail, or, with `start`, a soup of runs forked from that checkpoint
    (Wortsman et al. 2022), whose steps and training time then count the start's once and every
    fork's own on top. Both can score better on unseen SoundFonts than their members
    (``docs/separation.md``). Returns the new checkpoint."""
    states = [read_checkpoint(c) for c in checkpoints]
    if not states:
        raise UpmixError("no checkpoints to average")
    for c, s in zip(checkpoints, states):
        if s["config"] != states[0]["config"]:
            raise UpmixError(f"model config differs from {checkpoints[0]}'s", c)
    model = {k: torch.stack([s["model"][k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point()
             else v for k, v in states[-1]["model"].items()}
    if start is None:
        step, seconds = max(s["step"] for s in states), max(s["seconds"] for s in states)
    else:
        base = read_checkpoint(start)
        step = base["step"] + sum(s["step"] - base["step"] for s in states)
        seconds = base["seconds"] + sum(s["seconds"] - base["seconds"] for s in states)
    state = {"model": model, "config": states[0]["config"], "step": step,
             "score": {"averaged_steps": sorted(s["step"] for s in states)}, "seconds": seconds}
    torch.save(state, path)
    return state


def init_run(cfg: TrainConfig, weights: Path) -> dict:
    """Start the config's run from exported weights (`export_weights`' safetensors, such as the
    shipped ones): write ``RUN/last.pt`` with their model, step and training time and no optimiser
    state (AdamW starts afresh), so that training forks from them; the config's model must be
    theirs but for the mask temperature (the run trains at the config's). Refuses a run that
    already has a ``last.pt``. Returns the new checkpoint."""
    last = cfg.run / "last.pt"
    if last.exists():
        raise UpmixError("the run has a checkpoint already; --init starts new runs only", last)
    config, meta, tensors = read_weights(weights)
    run = cfg.model
    if replace(config, temperature=run.temperature) != run:
        raise UpmixError("these weights are not of the config's model", weights)
    state = {"model": tensors, "config": run.to_json(),
             "step": int(meta.get("step", 0)), "score": json.loads(meta.get("validation", "{}")),
             "seconds": float(meta.get("trained_seconds", 0)), "best": {"si_sdri": -math.inf}}
    last.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, last)
    return state


def _worker_start(_: int) -> None:
    """A data-loader worker's start: the main process's allocator policy (`keep_freed_memory`),
    which a spawned process does not inherit."""
    keep_freed_memory()


def train(cfg: TrainConfig, device: str = "auto", minutes: float | None = None) -> dict:
    """Train (or resume) as configured; returns the best validation score."""
    dev = resolve_device(device)
    config, seed, data, opts, ev = cfg.model, cfg.seed, cfg.data, cfg.train, cfg.eval
    fonts = data.soundfonts
    run = cfg.run
    run.mkdir(parents=True, exist_ok=True)
    notes = data.notes_path
    geometry = Geometry.at(config, SAMPLE_RATE)
    torch.manual_seed(seed)
    model = BandSplitRNN(config).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
    step, best, seconds = 0, {"si_sdri": -math.inf}, 0.0
    last = run / "last.pt"
    if last.is_file():
        state = read_checkpoint(last, dev)
        model.load_state_dict(state["model"])
        if "optimiser" in state:  # absent where `init_run` started the run from exported weights
            optimiser.load_state_dict(state["optimiser"])
        step, best, seconds = state["step"], state["best"], state["seconds"]
        print(f"resumed at step {step} (best validation SI-SDRi {best['si_sdri']:.2f} dB)")
    augment = cfg.augment
    print(f"{fonts} SoundFonts: {', '.join(f.name for f in find_soundfonts(fonts))}", flush=True)
    stream = ExcerptStream(notes, "train", fonts, data.seconds, augment, seed + step,
                           dict(data.weights) if data.weights is not None else None)
    workers = data.workers
    loader = torch.utils.data.DataLoader(stream, batch_size=opts.batch, num_workers=workers,
                                         multiprocessing_context="spawn" if workers else None,
                                         worker_init_fn=_worker_start if workers else None)
    validation = fixed_set(notes, data.validation_split, ev.soundfonts, ev.excerpts, ev.seconds)
    steps, clip, every, keep = opts.steps, opts.clip, ev.every, opts.keep_every
    budget = (minutes if minutes is not None else opts.minutes) or math.inf
    total = opts.lr_decay_steps
    started, running = time.perf_counter(), []
    log = (run / "log.jsonl").open("a")
    for mix, stems in loader:
        if step >= steps or (time.perf_counter() - started) / 60 >= budget:
            break
        for group in optimiser.param_groups:  # cosine decay to a tenth
            group["lr"] = opts.lr * (0.55 + 0.45 * math.cos(math.pi * min(step / total, 1.0)))
        loss = loss_fn(model, geometry, mix.to(dev), stems.to(dev))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        step += 1
        running.append(loss.item())
        if step % every == 0 or step == steps:
            elapsed = seconds + time.perf_counter() - started
            score = evaluate(model, geometry, validation, dev)
            line = {"step": step, "loss": float(np.mean(running)), "minutes": round(elapsed / 60, 1), **score}
            running = []
            print(json.dumps(line), flush=True)
            log.write(json.dumps(line) + "\n")
            log.flush()
            state = {"model": model.state_dict(), "config": config.to_json(), "step": step, "score": score,
                     "seconds": elapsed}
            if score["si_sdri"] > best["si_sdri"]:
                best = score
                torch.save(state, run / "best.pt")
            if keep and step % keep == 0:
                torch.save(state, run / f"step-{step}.pt")
            torch.save({**state, "optimiser": optimiser.state_dict(), "best": best}, last)
    log.close()
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="orchestra", help="config file or bundled config name")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    ap.add_argument("--export", type=Path, default=None, help="write the run's best weights here and stop")
    ap.add_argument("--checkpoint", type=Path, default=None, help="--export this checkpoint, not the run's best.pt")
    ap.add_argument("--temperature", type=float, default=None,
                    help="--export with this mask temperature (from --calibrate)")
    ap.add_argument("--calibrate", type=Path, default=None, metavar="CHECKPOINT",
                    help="score a checkpoint at each mask temperature on --excerpts excerpts of --split played by "
                         "--soundfonts (default: the recordings, samples) and stop")
    ap.add_argument("--average", type=Path, nargs="+", default=None, metavar="CHECKPOINT",
                    help="write the mean of these checkpoints' weights to RUN/average.pt and stop")
    ap.add_argument("--start", type=Path, default=None, metavar="CHECKPOINT",
                    help="--average runs forked from this checkpoint: count its steps and time once")
    ap.add_argument("--init", type=Path, default=None, metavar="WEIGHTS",
                    help="start the run from exported weights (.safetensors) and stop; training then forks from them")
    ap.add_argument("--score", type=Path, default=None, metavar="CHECKPOINT",
                    help="score a checkpoint (.pt) on --excerpts excerpts of --split and stop")
    ap.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    ap.add_argument("--excerpts", type=int, default=96)
    ap.add_argument("--augmented", action="store_true", help="--score on augmented excerpts, not clean ones")
    ap.add_argument("--soundfonts", default=None, choices=sorted(SOUNDFONTS),
                    help="--score with these SoundFonts (default: the split's)")
    args = ap.parse_args(argv)
    keep_freed_memory()
    if args.start and not args.average:
        ap.error("--start goes with --average")
    try:
        _run(args, ap)
    except UpmixError as e:
        ap.exit(2, f"error: {e}\n")


def _run(args: argparse.Namespace, ap: argparse.ArgumentParser) -> None:
    """The command `main` parsed."""
    cfg = load_config(args.config)
    if args.temperature is not None and not (args.export and 0 < args.temperature < math.inf):
        ap.error("--temperature goes with --export and is a positive number")
    if args.score:
        print(json.dumps(score_checkpoint(cfg, args.score, args.split, args.excerpts, args.augmented, args.soundfonts)))
        return
    if args.calibrate:
        read_checkpoint(args.calibrate)  # a bad file fails before the excerpts are rendered
        excerpts = scoring_set(cfg, args.split, args.excerpts, args.soundfonts or "samples", args.augmented)
        result = calibrate(args.calibrate, excerpts)
        for t, score in result["temperatures"].items():
            print(json.dumps({"temperature": t, **score}))
        print(f"best temperature {result['best']:g} (step {result['step']})")
        return
    if args.init:
        state = init_run(cfg, args.init)
        print(f"started {cfg.run} at step {state['step']} from {args.init}")
        return
    if args.average:
        path = cfg.run / "average.pt"
        average_checkpoints(args.average, path, args.start)
        print(f"wrote {path} (the mean of {len(args.average)} checkpoints)")
        return
    if args.export:
        export_weights(args.checkpoint or cfg.run / "best.pt", args.export,
                       args.temperature)
        print(f"wrote {args.export}")
        return
    best = train(cfg, args.device, args.minutes)
    print(json.dumps({"best": best}))


if __name__ == "__main__":
    main()
