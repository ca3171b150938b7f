"""The Separator protocol: every backend turns a recording into named stems.

A separator streams: `stream` takes blocks of the input (float32, (channels, frames)) and yields,
block by block, a dict of stem name -> (channels, frames) arrays of the same length as the input
consumed so far, so memory stays bounded for inputs of any length. `separate` is the whole-array
convenience on top. Each stem comes with a `StemSpec`: where the separator suggests it be placed.

Every backend's stems add back up to its input: `mix` says how (a plain sum for source stems, the
ITU fold-down for the speaker feeds of the stage separators), and what a model misses is shared out
among the stems (`add_up`) rather than lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..io import DEFAULT_BLOCK

if TYPE_CHECKING:  # torch is imported by the backends that use it (seconds of start-up)
    import torch

Stems = dict[str, np.ndarray]
"""Stem name -> (channels, frames) float32 audio."""


@dataclass(frozen=True)
class StemSpec:
    """A stem a separator produces and the direction it suggests for it (degrees; azimuth
    anticlockwise from the front, elevation up), with a one-line description."""

    name: str
    azimuth: float = 0.0
    elevation: float = 0.0
    description: str = ""


class Separator(ABC):
    """A separation backend."""

    name: ClassVar[str]
    caveat: ClassVar[str | None] = None
    """A warning that every use of this backend gives (the jobs print it once and put it in their report)."""

    @abstractmethod
    def specs(self) -> list[StemSpec]:
        """The stems this separator produces, in a stable order."""

    needs_analysis: ClassVar[bool] = False
    """Whether `analyse` must see the whole recording before `specs` and `stream` (a separator
    whose stems depend on what the recording holds)."""

    def analyse(self, blocks: Iterable[np.ndarray], sample_rate: int) -> None:
        """A first pass over the recording, in (channels, frames) blocks, for a separator that
        `needs_analysis`; the others ignore it."""

    @abstractmethod
    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[dict[str, np.ndarray]]:
        """Separate a stream of (channels, frames) blocks; yields dicts of stem blocks."""

    def mix(self, stems: Stems) -> np.ndarray:
        """The stems added back up into the input they came from: their sum."""
        return np.sum([stems[s.name] for s in self.specs()], axis=0)

    def separate(self, audio: np.ndarray, sample_rate: int) -> Stems:
        """Separate a whole (channels, frames) array; returns stem name -> (channels, frames)."""
        audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        def blocks() -> Iterator[np.ndarray]:
            return (audio[:, i:i + DEFAULT_BLOCK] for i in range(0, audio.shape[1], DEFAULT_BLOCK))

        if self.needs_analysis:
            self.analyse(blocks(), sample_rate)
        parts: dict[str, list[np.ndarray]] = {}
        for out in self.stream(blocks(), sample_rate):
            for name, block in out.items():
                parts.setdefault(name, []).append(block)
        return {name: np.concatenate(p, axis=1) for name, p in parts.items()}


def add_up(stems: torch.Tensor, mix: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Stems (targets, channels, n) corrected to add up to `mix` (channels, n): per STFT bin
    (`n_fft` frames, hop a quarter of it), what they miss is shared out by their power there
    (`upmix.separation.model.consistent`)."""
    from .model import consistent
    from .transforms import Geometry

    g = Geometry(n_fft, n_fft // 4)
    return g.istft(consistent(g.stft(stems)[None], g.stft(mix)[None])[0], mix.shape[-1])
