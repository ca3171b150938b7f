"""Output targets: what turns sound from a direction into output channels.

Every target gives a `mixer` for a set of voices (mono signals with a direction, a spread and a
gain): speaker layouts and Ambisonics mix with gains, binaural with a pair of HRIR filters per
voice. A format string picks the target:

- a speaker layout name, alias or layout file (``7.1.4``, ``4+7+0``, ``my_room.yaml``);
- ``binaural`` (the bundled KEMAR HRTF set, or the SOFA file given as `hrtf`);
- ``ambix1`` .. ``ambix5``: AmbiX (ACN, SN3D) of that order.

Directions are unit vectors in the listener's head frame (x right, y front, z up); widths are
angular diameters in degrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ..dsp import BlockConvolver, bs1770_weights, decorrelation_filters
from ..errors import UpmixError
from ..geometry import normalise, orthonormal_frame
from ..layouts import Layout, get_layout
from .panning import PointSourcePanner, cap_groups, panner_for

SPREAD_VOICES = 7
"""Directions a spread source is rendered from on targets that filter (binaural)."""


class GainMixer:
    """Mixes voices to channels with a fixed gain matrix (channels, voices).

    A matrix that sends each voice to one channel at most (a stage's stems on their speakers) is
    applied voice by voice: for 13 stems on 12 speakers, 0.07 s per 10 minutes of audio against
    0.29 s for the matrix product.
    """

    tail = 0

    def __init__(self, gains: np.ndarray) -> None:
        self.gains = np.asarray(gains, dtype=np.float32)
        rows, cols = np.nonzero(self.gains)
        one_each = len(set(cols.tolist())) == len(cols) and len(cols) <= self.gains.size // 4
        self._routes = list(zip(rows.tolist(), cols.tolist(), self.gains[rows, cols].tolist())) if one_each else None

    def process(self, x: np.ndarray) -> np.ndarray:
        if self._routes is None:
            return self.gains @ x
        out = np.zeros((self.gains.shape[0], x.shape[1]), dtype=np.float32)
        for row, col, gain in self._routes:
            out[row] += x[col] if gain == 1.0 else np.float32(gain) * x[col]
        return out


class FilterMixer:
    """Mixes voices to channels through filters (channels, voices, taps)."""

    def __init__(self, filters: np.ndarray) -> None:
        self._conv = BlockConvolver(filters)
        self.tail = self._conv.taps - 1

    def process(self, x: np.ndarray) -> np.ndarray:
        return self._conv.process(x)


@runtime_checkable
class Target(Protocol):
    """What every output target has (`SpeakerTarget`, `AmbisonicsTarget`, `BinauralTarget`);
    code that needs more (encoding gains, HRIRs, a layout) checks which target it has."""

    @property
    def name(self) -> str:
        """A layout name, ``binaural`` or ``ambixN``."""

    @property
    def num_channels(self) -> int: ...

    @property
    def labels(self) -> list[str]:
        """Short channel labels (``FL``, ``ACN0``, ...)."""

    @property
    def channel_names(self) -> list[str]:
        """Channel names for people."""

    @property
    def channel_mask(self) -> int:
        """WAVE_FORMAT_EXTENSIBLE speaker mask (0: none)."""

    @property
    def lfe_indices(self) -> np.ndarray:
        """Indices of the LFE channels."""

    @property
    def loudness_weights(self) -> np.ndarray:
        """Weight of each channel in a loudness measurement (BS.1770)."""

    def delay_offset(self, sample_rate: int) -> float:
        """Samples the encoding adds to every path."""

    def mixer(self, directions: np.ndarray, widths: np.ndarray, scales: np.ndarray, sample_rate: int
              ) -> GainMixer | FilterMixer:
        """Mixes voices (direction vectors (n, 3), spreads in degrees, gains) to the channels."""

    def diffuse_directions(self) -> np.ndarray:
        """Unit vectors (k, 3) diffuse sound is rendered from."""


def _spread_directions(direction: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """`SPREAD_VOICES` directions covering a cap of angular diameter `width` around `direction`,
    with energy weights: the centre and a ring at two thirds of the cap's radius."""
    half = np.radians(min(width, 360.0) / 2)
    theta = 2 / 3 * half
    phi = np.arange(SPREAD_VOICES - 1) * 2 * np.pi / (SPREAD_VOICES - 1)
    local = np.concatenate([[[0.0, 0.0, 1.0]], np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                                                          np.full_like(phi, np.cos(theta))], axis=1)])
    return local @ orthonormal_frame(direction), np.full(SPREAD_VOICES, 1.0 / SPREAD_VOICES)


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
    def channel_names(self) -> list[str]:
        return self.layout.channel_names

    @property
    def channel_mask(self) -> int:
        return self.layout.channel_mask

    @property
    def lfe_indices(self) -> np.ndarray:
        return self.layout.lfe_indices

    @property
    def loudness_weights(self) -> np.ndarray:
        sp = self.layout.speakers
        return bs1770_weights([s.azimuth for s in sp], [s.elevation for s in sp], [s.is_lfe for s in sp])

    def delay_offset(self, sample_rate: int) -> float:
        """Samples the encoding adds to every path (none for gains)."""
        return 0.0

    @cached_property
    def panner(self) -> PointSourcePanner:
        return panner_for(self.layout)

    def gains(self, directions: ArrayLike, widths: ArrayLike = 0.0) -> np.ndarray:
        """Per-channel gains (n, num_channels) for direction vectors (n, 3) and spreads in degrees."""
        d = np.asarray(directions, dtype=float).reshape(-1, 3)
        out = np.zeros((len(d), self.num_channels))
        out[:, self.layout.main_indices] = self.panner.spread_gains(d, widths)
        return out

    def mixer(self, directions: np.ndarray, widths: np.ndarray, scales: np.ndarray, sample_rate: int) -> GainMixer:
        return GainMixer((self.gains(directions, widths) * np.asarray(scales)[:, None]).T)

    def diffuse_directions(self) -> np.ndarray:
        """Where diffuse sound is rendered from: every main speaker."""
        return self.layout.positions


