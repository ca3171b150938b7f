"""`OrchestraSeparator`: a recording split into strings, woodwinds, brass and other, by the band-split
RNN of `upmix.separation.model` with the weights shipped in ``upmix/separation/weights/``.

- **Streaming** in overlapping chunks, batched, crossfaded (`upmix.separation.chunked`); on the GPU
  with bfloat16 autocast when there is one.
- **Any sample rate**: the STFT keeps the model's frame duration and bin spacing
  (`upmix.separation.transforms`); above the model's 11.025 kHz each stem takes the share of the
  mix it has in the model's top band, frame by frame; below it the model's own (mixture-consistent)
  estimate. The output has the input's rate.
- **Mono or stereo**: mono is fed to the model as two equal channels and the stems folded back.
- The model is loaded once per process and device (`load_model`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch

from ..errors import UpmixError
from ..stft import resolve_device
from .base import StemSpec
from .chunked import BATCH, ChunkedSeparator
from .model import BandSplitRNN, ModelConfig
from .transforms import Geometry

EXPERIMENTAL = ("the orchestra separator is experimental: on recorded instruments (48 held-out excerpts) its "
                "median SI-SDR improvement is strings +2.6, woodwinds +0.9, brass +0.5, other +2.4 dB, its stems "
                "are worse than the input in 50 of 143 cases, and an ideal mask reaches +16 to +17 dB")
"""What the orchestra separator is, said on every use (`OrchestraSeparator.caveat`): the figures that
``python benchmarks/separation_quality.py --soundfonts samples`` printed for the shipped weights
(README, "Separating into stems")."""

DIRECTIONS = {"strings": (20.0, 0.0), "woodwinds": (0.0, 5.0), "brass": (-15.0, 8.0), "other": (40.0, 0.0)}
"""Where each family suggests itself (azimuth, elevation in degrees), as seated on a concert stage."""


def default_weights() -> Path:
    """The shipped weights file."""
    return Path(str(resources.files("upmix.separation") / "weights" / "orchestra.safetensors"))


def read_weights(path: str | Path) -> tuple[ModelConfig, dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors weights file (`train.export_weights`): its model config, its metadata and its
    tensors as float32; an `UpmixError` naming the file when it cannot be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        config = ModelConfig.from_json(meta["config"])
        state = load_file(str(path))
    except (OSError, KeyError, ValueError, SafetensorError) as e:
        raise UpmixError(f"cannot load separation weights ({e})", path) from None
    return config, meta, {k: v.float() for k, v in state.items()}


@lru_cache(maxsize=4)
def load_model(path: str, device: str) -> BandSplitRNN:
    """The model of a safetensors file on a device, in inference mode (cached per process)."""
    config, _, state = read_weights(path)
    model = BandSplitRNN(config)
    model.load_state_dict(state)
    return model.to(device).eval()


class OrchestraSeparator(ChunkedSeparator):
    """Strings, woodwinds, brass and other from a mono or stereo recording.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``.
        weights: a safetensors file (default: the shipped weights).
        batch: chunks separated at once.
    """

    name = "orchestra"
    caveat = EXPERIMENTAL

    def __init__(self, device: str = "auto", weights: str | Path | None = None, batch: int = BATCH) -> None:
        self.device = resolve_device(device)
        path = Path(weights) if weights else default_weights()
        if not path.is_file():
            raise UpmixError("the orchestra separator's weights are not installed", path)
        self.model = load_model(str(path), str(self.device))
        self.batch = batch

    @property
    def stem_names(self) -> list[str]:
        return list(self.config.targets)

    def min_chunk(self, sample_rate: int) -> int:
        return 4 * Geometry.at(self.config, sample_rate).n_fft

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def specs(self) -> list[StemSpec]:
        return [StemSpec(name, *DIRECTIONS.get(name, (0.0, 0.0)), f"{name} (separated by the orchestra model)")
                for name in self.config.targets]

    @torch.no_grad()
    def separate_chunks(self, x: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Chunks (batch, channels, n) -> stems (batch, targets, channels, n) that add up to them."""
        cfg, geometry = self.config, Geometry.at(self.config, sample_rate)
        channels = x.shape[1]
        if channels == 1:
            x = x.repeat(1, 2, 1)
        scale = x.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-6)
        spec = geometry.stft(x / scale)
        model_bins = cfg.bins
        head = spec[:, :, :model_bins]
        if head.shape[2] < model_bins:
            head = torch.nn.functional.pad(head, (0, 0, 0, model_bins - head.shape[2]))
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                est = self.model(head)
        else:
            est = self.model(head)
        est = est[:, :, :, :spec.shape[2]]
        if spec.shape[2] > model_bins:  # above the model's band: each stem's share of its top band
            a, b = cfg.band_slices()[-1]
            power = est[:, :, :, a:b].abs().pow(2).sum(dim=3, keepdim=True)
            share = power / power.sum(dim=1, keepdim=True).clamp_min(1e-20)
            share = torch.where(power.sum(dim=1, keepdim=True) > 0, share, 1.0 / est.shape[1])
            est = torch.cat([est, share * spec[:, None, :, model_bins:]], dim=3)
        stems = geometry.istft(est, x.shape[-1]) * scale[:, None]
        return stems.mean(dim=2, keepdim=True) if channels == 1 else stems
