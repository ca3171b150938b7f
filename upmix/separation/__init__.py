"""Separation backends behind one protocol (`Separator`), chosen by name.

| name | stems | how |
|---|---|---|
| ``sources`` | ``source_01`` ... (the performers, by direction, left to right), ``ambience`` | training-free, stereo |
| ``spatial`` | speaker feeds of a stage (``direct.M+030``, ``ambience.U+045``, ...) | training-free, stereo |
| ``mono`` | the same for mono recordings | training-free |
| ``orchestra`` | ``strings``, ``woodwinds``, ``brass``, ``other`` | the shipped band-split RNN |
| ``demucs`` | ``drums``, ``bass``, ``other``, ``vocals`` | Demucs weights you already have |

Every backend's stems add back up to its input (`Separator.mix`: a sum, or for the stage
separators with ``exact_downmix`` the ITU fold-down).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UpmixError
from ..stage import Stage
from .base import Separator, Stems, StemSpec, add_up
from .mono import MonoSeparator
from .spatial import SpatialSeparator

UPMIX_SEPARATORS = {"spatial": SpatialSeparator, "mono": MonoSeparator}
"""Training-free separators that place a recording on a stage, by name."""

SEPARATORS = ("sources", "spatial", "mono", "orchestra", "demucs")
"""Every backend, by name."""


def upmix_separator(name: str, stage: Stage, device: str = "auto", exact_downmix: bool = False) -> Separator:
    """An upmix separator by name (``spatial`` for stereo, ``mono``)."""
    try:
        cls = UPMIX_SEPARATORS[name]
    except KeyError:
        raise UpmixError(f"unknown separator {name!r}; known: {', '.join(UPMIX_SEPARATORS)}") from None
    return cls(stage, device=device, exact_downmix=exact_downmix)


def get_separator(name: str, *, stage: Stage | None = None, device: str = "auto",
                  weights: str | Path | None = None, sources: int | None = None,
                  directions: tuple[float, ...] | None = None) -> Separator:
    """A backend by name. `stage` places the stage separators' feeds (default: a 7.1.4 stage; they
    are made with ``exact_downmix`` so their feeds fold back to the input); `weights` is a
    safetensors file for ``orchestra`` or a folder of Demucs models for ``demucs``; `sources` (a
    count) or `directions` (stereo azimuths, degrees) choose the performers of ``sources``."""
    from .localise import check_performers  # scipy.signal: only for the backends that need it

    check_performers(name, sources, directions)
    if name == "sources":
        from .sources import SourceSeparator

        return SourceSeparator(sources, directions, device=device)
    if name in UPMIX_SEPARATORS:
        if stage is None:
            from ..layouts import get_layout
            from ..stage import StageOptions

            stage = Stage(get_layout("7.1.4"), StageOptions())
        return upmix_separator(name, stage, device, exact_downmix=True)
    if name == "orchestra":
        from .orchestra import OrchestraSeparator

        return OrchestraSeparator(device=device, weights=weights)
    if name == "demucs" or name.startswith("demucs:"):
        from .demucs import DemucsSeparator

        return DemucsSeparator(name.partition(":")[2] or "htdemucs", repo=weights, device=device)
    raise UpmixError(f"unknown separator {name!r}; known: {', '.join(SEPARATORS)}")


__all__ = ["Separator", "StemSpec", "Stems", "SpatialSeparator", "MonoSeparator", "SEPARATORS", "add_up",
           "get_separator", "upmix_separator"]
