"""The Separator protocol: every backend turns a recording into named stems.

A separator streams: `stream` takes blocks of the input (float32, (channels, frames)) and yields,
block by block, a dict of stem name -> (channels, frames) arrays of the same length as the input
consumed so far, so memory stays bounded for inputs of any length. `separate` is the whole-array
convenience on top. Each stem comes with a `StemSpec`: where the separator suggests it be placed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..audio import DEFAULT_BLOCK


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

    @abstractmethod
    def specs(self) -> list[StemSpec]:
        """The stems this separator produces, in a stable order."""

    @abstractmethod
    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[dict[str, np.ndarray]]:
        """Separate a stream of (channels, frames) blocks; yields dicts of stem blocks."""

    def separate(self, audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        """Separate a whole (channels, frames) array; returns stem name -> (channels, frames)."""
        audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        blocks = (audio[:, i:i + DEFAULT_BLOCK] for i in range(0, audio.shape[1], DEFAULT_BLOCK))
        parts: dict[str, list[np.ndarray]] = {}
        for out in self.stream(blocks, sample_rate):
            for name, block in out.items():
                parts.setdefault(name, []).append(block)
        return {name: np.concatenate(p, axis=1) for name, p in parts.items()}