@dataclass(frozen=True)
class AmbisonicsTarget:
    """AmbiX (ACN channel order, SN3D normalisation) of order 1..5."""

    order: int

    @property
    def name(self) -> str:
        return f"ambix{self.order}"

    @property
    def num_channels(self) -> int:
        return (self.order + 1) ** 2

    @property
    def labels(self) -> list[str]:
        return [f"ACN{k}" for k in range(self.num_channels)]

    @property
    def channel_names(self) -> list[str]:
        return self.labels

    channel_mask = 0
    lfe_indices = np.zeros(0, dtype=int)

    def delay_offset(self, sample_rate: int) -> float:
        """Samples the encoding adds to every path (none for gains)."""
        return 0.0

    @property
    def loudness_weights(self) -> np.ndarray:
        """Loudness is measured on W, the omnidirectional channel."""
        w = np.zeros(self.num_channels)
        w[0] = 1.0
        return w

    def gains(self, directions: ArrayLike, widths: ArrayLike = 0.0) -> np.ndarray:
        """SN3D encoding gains (n, channels); a spread source averages them over its cap, so W
        stays 1 while the higher orders fade with the width."""
        from .sh import sn3d

        d = np.asarray(directions, dtype=float).reshape(-1, 3)
        w = np.broadcast_to(np.asarray(widths, dtype=float), (len(d),))
        out = sn3d(self.order, d)
        for rows, samples, weights in cap_groups(d, w):
            out[rows] = np.einsum("m,nmc->nc", weights, sn3d(self.order, samples).reshape(len(rows), len(weights), -1))
            out[rows] /= weights.sum()
        return out

    def mixer(self, directions: np.ndarray, widths: np.ndarray, scales: np.ndarray, sample_rate: int) -> GainMixer:
        return GainMixer((self.gains(directions, widths) * np.asarray(scales)[:, None]).T)

    def diffuse_directions(self) -> np.ndarray:
        from .sh import t_design

        return t_design(2 * self.order + 1)


