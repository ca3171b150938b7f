"""`TrainConfig`: the YAML config typed and frozen, with the defaults the dict reading had."""

import dataclasses
from pathlib import Path

import pytest

from training.config import TrainConfig, load_config
from upmix.errors import UpmixError


def test_the_bundled_config_reads_as_typed_sections():
    cfg = load_config("orchestra")
    assert cfg.run == Path("runs/orchestra") and cfg.seed == 0
    assert (cfg.model.features, cfg.model.hidden, cfg.model.layers, cfg.model.mask_hidden) == (64, 64, 4, 128)
    assert cfg.train.steps == 11000 and cfg.train.lr_decay_steps == 11000.0 and cfg.train.keep_every == 0
    assert cfg.augment.reverb == 0.5 and cfg.eval.every == 250 and cfg.data.soundfonts == "train"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_defaults_and_refusals():
    cfg = TrainConfig.from_dict({"train": {"steps": 300}, "data": {"notes": "n.npz"}})
    assert cfg.train.lr_decay_steps == 300.0 and cfg.train.minutes is None and cfg.data.notes_path == Path("n.npz")
    assert cfg.eval == TrainConfig().eval and cfg.augment == TrainConfig().augment
    for raw, message in (({"train": {"keep_every": 300}}, "must be a multiple of eval.every"),
                         ({"model": {"temperature": 0}}, "model: temperature must be a positive number"),
                         ({"train": {"steps": "many"}}, "train: invalid literal"),
                         ({"eval": [1]}, "eval: expected a mapping"),
                         ({"data": {"weights": {"nothing.sf2": 1}}}, "data.weights: 'nothing.sf2' is not one")):
        with pytest.raises(UpmixError, match=message):
            TrainConfig.from_dict(raw)
