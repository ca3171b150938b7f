"""The shared frame of the training-free upmix separators (stereo spatial and mono).

Both work in the STFT domain (numpy on the CPU, torch on CUDA: `upmix.stft`) and produce two
kinds of output:

- *direct* stems, one per destination speaker of the target's stage (`upmix.stage.Stage`):
  per-bin re-panned spectra, resynthesised by overlap-add;
- *bus* signals (e.g. the left and right ambience) that are resynthesised once and then spread,
  through mutually decorrelated all-pass filters, over several destinations with energy shares.

Every stem is named ``<kind>.<speaker>`` (``direct.M+030``, ``ambience.U+045``) and suggests the
direction of its speaker, so a stage scene that puts each stem on its speaker reproduces the
separator's placement exactly. Outputs are aligned with the input (the STFT latency is removed)
and have its length. With `exact_downmix`, the ITU fold-down residual of all stems is added to
the front pair, so folding the upmix down to stereo returns the input to float precision.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..dsp import BlockConvolver, decorrelation_filters
from ..stage import Stage
from ..stft import Array, StreamingISTFT, StreamingSTFT, array_module, device_kind, to_device, to_numpy
from .base import Separator, Stems, StemSpec

DECORRELATION_TAPS = 512
"""Length of the ambience decorrelation filters at 48 kHz (scaled with the sample rate)."""


@dataclass(frozen=True)
class Bus:
    """A signal A spread over destinations: (destination index, energy share, decorrelate?).

    With `fold_back` = (c, ((alpha, beta, fold), ...) for the decorrelated routes in order), as
    `upmix.stage.Stage.ambience_fold_back` gives them, the shares are not used: a decorrelated
    route gets alpha A + beta (d * A) (d its decorrelation filter) and the one other route
    c A - sum fold beta (d * A), so that its fold-down returns A exactly."""

    kind: str
    routes: tuple[tuple[int, float, bool], ...]
    fold_back: tuple[float, tuple[tuple[float, float, float], ...]] | None = None


def fft_size(sample_rate: int) -> int:
    """STFT frame length: 4096 at 44.1/48 kHz (about 85 ms), scaled to keep that duration."""
    return int(2 ** round(np.log2(4096 * sample_rate / 48000)))


class StagedSeparator(Separator):
    """Base class: subclasses define the buses and `_process` (spectra in, spectra out).

    Args:
        stage: the target's stage rules.
        device: ``auto``, ``cpu`` or ``cuda``.
        exact_downmix: make the ITU fold-down of the stems equal the input.
        input_channels: channels `_process` expects (2 stereo, 1 mono).
    """

    input_channels = 2

    def __init__(self, stage: Stage, device: str = "auto", exact_downmix: bool = False) -> None:
        self.stage = stage
        self.device = device_kind(device)
        self.xp = array_module(self.device)
        self.exact_downmix = exact_downmix
        self.buses = self._buses()

    @abstractmethod
    def _buses(self) -> list[Bus]:
        """The bus signals `_process` returns, in order."""

    @abstractmethod
    def _reset(self, sample_rate: int, hop: int) -> None:
        """Start a new stream (clear smoothing state)."""

    @abstractmethod
    def _process(self, spec: Array) -> tuple[dict[int, Array], Array]:
        """Input spectra (input_channels, T, K) -> ({destination index: direct spectrum (T, K)},
        bus spectra (len(buses), T, K))."""

    @property
    def direct(self) -> list[int]:
        """Destinations with a direct stem: the stage's, plus the front pair in exact mode."""
        extra = set(self.stage.front_pair()) if self.exact_downmix else set()
        return sorted(set(self.stage.direct) | extra)

    def specs(self) -> list[StemSpec]:
        dests = self.stage.dests
        out = [StemSpec(f"direct.{dests[i].name}", dests[i].azimuth, dests[i].elevation,
                        "direct sound re-panned onto this speaker") for i in self.direct]
        seen = set()
        for bus in self.buses:
            for d, _, _ in bus.routes:
                name = f"{bus.kind}.{dests[d].name}"
                if name not in seen:
                    seen.add(name)
                    out.append(StemSpec(name, dests[d].azimuth, dests[d].elevation,
                                        f"{bus.kind}, decorrelated, for this speaker"))
        return out

    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[dict[str, np.ndarray]]:
        n_fft = fft_size(sample_rate)
        xp, dev, dests, direct = self.xp, self.device, self.stage.dests, self.direct
        self._reset(sample_rate, n_fft // 2)
        analysis = StreamingSTFT(n_fft, self.input_channels, xp, dev)
        direct_syn = StreamingISTFT(n_fft, len(direct), xp, dev)
        bus_syn = StreamingISTFT(n_fft, len(self.buses), xp, dev)
        taps = max(64, int(DECORRELATION_TAPS * sample_rate / 48000))
        n_dec = sum(dec for bus in self.buses for _, _, dec in bus.routes)
        filters = iter(decorrelation_filters(n_dec, taps)) if n_dec else iter(())
        convolvers = [BlockConvolver(np.stack([next(filters) for _, _, dec in bus.routes if dec]))
                      if any(dec for _, _, dec in bus.routes) else None for bus in self.buses]
        specs = self.specs()
        fold = np.array([dests[self._dest_of(sp.name)].fold for sp in specs]).T  # (2, stems)
        pair = [f"direct.{dests[i].name}" for i in self.stage.front_pair()] if self.exact_downmix else None
        state = {"skip": analysis.latency, "consumed": 0, "emitted": 0, "input": []}

        def emit(frames: Array) -> dict[str, np.ndarray] | None:
            if frames.shape[1] == 0:  # a block shorter than the hop completes no frame
                return None
            d_spec, b_spec = self._process(frames)
            silent = xp.zeros(tuple(frames.shape[1:]), dtype=frames.dtype, device=dev)
            d = to_numpy(direct_syn.push(xp.stack([d_spec.get(i, silent) for i in direct])))
            b = to_numpy(bus_syn.push(b_spec))
            cut = min(state["skip"], d.shape[1])
            state["skip"] -= cut
            n = min(d.shape[1] - cut, state["consumed"] - state["emitted"])
            if n <= 0:
                return None
            d, b = d[:, cut:cut + n], b[:, cut:cut + n]
            out = {f"direct.{dests[i].name}": d[k:k + 1] for k, i in enumerate(direct)}
            for bi, bus in enumerate(self.buses):
                filtered = convolvers[bi].process(b[bi]) if convolvers[bi] is not None else ()
                for (dest, _, _), sig in zip(bus.routes, self._spread(bus, b[bi], filtered)):
                    name = f"{bus.kind}.{dests[dest].name}"
                    out[name] = out[name] + sig[None] if name in out else sig[None]
            if pair is not None:
                x = np.concatenate(state["input"], axis=1)
                state["input"] = [x[:, n:]]
                stems = np.concatenate([out[sp.name] for sp in specs], axis=0)
                residual = self._reference(x[:, :n]) - fold @ stems
                for side, name in enumerate(pair):
                    out[name] = out[name] + residual[side:side + 1]
            state["emitted"] += n
            return {name: v.astype(np.float32, copy=False) for name, v in out.items()}

        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            state["consumed"] += block.shape[1]
            if pair is not None:
                state["input"].append(block)
            out = emit(analysis.push(to_device(block, xp, dev)))
            if out:
                yield out
        out = emit(analysis.flush())
        if out:
            yield out

    @staticmethod
    def _spread(bus: Bus, a: np.ndarray, filtered: Iterable[np.ndarray]) -> list[np.ndarray]:
        """The bus signal `a` (frames,) for each of its routes, in order, from its decorrelated
        copies `filtered` (one per decorrelated route, in order)."""
        if bus.fold_back is None:
            copies = iter(filtered)
            return [np.sqrt(share) * (next(copies) if is_dec else a) for _, share, is_dec in bus.routes]
        c, gains = bus.fold_back
        filtered = list(filtered)
        around = iter([alpha * a + beta * f for (alpha, beta, _), f in zip(gains, filtered)])
        front = c * a - sum((fold * beta * f for (_, beta, fold), f in zip(gains, filtered)), np.zeros_like(a))
        return [next(around) if is_dec else front for _, _, is_dec in bus.routes]

    def mix(self, stems: Stems) -> np.ndarray:
        """The ITU fold-down of the speaker feeds to stereo: the input again with `exact_downmix`
        (mono input: both channels of it)."""
        dests, specs = self.stage.dests, self.specs()
        fold = np.array([dests[self._dest_of(sp.name)].fold for sp in specs]).T
        return fold @ np.concatenate([stems[sp.name] for sp in specs], axis=0)

    def _dest_of(self, stem: str) -> int:
        name = stem.split(".", 1)[1]
        return next(i for i, d in enumerate(self.stage.dests) if d.name == name)

    def _reference(self, x: np.ndarray) -> np.ndarray:
        """The stereo signal the fold-down must reproduce, from input samples."""
        return x if x.shape[0] == 2 else np.repeat(x, 2, axis=0)
