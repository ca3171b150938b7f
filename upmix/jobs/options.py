"""The options of `upmix run`, declared once: the CLI (`run`, `batch`) and the batch manifest build them."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import UpmixError
from ..io import BitDepth
from ..master import Delivery
from ..stage import StageOptions
from .presets import Preset, get_preset

DEVICES = ("auto", "cpu", "cuda")
"""Where the heavy numeric work runs (`upmix.stft.resolve_device`)."""


def check_device(device: str) -> str:
    """`device` if it is one of `DEVICES`; UpmixError otherwise."""
    if device not in DEVICES:
        raise UpmixError(f"{{option}} must be auto, cpu or cuda, not {device!r}", option="device")
    return device


@dataclass(frozen=True)
class RunOptions:
    """Everything `upmix run` takes besides its input and output. None means the default of the
    preset, then of the scene, then of the input.

    Attributes:
        format: target (a layout name, ``binaural``, ``ambix1``..``ambix5``); default 7.1.4.
        preset: ``music`` or ``film`` (`upmix.jobs.presets.PRESETS`).
        width: front stage half-width, degrees. center: 0..1. ambience_front: 0..1. fold_back: the
        ambience folds back to the stereo (`StageOptions`).
        exact_downmix: make the ITU stereo fold-down equal the input, whatever the stage.
        lfe: redirect bass to the LFE.
        scene: seat the recording on this scene's objects; walk: listener keyframes to walk;
        doppler: Doppler shift of moving sources.
        loudness: integrated loudness target, LUFS; true_peak: true-peak ceiling, dBTP.
        sample_rate: output rate, Hz; bits: output sample format.
        separator: ``auto``, ``sources``, ``spatial``, ``mono``, ``orchestra`` or ``demucs[:NAME]``;
        weights: its weights; sources (a count) or directions (stereo azimuths, degrees, +30 hard
        left): the performers the ``sources`` separator splits the recording into.
        hrtf: SOFA file for binaural output (default: the bundled KEMAR set).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    format: str | None = None
    preset: str = "music"
    width: float | None = None
    center: float | None = None
    ambience_front: float | None = None
    fold_back: bool | None = None
    exact_downmix: bool = False
    lfe: bool | None = None
    scene: Path | None = None
    walk: Path | None = None
    doppler: bool | None = None
    loudness: float | None = None
    true_peak: float | None = None
    sample_rate: int | None = None
    bits: BitDepth | None = None
    separator: str = "auto"
    sources: int | None = None
    directions: tuple[float, ...] | None = None
    weights: Path | None = None
    hrtf: Path | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        """Make text typed (the bit depth, the paths) and check every value now, so that a bad
        one stops a batch before its first job."""
        if self.bits is not None:
            object.__setattr__(self, "bits", BitDepth.parse(self.bits))
        for name in ("scene", "walk", "weights", "hrtf"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        check_device(self.device)
        if self.sources is not None or self.directions is not None:
            from ..separation.localise import check_performers

            object.__setattr__(self, "directions", check_performers(self.separator, self.sources, self.directions))
        _ = (self.stage, self.delivery)  # their ranges are checked where they are built

    @property
    def chosen_preset(self) -> Preset:
        return get_preset(self.preset)

    @property
    def stage(self) -> StageOptions:
        """The preset's stage with the width, center, ambience share and fold-back given here instead."""
        return self.chosen_preset.options(self.width, self.center, self.ambience_front, self.fold_back)

    @property
    def delivery(self) -> Delivery:
        return Delivery(self.loudness, self.true_peak)

    def record(self) -> dict[str, Any]:
        """The options given (not None), JSON-ready (paths and bit depths as strings)."""
        return {f.name: v if isinstance(v, bool | int | float) else list(v) if isinstance(v, tuple) else str(v)
                for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def with_strings(self, values: Mapping[str, str], base: Path) -> RunOptions:
        """These options with `values` (text, e.g. a manifest row's cells; empty = keep) instead;
        relative paths are taken from `base`. A bad key or value is an UpmixError naming it."""
        hints = typing.get_type_hints(RunOptions)
        given: dict[str, Any] = {}
        for key, text in values.items():
            if key not in hints:
                raise UpmixError(f"unknown option {key!r}; known: {', '.join(hints)}")
            text = text.strip()
            if text:
                given[key] = _parse(text, hints[key], key, base)
        return replace(self, **given)


def _parse(text: str, hint: Any, key: str, base: Path) -> Any:
    kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is Path:
            return (base / text).resolve()
        if typing.get_origin(kind) is tuple:  # the directions: checked where the options are built
            return text
        return BitDepth.parse(text) if kind is BitDepth else kind(text)
    except ValueError:
        name = {bool: "yes or no", int: "whole number", float: "number"}.get(kind, kind.__name__)
        raise UpmixError(f"{key}: {text!r} is not a valid {name}") from None
