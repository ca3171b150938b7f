"""`DemucsSeparator`: Demucs (``pip install upmix[demucs]``) with weights you already have, offline.

Weights are looked for, never downloaded: in a folder you give (``--weights DIR``, Demucs' "local
repo": ``<signature>.th`` files and, for a bag of models, its ``<name>.yaml``), else in torch's hub
cache (``$TORCH_HOME/hub/checkpoints``), where an earlier online Demucs run leaves them. When they
are not there the error says where they were looked for.

Checkpoints are pickles, and Demucs' own loader unpickles them with ``weights_only=False``, which
runs whatever code a crafted file carries. Here they are read with torch's weights-only unpickler,
which allows tensors and plain containers plus, for this load only, `CHECKPOINT_GLOBALS`: a file
that references anything else is refused before any of it runs.

The input is resampled to the model's rate, separated in the crossfaded chunks of
`upmix.separation.chunked` (Demucs' own ``apply_model`` splits each chunk into its training
segments), resampled back, and corrected to add up to the input (`upmix.separation.base.add_up`:
resampling and Demucs' own processing leave a small residual). Mono input is fed as two channels.
"""

from __future__ import annotations

import pickle
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..dsp import resample
from ..errors import UpmixError
from ..stft import resolve_device
from .base import StemSpec, add_up
from .chunked import BATCH, ChunkedSeparator

DIRECTIONS = {"vocals": (0.0, 0.0), "drums": (0.0, 0.0), "bass": (0.0, 0.0), "other": (0.0, 0.0),
              "guitar": (25.0, 0.0), "piano": (-25.0, 0.0)}
"""Suggested directions of Demucs' stems (azimuth, elevation in degrees)."""

RESIDUAL_FFT = 4096
"""STFT length (at the input's rate) of the add-up correction."""


def hub_checkpoints() -> Path:
    """torch's hub cache folder for checkpoints, where Demucs keeps downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def model_classes() -> tuple[type, ...]:
    """The model classes a Demucs checkpoint may name (its ``klass``)."""
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return Demucs, HDemucs, HTDemucs


CHECKPOINT_GLOBALS = (Fraction,)
"""What a Demucs checkpoint references besides tensors, plain containers and `model_classes`:
HTDemucs keeps its ``segment`` (seconds) as a Fraction."""


def load_checkpoint(path: Path):
    """A Demucs model from one checkpoint (a package as ``demucs.states.serialize_model`` makes it:
    ``klass``, ``args``, ``kwargs``, ``state``), unpickled weights-only. Raises UpmixError for a
    file that references anything but `model_classes` and `CHECKPOINT_GLOBALS`, or is not one."""
    from demucs.states import load_model

    classes = model_classes()
    try:
        with torch.serialization.safe_globals([*classes, *CHECKPOINT_GLOBALS]):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:
            raise UpmixError(f"not loaded: it references {found[1]}, which is not part of a Demucs model "
                             "(unpickling it could run code)", path) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
        raise UpmixError(f"not a readable Demucs checkpoint ({detail[1] if detail else 'unpickling failed'})",
                         path) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise UpmixError(f"not a readable Demucs checkpoint ({(str(e).splitlines() or [type(e).__name__])[0]})",
                         path) from None
    if not isinstance(package, dict) or package.get("klass") not in classes or \
            not {"args", "kwargs", "state"} <= package.keys():
        raise UpmixError("not a Demucs checkpoint (a dict with klass, args, kwargs and state)", path)
    return load_model(package)


def load_demucs(name: str, repo: Path | None):
    """A Demucs model or bag of models from local files only (see `load_checkpoint`)."""
    try:
        from demucs.pretrained import REMOTE_ROOT, ModelLoadingError
        from demucs.repo import AnyModelRepo, BagOnlyRepo, LocalRepo, check_checksum
    except ImportError:
        raise UpmixError("the demucs separator needs the demucs package: pip install 'upmix[demucs]'") from None

    class SafeLocalRepo(LocalRepo):
        """Demucs' local repository (``<signature>[-<sha256 prefix>].th`` files), loading weights-only."""

        def get_model(self, sig: str):
            if sig not in self._models:
                raise ModelLoadingError(f"no checkpoint with signature {sig}")
            if sig in self._checksums:
                check_checksum(self._models[sig], self._checksums[sig])
            return load_checkpoint(self._models[sig])

    folder = Path(repo) if repo else hub_checkpoints()
    if not folder.is_dir():
        raise UpmixError(f"no Demucs weights for {name!r} here (a folder of .th files is needed; "
                         "upmix never downloads them)", folder)
    try:
        models = SafeLocalRepo(folder)
        bags = BagOnlyRepo(folder if (folder / f"{name}.yaml").is_file() else REMOTE_ROOT, models)
        model = AnyModelRepo(models, bags).get_model(name)
    except (ModelLoadingError, OSError, KeyError) as e:
        raise UpmixError(f"Demucs model {name!r} is not available offline here ({e})", folder) from None
    return model.eval()


class DemucsSeparator(ChunkedSeparator):
    """Demucs stems (``drums``, ``bass``, ``other``, ``vocals`` for htdemucs) of a recording.

    Args:
        model: a Demucs model name (``htdemucs``, ``htdemucs_ft``, ``mdx_extra``, ...) or signature,
            or an already built Demucs model.
        repo: folder with the weights (default: torch's hub cache).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    name = "demucs"

    def __init__(self, model="htdemucs", repo: str | Path | None = None, device: str = "auto",
                 batch: int = BATCH) -> None:
        self.device = resolve_device(device)
        self.model = (load_demucs(model, Path(repo) if repo else None) if isinstance(model, str) else model)
        self.model.to(self.device)
        self.batch = batch

    @property
    def stem_names(self) -> list[str]:
        return list(self.model.sources)

    def specs(self) -> list[StemSpec]:
        return [StemSpec(s, *DIRECTIONS.get(s, (0.0, 0.0)), f"{s} (Demucs)") for s in self.stem_names]

    @torch.no_grad()
    def separate_chunks(self, x: torch.Tensor, sample_rate: int) -> torch.Tensor:
        from demucs.apply import apply_model

        rate = int(self.model.samplerate)
        channels = x.shape[1]
        stereo = x.repeat(1, 2, 1) if channels == 1 else x
        audio = resample(stereo.cpu().numpy(), sample_rate, rate)
        inp = torch.from_numpy(np.ascontiguousarray(audio)).to(self.device)
        est = apply_model(self.model, inp, split=True, overlap=0.25, device=self.device, progress=False)
        est = resample(est.float().cpu().numpy(), rate, sample_rate)
        est = torch.from_numpy(np.ascontiguousarray(est[..., :x.shape[-1]], dtype=np.float32))
        if est.shape[-1] < x.shape[-1]:
            est = torch.nn.functional.pad(est, (0, x.shape[-1] - est.shape[-1]))
        n_fft = min(RESIDUAL_FFT, 1 << int(np.log2(max(x.shape[-1], 16))))
        out = torch.stack([add_up(e, m, n_fft) for e, m in zip(est, stereo.float().cpu())])
        return (out.mean(dim=2, keepdim=True) if channels == 1 else out).to(self.device)
