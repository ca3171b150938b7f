"""Separation backends behind one protocol (`Separator`), chosen by name."""

from __future__ import annotations

from ..errors import UpmixError
from ..placement import Stage
from .base import Separator, StemSpec
from .mono import MonoSeparator
from .spatial import SpatialSeparator

UPMIX_SEPARATORS = {"spatial": SpatialSeparator, "mono": MonoSeparator}
"""Training-free separators that place a recording on a stage, by name."""


def upmix_separator(name: str, stage: Stage, device: str = "auto", exact_downmix: bool = False) -> Separator:
    """An upmix separator by name (``spatial`` for stereo, ``mono``)."""
    try:
        cls = UPMIX_SEPARATORS[name]
    except KeyError:
        raise UpmixError(f"unknown separator {name!r}; known: {', '.join(UPMIX_SEPARATORS)}") from None
    return cls(stage, device=device, exact_downmix=exact_downmix)


__all__ = ["Separator", "StemSpec", "SpatialSeparator", "MonoSeparator", "upmix_separator"]
