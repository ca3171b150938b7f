"""Uniformly partitioned overlap-save convolution in torch (CPU or CUDA), with crossfaded updates.

Every input is convolved with one response per output channel; outputs sum over inputs. The
responses are cut into partitions of the block size and multiplied with a frequency-domain delay
line of past input blocks, so a long response (a reverberation tail) costs one FFT per block
and a multiply-add per partition. `set_responses` swaps in new responses: the next block is
rendered with both the old and the new ones and crossfaded, so a changing response (a moving
listener) never switches abruptly.
"""

from __future__ import annotations

import numpy as np
import torch


class PartitionedConvolver:
    """Args:
        inputs: number of input signals.
        outputs: number of output channels.
        block: samples per `process` call (the partition size).
        device: torch device.
    """

    def __init__(self, inputs: int, outputs: int, block: int, device: torch.device) -> None:
        self.inputs, self.outputs, self.block, self.device = inputs, outputs, block, device
        self.n_fft = 2 * block
        self._previous_input = torch.zeros(inputs, block, device=device)
        self._history: torch.Tensor | None = None  # (partitions, inputs, bins): newest first
        self._spectra: torch.Tensor | None = None  # (bins, outputs, partitions * inputs)
        self._parts = 0
        self._fading_from: tuple[torch.Tensor, int] | None = None
        self._ramp = (torch.arange(block, device=device, dtype=torch.float32) + 0.5) / block

    def set_responses(self, responses: np.ndarray) -> None:
        """New responses (inputs, outputs, taps); the next block crossfades to them."""
        h = torch.as_tensor(responses, dtype=torch.float32, device=self.device)
        parts = max(1, -(-h.shape[-1] // self.block))
        h = torch.nn.functional.pad(h, (0, parts * self.block - h.shape[-1]))
        h = h.reshape(self.inputs, self.outputs, parts, self.block).permute(2, 0, 1, 3)
        spectra = torch.fft.rfft(h, self.n_fft)  # (parts, inputs, outputs, bins)
        # laid out per bin, so rendering is one batched matrix-vector product
        spectra = spectra.permute(3, 2, 0, 1).reshape(spectra.shape[-1], self.outputs, parts * self.inputs)
        if self._spectra is not None and self._fading_from is None:
            self._fading_from = (self._spectra, self._parts)
        self._spectra, self._parts = spectra.contiguous(), parts

    def _render(self, spectra: torch.Tensor, parts: int) -> torch.Tensor:
        history = self._history[:parts].reshape(parts * self.inputs, -1).T.contiguous()  # (bins, parts * inputs)
        y = torch.bmm(spectra, history[:, :, None])[..., 0].T  # (outputs, bins)
        return torch.fft.irfft(y, self.n_fft)[:, self.block:]

    def process(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Convolve one block (inputs, block); returns (outputs, block)."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        spec = torch.fft.rfft(torch.cat([self._previous_input, x], dim=1), self.n_fft)[None]
        self._previous_input = x
        parts = self._parts if self._spectra is not None else 1
        if self._fading_from is not None:
            parts = max(parts, self._fading_from[1])
        if self._history is None:
            self._history = torch.zeros(parts, self.inputs, spec.shape[-1], dtype=spec.dtype, device=self.device)
        elif self._history.shape[0] < parts:
            pad = torch.zeros(parts - self._history.shape[0], *self._history.shape[1:], dtype=spec.dtype,
                              device=self.device)
            self._history = torch.cat([self._history, pad])
        self._history = torch.cat([spec, self._history[:-1]])
        out = self._render(self._spectra, self._parts)
        if self._fading_from is not None:
            out = self._render(*self._fading_from) * (1 - self._ramp) + out * self._ramp
            self._fading_from = None
        return out
