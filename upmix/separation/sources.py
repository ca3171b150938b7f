"""Performers by direction: one stem per source of a stereo recording, and the ambience.

Two passes. `SourceSeparator.analyse` streams the recording into a `DirectionMap`
(`upmix.separation.localise`) and takes the sources it finds (or the count or the directions the
user gives). `SourceSeparator.stream` then separates, frame by frame (no state across frames but
the STFT's, so memory stays bounded):

1. Each source k is a direction on the stereo stage, panned with gains a_k = (cos theta_k,
   sin theta_k) (`upmix.stage.pan_angle`). Every STFT bin gets a soft share of each source from
   the azimuth its level difference gives: a Gaussian of width `MASK_WIDTH_DEG` around each
   source, normalised over the sources.
2. The shares refine into a multichannel Wiener filter (Duong, Vincent & Gribonval 2010): source k
   has power v_k = m_k^2 |X|^2 and spatial covariance a_k a_k^T, the ambience power
   v_a = (1 - directness (1 - rest)) |X|^2 / 2 spread equally over both channels (rest: the share
   of the bin no source claims; `AMBIENCE_FLOOR` of the frame's mean power keeps C invertible),
   and s_k = v_k a_k^T C^-1 X with
   C = sum_k v_k a_k a_k^T + v_a I. With two channels this can pull apart two sources sounding in
   the same bin, which a mask cannot. Source k's stem is its image a_k s_k (stereo) or s_k (mono);
   the ambience is what is left, X - sum_k a_k s_k, so the stems add up to the input.

Frames are `frame_size` long (about 170 ms): held notes are sparser in long frames. Measured on
pan-potted chorales played with recorded instrument samples (`docs/separation.md`): the Wiener
step gains about 0.5 dB median SI-SDR over the shares alone, and 170 ms frames about 2 dB over 43 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from ..errors import UpmixError
from ..stage import pan_angle, stereo_azimuth
from ..stft import StreamingISTFT, StreamingSTFT, array_module, resolve_device, smooth_bins
from .base import Separator, Stems, StemSpec
from .localise import COHERENCE_BINS, DirectionMap, LocalisedSource, check_count, check_directions

MASK_WIDTH_DEG = 4.0
"""Standard deviation of a source's share of the bins around its azimuth, degrees."""

OTHER_DEG = 10.0
"""A bin this far from every source goes as much to the rest (the ambience stem) as to the nearest."""

AMBIENCE_FLOOR = 1e-4
"""Ambience power added to every bin, as a share of the frame's mean bin power (regularises C)."""

TABLE_STEPS = 4097
"""Steps of the level balance in the table of each source's share of a bin."""


def frame_size(sample_rate: int) -> int:
    """STFT frame length: 8192 at 44.1/48 kHz (about 170 ms), scaled to keep that duration."""
    return int(2 ** round(np.log2(8192 * sample_rate / 48000)))