@dataclass(frozen=True)
class BinauralTarget:
    """Headphones: each voice through an interpolated HRIR pair (`hrtf`: a SOFA file, or None for
    the bundled KEMAR set)."""

    hrtf: str | None = None

    name = "binaural"
    num_channels = 2
    labels = ["FL", "FR"]
    channel_names = ["left ear", "right ear"]
    channel_mask = 0x3
    lfe_indices = np.zeros(0, dtype=int)
    loudness_weights = np.ones(2)

    def prepared(self, sample_rate: int):
        from .binaural import get_hrtf

        return get_hrtf(self.hrtf, sample_rate)

    def delay_offset(self, sample_rate: int) -> float:
        """Samples the HRIRs add to every path (`Hrtf.latency`); renderers take them off."""
        return self.prepared(sample_rate).latency

    def filters(self, directions: np.ndarray, widths: np.ndarray, scales: np.ndarray, sample_rate: int
                ) -> np.ndarray:
        """HRIR pairs (2, voices, taps); a spread voice sums decorrelated HRIRs from around its cap."""
        hrtf = self.prepared(sample_rate)
        d = normalise(np.asarray(directions, dtype=float).reshape(-1, 3))
        widths = np.broadcast_to(np.asarray(widths, dtype=float), (len(d),))
        irs = [hrtf.hrirs(d[i:i + 1])[0] if widths[i] <= 0 else None for i in range(len(d))]
        spread = np.flatnonzero(widths > 0)
        if len(spread):
            dec = decorrelation_filters(SPREAD_VOICES, int(512 * sample_rate / 48000))
            for i in spread:
                dirs, weights = _spread_directions(d[i], widths[i])
                h = hrtf.hrirs(dirs)  # (K, 2, L)
                n = h.shape[-1] + dec.shape[-1] - 1
                combined = np.fft.irfft(np.einsum("k,kes,ks->es", np.sqrt(weights), np.fft.rfft(h, n),
                                                  np.fft.rfft(dec, n)), n)
                irs[i] = combined
        length = max(ir.shape[-1] for ir in irs)
        out = np.zeros((2, len(d), length))
        for i, ir in enumerate(irs):
            out[:, i, :ir.shape[-1]] = ir * scales[i]
        return out

    def mixer(self, directions: np.ndarray, widths: np.ndarray, scales: np.ndarray, sample_rate: int
              ) -> FilterMixer:
        return FilterMixer(self.filters(directions, widths, np.asarray(scales, dtype=float), sample_rate))

    def diffuse_directions(self) -> np.ndarray:
        from .sh import t_design

        return t_design(5)


_AMBIX = re.compile(r"^ambix([1-9])$", re.IGNORECASE)


def get_target(spec: str, hrtf: str | Path | None = None) -> Target:
    """The output target for a format string; raises UpmixError naming the known formats."""
    key = spec.strip().lower()
    if key == "binaural":
        return BinauralTarget(None if hrtf is None else str(hrtf))
    match = _AMBIX.match(key)
    if match:
        order = int(match.group(1))
        if order > 5:
            raise UpmixError(f"Ambisonic order {order} is not supported; use ambix1 .. ambix5")
        return AmbisonicsTarget(order)
    try:
        return SpeakerTarget(get_layout(spec))
    except UpmixError as exc:
        if exc.message.startswith("unknown speaker layout"):
            raise UpmixError(f"{exc.message}; or binaural, or ambix1 .. ambix5") from None
        raise


def check_format(spec: str) -> None:
    """Raise the UpmixError `get_target` would for a format string, without loading an HRTF set."""
    if spec.strip().lower() != "binaural":
        get_target(spec)
