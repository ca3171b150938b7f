"""`TrainConfig`: a training run's settings, typed and frozen, read from a YAML config (a file, or
the name of one in ``training/configs/``; the format is in `training.train`'s docstring)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from upmix.errors import UpmixError
from upmix.separation.model import ModelConfig
from upmix.validate import load_yaml

from .data import FAMILIES, SAMPLE_RATE, SOUNDFONTS, Augment, default_notes_path


@dataclass(frozen=True)
class DataOptions:
    """The config's ``data`` section: training excerpts of `seconds` rendered by `workers` loader
    processes from the note lists at `notes` (None: the cache's) with the `soundfonts` use's banks,
    each drawn as often as its `weights` entry says (relative to the others' 1; None: evenly)."""

    seconds: float = 4.0
    workers: int = 1
    notes: Path | None = None
    soundfonts: str = "train"
    weights: Mapping[str, float] | None = None
    validation_split: str = "validation"

    @property
    def notes_path(self) -> Path:
        """The note lists the excerpts are made from."""
        return self.notes or default_notes_path()


@dataclass(frozen=True)
class StepOptions:
    """The config's ``train`` section: `batch` excerpts a step for `steps` steps (or `minutes` of
    training), AdamW at learning rate `lr` with a cosine decay to 0.1 `lr` over `lr_decay_steps`
    (None: `steps`), gradients clipped to norm `clip`; every `keep_every`-th step's state is kept
    (0: none)."""

    batch: int = 4
    lr: float = 1e-3
    steps: int = 20000
    clip: float = 5.0
    minutes: float | None = None
    keep_every: int = 0
    lr_decay_steps: float | None = None


@dataclass(frozen=True)
class EvalOptions:
    """The config's ``eval`` section: every `every` steps, the mean SI-SDR improvement on `excerpts`
    fixed validation excerpts of `seconds` played by the `soundfonts` use's banks."""

    every: int = 250
    excerpts: int = 24
    seconds: float = 6.0
    soundfonts: str = "validation"


@dataclass(frozen=True)
class TrainConfig:
    """A training run: its folder (`run`: checkpoints and log), seed, model and sections."""

    run: Path = Path("runs/orchestra")
    seed: int = 0
    model: ModelConfig = field(default_factory=lambda: ModelConfig(targets=FAMILIES, sample_rate=SAMPLE_RATE))
    data: DataOptions = DataOptions()
    augment: Augment = Augment()
    train: StepOptions = StepOptions()
    eval: EvalOptions = EvalOptions()

    @classmethod
    def from_dict(cls, raw: Mapping) -> TrainConfig:
        """A config as YAML gives it; keys a section does not know are ignored, and an `UpmixError`
        names the section of a value it refuses."""
        sections = {name: raw.get(name) or {} for name in ("model", "data", "augment", "train", "eval")}
        for name, section in sections.items():
            if not isinstance(section, Mapping):
                raise UpmixError(f"{name}: expected a mapping")
        d, t, e = sections["data"], sections["train"], sections["eval"]
        try:
            model = ModelConfig(targets=FAMILIES, sample_rate=SAMPLE_RATE, **_known(ModelConfig, sections["model"]))
        except (TypeError, ValueError) as err:
            raise UpmixError(f"model: {err}") from None
        try:
            augment = Augment(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in _known(Augment, sections["augment"]).items()})
        except TypeError as err:
            raise UpmixError(f"augment: {err}") from None
        soundfonts = d.get("soundfonts", "train")
        try:
            data = DataOptions(float(d.get("seconds", 4.0)), int(d.get("workers", 1)),
                               Path(d["notes"]) if d.get("notes") else None, soundfonts,
                               font_weights(d.get("weights"), soundfonts), d.get("validation_split", "validation"))
        except (TypeError, ValueError) as err:
            raise UpmixError(f"data: {err}") from None
        try:
            steps, minutes = int(t.get("steps", 20000)), t.get("minutes")
            train = StepOptions(int(t.get("batch", 4)), float(t.get("lr", 1e-3)), steps, float(t.get("clip", 5.0)),
                                None if minutes is None else float(minutes), int(t.get("keep_every") or 0),
                                float(t.get("lr_decay_steps", steps)))
        except (TypeError, ValueError) as err:
            raise UpmixError(f"train: {err}") from None
        try:
            ev = EvalOptions(int(e.get("every", 250)), int(e.get("excerpts", 24)), float(e.get("seconds", 6.0)),
                             e.get("soundfonts", "validation"))
        except (TypeError, ValueError) as err:
            raise UpmixError(f"eval: {err}") from None
        if train.keep_every % ev.every:
            raise UpmixError(f"train.keep_every ({train.keep_every}) must be a multiple of eval.every ({ev.every})")
        return cls(Path(raw.get("run", "runs/orchestra")), int(raw.get("seed", 0)), model, data, augment, train, ev)


def _known(cls: type, section: Mapping) -> dict:
    """The entries of a section that are fields of the dataclass `cls`."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in section.items() if k in names}


def font_weights(weights: object, use: str) -> dict[str, float] | None:
    """The config's ``data.weights`` (by SoundFont or set name, relative to the others' 1), checked
    against the use's SoundFonts."""
    if weights is None:
        return None
    if not isinstance(weights, Mapping):
        raise UpmixError("data.weights: expected a mapping of SoundFont or set names to weights")
    for name, weight in weights.items():
        if name not in SOUNDFONTS.get(use, ()):
            raise UpmixError(f"data.weights: {name!r} is not one of the {use!r} SoundFonts "
                             f"({', '.join(SOUNDFONTS.get(use, ()))})")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 < weight < math.inf:
            raise UpmixError(f"data.weights.{name}: expected a positive number, got {weight!r}")
    return {name: float(weight) for name, weight in weights.items()}


def load_config(name: str) -> TrainConfig:
    """A training config by path, or by name from the bundled ``configs`` folder."""
    path = Path(name)
    if not path.is_file():
        path = Path(str(resources.files("training") / "configs" / f"{name}.yaml"))
    return TrainConfig.from_dict(load_yaml(path).value or {})