class SourceSeparator(Separator):
    """Stereo in; one stem per source found by direction (``source_01`` leftmost), and the ambience.

    Args:
        count: how many sources (None: as many as the map shows).
        directions: the sources' stereo azimuths in degrees instead (`check_directions`).
        device: ``auto``, ``cpu`` or ``cuda``.
        mono: give each source as one channel (its signal s_k) and the ambience as two stems
            ``ambience.left`` and ``ambience.right``, for seating on a scene; else every stem
            is stereo (the source's image a_k s_k) and the stems add up to the input.
    """

    name = "sources"
    needs_analysis = True

    def __init__(self, count: int | None = None, directions: Iterable[float] | None = None,
                 device: str = "auto", mono: bool = False) -> None:
        self.count = check_count(count, directions)
        self.device = resolve_device(device)
        self.mono = mono
        self.found: list[LocalisedSource] = []
        self.given = directions is not None
        if directions is not None:
            self.found = [LocalisedSource(azimuth=d, spread=0.0, share=float("nan"), active=float("nan"))
                          for d in check_directions(directions)]

    def analyse(self, blocks: Iterable[np.ndarray], sample_rate: int) -> None:
        """Find the sources; with directions given there is nothing to read."""
        if self.given:
            return
        direction_map = DirectionMap(sample_rate)
        for block in blocks:
            if block.shape[0] != 2:
                raise UpmixError("the sources separator needs a stereo recording; this one is mono")
            direction_map.update(block)
        self.found = direction_map.sources(self.count)

    @property
    def sources(self) -> list[LocalisedSource]:
        """The sources, leftmost (highest azimuth) first."""
        return self.found

    def specs(self) -> list[StemSpec]:
        if not self.found:
            raise RuntimeError("SourceSeparator.analyse must run first")
        out = [StemSpec(f"source_{k + 1:02d}", s.azimuth, 0.0, f"the source at {s.azimuth:+.1f} degrees on the "
                        "stereo stage") for k, s in enumerate(self.found)]
        if self.mono:
            return out + [StemSpec("ambience.left", 110.0, 0.0, "ambience and reverberation, left"),
                          StemSpec("ambience.right", -110.0, 0.0, "ambience and reverberation, right")]
        return out + [StemSpec("ambience", 0.0, 0.0, "ambience and reverberation (stereo)")]

    def mix(self, stems: Stems) -> np.ndarray:
        """The stems added back up into the input (mono sources panned back onto the pair)."""
        if not self.mono:
            return super().mix(stems)
        total = np.concatenate([stems["ambience.left"], stems["ambience.right"]], axis=0)
        return total + np.einsum("kc,kn->cn", self._gains().cpu().numpy(),
                                 np.concatenate([stems[f"source_{k + 1:02d}"] for k in range(len(self.found))]))

    def _gains(self) -> torch.Tensor:
        """(sources, 2) panning gains (cos theta, sin theta)."""
        theta = torch.tensor(pan_angle([s.azimuth for s in self.found]), dtype=torch.float32, device=self.device)
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)

    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[dict[str, np.ndarray]]:
        specs = self.specs()
        n_fft = frame_size(sample_rate)
        xp = array_module(self.device.type, torch=True)
        analysis = StreamingSTFT(n_fft, 2, xp, self.device)
        synthesis = StreamingISTFT(n_fft, len(self.found), xp, self.device)
        gains_t = self._gains()
        gains = gains_t.cpu().numpy()
        table = self._share_table()
        state = {"skip": analysis.latency, "consumed": 0, "emitted": 0, "input": []}

        def emit(frames: torch.Tensor) -> dict[str, np.ndarray] | None:
            if frames.shape[1] == 0:
                return None
            y = synthesis.push(self._process(frames, table, gains_t)).cpu().numpy()
            cut = min(state["skip"], y.shape[1])
            state["skip"] -= cut
            n = min(y.shape[1] - cut, state["consumed"] - state["emitted"])
            if n <= 0:
                return None
            y = y[:, cut:cut + n]
            x = np.concatenate(state["input"], axis=1)
            state["input"] = [x[:, n:]]
            state["emitted"] += n
            # the images a_k s_k are the mono signals panned (constant gains), so the ambience is
            # the input less them, sample by sample, and the stems add up to the input exactly
            images = gains[:, :, None] * y[:, None]  # (K, 2, n)
            ambience = x[:, :n] - images.sum(axis=0)
            if self.mono:
                out = {spec.name: y[k:k + 1] for k, spec in enumerate(specs[:len(y)])}
                out["ambience.left"], out["ambience.right"] = ambience[:1], ambience[1:]
            else:
                out = {spec.name: images[k] for k, spec in enumerate(specs[:len(y)])}
                out["ambience"] = ambience
            return {name: block.astype(np.float32) for name, block in out.items()}

        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.shape[0] != 2:
                raise UpmixError("the sources separator needs a stereo recording; this one is mono")
            state["consumed"] += block.shape[1]
            state["input"].append(block)
            out = emit(analysis.push(torch.from_numpy(block).to(self.device)))
            if out:
                yield out
        out = emit(analysis.flush())
        if out:
            yield out

    def _share_table(self) -> torch.Tensor:
        """(sources, `TABLE_STEPS`) each source's share of a bin, by the bin's level balance
        (|L|^2 - |R|^2) / (|L|^2 + |R|^2) from -1 to 1 in equal steps: a Gaussian in the azimuth
        that balance gives, `MASK_WIDTH_DEG` wide, normalised over the sources and a rest that
        weighs as much as a source `OTHER_DEG` away (what is far from every source stays out)."""
        azimuth = stereo_azimuth(np.arccos(np.linspace(-1.0, 1.0, TABLE_STEPS)) / 2)
        centres = np.array([s.azimuth for s in self.found])
        share = np.exp(-0.5 * ((azimuth[None] - centres[:, None]) / MASK_WIDTH_DEG) ** 2)
        share /= share.sum(axis=0) + np.exp(-0.5 * (OTHER_DEG / MASK_WIDTH_DEG) ** 2)
        return torch.tensor(share, dtype=torch.float32, device=self.device)

    def _process(self, spec: torch.Tensor, table: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """(2, T, F) input spectra -> (sources, T, F) the sources' signals s_k; `gains` (K, 2)."""
        left, right = spec[0], spec[1]
        power_l, power_r = left.real ** 2 + left.imag ** 2, right.real ** 2 + right.imag ** 2
        power = power_l + power_r
        balance = (power_l - power_r) / power.clamp(min=1e-30)
        index = ((balance + 1) * ((TABLE_STEPS - 1) / 2)).round().long().clamp(0, TABLE_STEPS - 1)
        share = table[:, index]  # (K, T, F)
        v = share ** 2 * power
        rest = (1 - share.sum(dim=0)) ** 2  # the share of sound far from every source, as a power
        v_amb = (1 - _directness(left, right, power_l, power_r) * (1 - rest)) * power / 2 \
            + AMBIENCE_FLOOR * power.mean(dim=-1, keepdim=True)
        c11 = torch.einsum("k,ktf->tf", gains[:, 0] ** 2, v) + v_amb
        c22 = torch.einsum("k,ktf->tf", gains[:, 1] ** 2, v) + v_amb
        c12 = torch.einsum("k,ktf->tf", gains[:, 0] * gains[:, 1], v)
        det = (c11 * c22 - c12 ** 2).clamp(min=1e-30)
        # C^-1 X, then each source's s_k = v_k a_k^T C^-1 X
        w_l = (c22 * left - c12 * right) / det
        w_r = (c11 * right - c12 * left) / det
        return v * (gains[:, 0, None, None] * w_l + gains[:, 1, None, None] * w_r)


def _directness(left: torch.Tensor, right: torch.Tensor, power_l: torch.Tensor, power_r: torch.Tensor
                ) -> torch.Tensor:
    """How much one direction dominates each bin (0..1), as `DirectionMap` measures it (from the
    channels' covariance over `COHERENCE_BINS` neighbouring bins)."""
    cross = left * right.conj()
    sxx, syy, c_re, c_im = smooth_bins(torch.stack([power_l, power_r, cross.real, cross.imag]), COHERENCE_BINS)
    return (((sxx - syy) ** 2 + 4 * (c_re ** 2 + c_im ** 2)) / ((sxx + syy) ** 2).clamp(min=1e-30)).clamp(0.0, 1.0)
