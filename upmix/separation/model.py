"""The orchestral-family separation network: a compact band-split RNN.

Why this model: band-split RNNs (Luo & Yu 2023, "Music source separation with band-split RNN")
reach state-of-the-art music separation at a few million parameters. The spectrum is cut into
bands (narrow at low frequencies, wide at high ones); each band is projected to a feature vector
together with its level (log power, which the band's normalisation would otherwise remove: the
spectral envelope carries much of the timbre that tells the families apart). BLSTMs then
alternate along time (within each band) and across bands (within each frame): the first follows
how notes evolve (attack, vibrato, decay), the second relates a note's harmonics, which is where
the instrument families differ. Per band and target, a small MLP estimates a mask. Small enough
to train on a CPU, and its cost grows linearly with the input's length.

Shapes: spectra are complex ``(batch, channels, bins, frames)`` of an STFT with `ModelConfig.n_fft`
at `ModelConfig.sample_rate` (10.8 Hz bins, 23.2 ms hop at 22.05 kHz); `upmix.separation.transforms`
keeps the same frame duration and bin spacing at any sample rate.

The masks are real ratio masks, a softmax over the targets per bin and channel, so the stems'
spectra add up to the mix's exactly, in training as in use (an easier start on a CPU budget than
the paper's unbounded complex masks, which `mask: complex` selects; those are made
*mixture-consistent* (Wisdom et al. 2019): what the masked stems miss of the mix is shared out by
each stem's power in the bin).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of `BandSplitRNN` (saved with the weights).

    Attributes:
        targets: stem names, in output order.
        sample_rate: Hz, the rate the STFT geometry below refers to.
        n_fft: frame length in samples at `sample_rate` (bins = n_fft // 2 + 1).
        hop: frame step in samples at `sample_rate`.
        channels: input channels (mono input is duplicated).
        band_edges_hz: band boundaries in Hz; the last band runs to `sample_rate` / 2.
        features: feature size per band.
        hidden: LSTM units per direction.
        layers: (time, band) BLSTM pairs.
        mask_hidden: hidden units of the mask MLPs.
        mask: ``ratio`` (real masks, a softmax over the targets, so they add up to one) or
            ``complex`` (unbounded complex masks, as in the BSRNN paper).
        temperature: the ratio masks' softmax temperature (dimensionless, > 0): the mask logits
            are divided by it, so above 1 every mask moves toward an even split. Training runs
            at 1; `training.train`'s ``--calibrate`` chooses the exported weights' value
            on a bank they never heard, where an over-confident mask costs more than a hesitant one.
    """

    targets: tuple[str, ...] = ("strings", "woodwinds", "brass", "other")
    sample_rate: int = 22050
    n_fft: int = 2048
    hop: int = 512
    channels: int = 2
    band_edges_hz: tuple[float, ...] = (
        0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 1250, 1500, 1750, 2000,
        2250, 2500, 2750, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 7000, 8000, 9000, 10000)
    features: int = 64
    hidden: int = 64
    layers: int = 4
    mask_hidden: int = 128
    mask: str = "ratio"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.temperature < float("inf"):
            raise ValueError(f"temperature must be a positive number, not {self.temperature!r}")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def band_slices(self) -> list[tuple[int, int]]:
        """(first bin, end bin) of every band."""
        hz = self.sample_rate / self.n_fft
        edges = [round(e / hz) for e in self.band_edges_hz] + [self.bins]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        data["targets"] = tuple(data["targets"])
        data["band_edges_hz"] = tuple(data["band_edges_hz"])
        return cls(**data)


class _Axis(nn.Module):
    """A residual BLSTM along one axis of (batch, bands, frames, features)."""

    def __init__(self, features: int, hidden: int, along_bands: bool) -> None:
        super().__init__()
        self.along_bands = along_bands
        self.norm = nn.LayerNorm(features)
        self.rnn = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, t, n = x.shape
        z = x.transpose(1, 2) if self.along_bands else x  # sequence axis second to last
        shape = z.shape
        z = self.norm(z.reshape(-1, shape[2], n))
        z = self.out(self.rnn(z)[0]).reshape(shape)
        return x + (z.transpose(1, 2) if self.along_bands else z)


class BandSplitRNN(nn.Module):
    """Complex masks for every target from a mixture spectrum."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, n = config.channels, config.features
        self.bands = config.band_slices()
        self.norms = nn.ModuleList(nn.LayerNorm(2 * c * (b - a)) for a, b in self.bands)
        self.split = nn.ModuleList(nn.Linear(2 * c * (b - a) + c, n) for a, b in self.bands)
        self.layers = nn.ModuleList(_Axis(n, config.hidden, along) for _ in range(config.layers)
                                    for along in (False, True))
        s = len(config.targets)
        parts = 2 if config.mask == "complex" else 1
        self.masks = nn.ModuleList(nn.Sequential(nn.LayerNorm(n), nn.Linear(n, config.mask_hidden), nn.Tanh(),
                                                 nn.Linear(config.mask_hidden, 2 * parts * s * c * (b - a)),
                                                 nn.GLU(dim=-1))
                                   for a, b in self.bands)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Mixture spectra (batch, channels, bins, frames) complex -> stem spectra (batch, targets,
        channels, bins, frames), mixture-consistent."""
        batch, c, f, t = spec.shape
        x = torch.view_as_real(spec).permute(0, 3, 1, 2, 4)  # (batch, frames, channels, bins, 2)
        z = torch.stack([proj(torch.cat([norm(x[:, :, :, a:b].reshape(batch, t, -1)), _level(x[:, :, :, a:b])], -1))
                         for norm, proj, (a, b) in zip(self.norms, self.split, self.bands)],
                        dim=1)  # (batch, bands, frames, features)
        for layer in self.layers:
            z = layer(z)
        s = len(self.config.targets)
        if self.config.mask == "complex":
            masks = torch.cat([head(z[:, k]).reshape(batch, t, s, c, b - a, 2)
                               for k, (head, (a, b)) in enumerate(zip(self.masks, self.bands))], dim=4)
            masks = torch.view_as_complex(masks.permute(0, 2, 3, 4, 1, 5).float().contiguous())  # (b, s, c, f, t)
            return consistent(masks * spec[:, None], spec)
        logits = torch.cat([head(z[:, k]).reshape(batch, t, s, c, b - a)
                            for k, (head, (a, b)) in enumerate(zip(self.masks, self.bands))], dim=4)
        masks = torch.softmax(logits.float() / self.config.temperature, dim=2)
        masks = masks.permute(0, 2, 3, 4, 1)  # (b, s, c, f, t), adding up to 1
        return masks * spec[:, None]


def _level(band: torch.Tensor) -> torch.Tensor:
    """Log power per channel of a band (batch, frames, channels, bins, 2) -> (batch, frames, channels),
    in units of 10 dB: the band's level, which the layer norm of its spectrum removes, so the network
    sees the spectral envelope (where much of an instrument's timbre lies)."""
    return torch.log10(band.float().pow(2).sum(dim=-1).mean(dim=-1) + 1e-8)


def consistent(stems: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Stem spectra (batch, targets, ...) corrected so they add up to `mix` (batch, ...): the
    difference is shared out by each stem's share of the power in the bin (evenly where all are
    silent)."""
    power = stems.real ** 2 + stems.imag ** 2
    total = power.sum(dim=1, keepdim=True)
    share = torch.where(total > 1e-12, power / total.clamp_min(1e-12), 1.0 / stems.shape[1])
    return stems + share * (mix[:, None] - stems.sum(dim=1, keepdim=True))
