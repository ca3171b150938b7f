"""Output targets: something that turns a direction into per-channel gains (or filters).

A target is chosen by a format string: a speaker layout name, alias or layout file (``7.1.4``,
``4+7+0``, ``my_room.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from ..layouts import Layout, get_layout
from .panning import PointSourcePanner, panner_for


@dataclass(frozen=True)
class SpeakerTarget:
    """A loudspeaker layout; gains from the point-source panner, LFE channels left at zero."""

    layout: Layout

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def num_channels(self) -> int:
        return self.layout.num_channels

    @property
    def labels(self) -> list[str]:
        return self.layout.wav_labels

    @property
    def channel_mask(self) -> int:
        return self.layout.channel_mask

    @cached_property
    def panner(self) -> PointSourcePanner:
        return panner_for(self.layout)

    def gains(self, directions: ArrayLike, widths: ArrayLike = 0.0) -> np.ndarray:
        """Per-channel gains (n, num_channels) for direction vectors (n, 3) and spreads in degrees."""
        d = np.asarray(directions, dtype=float).reshape(-1, 3)
        out = np.zeros((len(d), self.num_channels))
        out[:, self.layout.main_indices] = self.panner.spread_gains(d, widths)
        return out


def get_target(spec: str) -> SpeakerTarget:
    """The output target for a format string; raises UpmixError naming the known formats."""
    return SpeakerTarget(get_layout(spec))
