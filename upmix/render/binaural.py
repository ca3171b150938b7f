"""Binaural rendering: HRTF sets from SOFA files, HRIRs for any direction, static and moving sources.

- `load_sofa` reads any SOFA file of the SimpleFreeFieldHRIR convention (AES69): Data.IR,
  Data.SamplingRate, Data.Delay (honoured), SourcePosition in spherical or Cartesian form.
  The MIT KEMAR set ships with the package (`default_hrtf_path`).
- `Hrtf` prepares a set for one output rate: each measured HRIR is split into a per-ear delay
  (the lag of its cross-correlation with its own minimum-phase version; their difference set so
  the pair keeps its measured cross-correlation ITD) and a minimum-phase filter. HRIRs for any direction
  interpolate the filters and the delays barycentrically on the triangulated measurement grid;
  below the lowest measured elevation a virtual measurement at the bottom pole (the average of the
  lowest ring) fills the gap.
- `MovingBinaural` renders sources whose direction, gain and delay change over time: every 256
  samples the filters are updated and the output of the old and new filters crossfaded over the
  block, while the per-ear delays glide sample by sample (cubic Lagrange fractional delay).

Directions are unit vectors in the listener's head frame (scene convention: x right, y front,
z up). Gains are normalised so that a source straight ahead reaches each ear at unit energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.spatial
import torch

from ..cache import cached_arrays
from ..dsp import resample
from ..errors import UpmixError
from ..geometry import cartesian, from_sofa_cartesian, normalise
from .delaylines import DelayLines

FILTER_TAPS_48K = 256
"""Length of the minimum-phase HRTF filters at 48 kHz (5.3 ms; scaled with the rate)."""

MOVE_BLOCK = 256
"""Samples between filter updates of moving sources."""

_PREPARATION = 2
"""Version of `Hrtf.prepare`; part of the cache key, so a change invalidates old caches."""


@dataclass(frozen=True)
class HrtfSet:
    """Measured head-related impulse responses: `hrirs` (directions, 2 ears (left, right), taps)
    at `sample_rate` Hz, for unit `directions` (directions, 3) in the head frame."""

    name: str
    sample_rate: int
    directions: np.ndarray
    hrirs: np.ndarray


def default_hrtf_path() -> Path:
    """The bundled MIT KEMAR set (Gardner & Martin 1995)."""
    return Path(str(resources.files("upmix") / "data" / "hrtf" / "MIT_KEMAR_normal_pinna.sofa"))


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


def load_sofa(path: str | Path) -> HrtfSet:
    """Read a SimpleFreeFieldHRIR SOFA file; raises UpmixError naming what is wrong."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise UpmixError("file not found", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UpmixError("not a SOFA file (SOFA files are HDF5/netCDF-4)", path) from None
    with f:
        conv = _text(f.attrs.get("SOFAConventions"))
        if conv != "SimpleFreeFieldHRIR":
            raise UpmixError(f"SOFA convention {conv or 'missing'!r}; HRTFs need SimpleFreeFieldHRIR", path)
        for key in ("Data.IR", "Data.SamplingRate", "SourcePosition"):
            if key not in f:
                raise UpmixError(f"SOFA file lacks {key}", path)
        ir = np.asarray(f["Data.IR"], dtype=float)
        if ir.ndim != 3 or ir.shape[1] != 2:
            raise UpmixError(f"Data.IR has shape {ir.shape}; expected (measurements, 2 ears, taps)", path)
        rate = float(np.ravel(f["Data.SamplingRate"])[0])
        delay = np.broadcast_to(np.asarray(f["Data.Delay"], dtype=float), ir.shape[:2]) \
            if "Data.Delay" in f else np.zeros(ir.shape[:2])
        pos_ds = f["SourcePosition"]
        pos = np.broadcast_to(np.asarray(pos_ds, dtype=float), (ir.shape[0], 3))
        kind = _text(pos_ds.attrs.get("Type", "spherical")).lower()
        units = _text(pos_ds.attrs.get("Units", "degree, degree, metre")).lower()
        name = _text(f.attrs.get("ListenerShortName")) or path.stem
    if not np.isfinite(ir).all() or not np.isfinite(pos).all():
        raise UpmixError("Data.IR or SourcePosition holds NaN or infinite values", path)
    if kind == "cartesian":
        directions = normalise(from_sofa_cartesian(pos))
    else:
        scale = 1.0 if "degree" in units else 180.0 / np.pi
        directions = cartesian(pos[:, 0] * scale, pos[:, 1] * scale)
    if np.any(delay):  # Data.Delay: samples before each IR starts
        shift = int(np.ceil(delay.max()))
        n = ir.shape[-1] + shift
        spec = np.fft.rfft(ir, n) * np.exp(-2j * np.pi * np.fft.rfftfreq(n)[None, None] * delay[..., None])
        ir = np.fft.irfft(spec, n)
    return HrtfSet(name=name, sample_rate=int(round(rate)), directions=directions, hrirs=ir)


def minimum_phase(h: np.ndarray, n_fft: int) -> np.ndarray:
    """Minimum-phase filters with the magnitude responses of `h` (last axis), by the real cepstrum."""
    spec = np.abs(scipy.fft.rfft(h, n_fft, workers=-1))
    cep = scipy.fft.irfft(np.log(np.maximum(spec, 1e-12 * spec.max())), n_fft, workers=-1)
    fold = np.zeros(n_fft)
    fold[0], fold[n_fft // 2] = 1.0, 1.0
    fold[1:n_fft // 2] = 2.0
    return scipy.fft.irfft(np.exp(scipy.fft.rfft(cep * fold, n_fft, workers=-1)), n_fft,
                           workers=-1)[..., :h.shape[-1]]


def lag(a: np.ndarray, b: np.ndarray, upsample: int = 8) -> np.ndarray:
    """Sub-sample lag (samples) by which `a` trails `b` (last axis), from the peak of their
    cross-correlation, interpolated by zero-padding its spectrum and a parabola through the peak."""
    n = 2 * a.shape[-1]
    m = n * upsample
    c = scipy.fft.irfft(scipy.fft.rfft(a, n) * np.conj(scipy.fft.rfft(b, n)), m, workers=-1)
    peak = np.argmax(c, axis=-1)
    y0, y1, y2 = (np.take_along_axis(c, ((peak + k) % m)[..., None], -1)[..., 0] for k in (-1, 0, 1))
    denom = y0 - 2 * y1 + y2
    frac = np.where(denom != 0, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    return (np.where(peak < m // 2, peak, peak - m) + frac) / upsample


class Hrtf:
    """An HRTF set prepared for rendering at `sample_rate`: per-ear delays and minimum-phase
    filters for every measured direction (see `prepare`), and their interpolation to any direction.

    Attributes:
        directions: (M, 3) unit vectors of the measurements (plus any virtual ones).
        delays: (M, 2) per-ear delays in samples; their mean is the same for every direction.
        filters: (M, 2, taps) minimum-phase filters.
    """

    def __init__(self, name: str, sample_rate: int, directions: np.ndarray, filters: np.ndarray,
                 delays: np.ndarray) -> None:
        self.name, self.sample_rate = name, int(sample_rate)
        self.directions, self.filters, self.delays = directions, filters, delays
        hull = scipy.spatial.ConvexHull(directions)
        self._triangles = hull.simplices
        self._basis = np.linalg.inv(directions[self._triangles])  # (T, 3, 3)
        self._centroids = scipy.spatial.cKDTree(normalise(directions[self._triangles].mean(axis=1)))

    @classmethod
    def prepare(cls, hrtf_set: HrtfSet, sample_rate: int) -> Hrtf:
        """Split every measured HRIR into per-ear delays and minimum-phase filters at `sample_rate`."""
        hrirs = hrtf_set.hrirs
        if hrtf_set.sample_rate != sample_rate:
            hrirs = resample(hrirs, hrtf_set.sample_rate, sample_rate).astype(float)
        taps = max(64, int(round(FILTER_TAPS_48K * sample_rate / 48000)))
        n_fft = 1 << int(np.ceil(np.log2(8 * hrirs.shape[-1])))
        minphase = minimum_phase(hrirs, n_fft)
        delays = lag(hrirs, minphase)
        fade = taps // 8  # half-Hann fade over the last eighth of the truncated filter
        window = np.concatenate([np.ones(taps - fade), np.hanning(2 * fade)[fade:]])
        filters = minphase[..., :taps] * window
        # The two minimum-phase filters of a pair have a cross-correlation lag of their own (the far
        # ear's is duller and peaks later). Delay the earlier one so the pair's lag is zero, and
        # let the per-ear delays carry the whole measured ITD: then interpolated pairs keep an ITD
        # that is the interpolation of their neighbours'.
        inner = lag(filters[:, 0], filters[:, 1])  # how far the left filter trails the right one
        shift = np.stack([np.maximum(-inner, 0.0), np.maximum(inner, 0.0)], axis=1)
        n = 2 * taps
        spec = scipy.fft.rfft(filters, n) * np.exp(-2j * np.pi * np.fft.rfftfreq(n) * shift[..., None])
        filters = scipy.fft.irfft(spec, n)[..., :taps] * window
        itd = lag(hrirs[:, 0], hrirs[:, 1])
        # one latency for every direction: the ears' mean delay is the same everywhere, so the centre
        # of the head hears a source at its geometric delay plus this constant (see `latency`)
        latency = float(np.median(delays.mean(axis=1) - shift.mean(axis=1)))
        delays = np.stack([latency + itd / 2, latency - itd / 2], axis=1)
        directions = hrtf_set.directions
        elevation = np.degrees(np.arcsin(np.clip(directions[:, 2], -1, 1)))
        if elevation.min() > -60.0:  # fill the bottom: a virtual measurement at the pole
            ring = np.flatnonzero(elevation < elevation.min() + 0.5)
            directions = np.concatenate([directions, [[0.0, 0.0, -1.0]]])
            filters = np.concatenate([filters, filters[ring].mean(axis=0, keepdims=True)])
            delays = np.concatenate([delays, delays[ring].mean(axis=0, keepdims=True)])
        front = int(np.argmax(directions @ np.array([0.0, 1.0, 0.0])))
        filters = filters / np.sqrt(np.mean(np.sum(filters[front] ** 2, axis=-1)))
        return cls(hrtf_set.name, sample_rate, directions, filters, delays)

    @property
    def taps(self) -> int:
        return self.filters.shape[-1]

    @property
    def latency(self) -> float:
        """Samples from a source's arrival at the centre of the head to the ears' mean arrival;
        renderers take it off propagation delays so the head hears the geometric delay."""
        return float(self.delays.mean())

    def weights(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Barycentric interpolation: (measurement indices (N, 3), weights (N, 3)) per direction."""
        d = normalise(np.asarray(directions, dtype=float).reshape(-1, 3))
        _, near = self._centroids.query(d, k=min(12, len(self._triangles)))
        w = np.einsum("nj,nkji->nki", d, self._basis[near])  # (N, k, 3)
        score = w.min(axis=-1)
        best = np.argmax(score, axis=1)  # the candidate the direction is most inside
        rows = np.arange(len(d))
        tri = near[rows, best]
        lost = score[rows, best] < -1e-9
        if lost.any():  # no candidate contains it: search every triangle
            full = np.einsum("nj,tji->nti", d[lost], self._basis)
            tri[lost] = np.argmax(full.min(axis=-1), axis=1)
        w = np.clip(np.einsum("nj,nji->ni", d, self._basis[tri]), 0.0, None)
        return self._triangles[tri], w / w.sum(axis=1, keepdims=True)

    def interpolate(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(minimum-phase filters (N, 2, taps), per-ear delays (N, 2) in samples) for directions."""
        idx, w = self.weights(directions)
        return np.einsum("nk,nket->net", w, self.filters[idx]), np.einsum("nk,nke->ne", w, self.delays[idx])

    def hrirs(self, directions: np.ndarray, extra_delay: np.ndarray | float = 0.0) -> np.ndarray:
        """Complete HRIRs (N, 2, length) for directions, delays applied (plus `extra_delay` samples)."""
        filters, delays = self.interpolate(directions)
        delays = delays + np.reshape(extra_delay, (-1, 1))
        length = self.taps + int(np.ceil(delays.max())) + 8
        n_fft = 2 * length
        f = np.fft.rfftfreq(n_fft)
        spec = np.fft.rfft(filters, n_fft) * np.exp(-2j * np.pi * f * delays[..., None])
        return np.fft.irfft(spec, n_fft)[..., :length]


@lru_cache(maxsize=4)
def get_hrtf(path: str | None, sample_rate: int) -> Hrtf:
    """A prepared HRTF set (the bundled KEMAR set when `path` is None) at a rate.

    Preparing a set takes about a second; the result is kept in the disk cache
    (`upmix.cache`), keyed by the SOFA file's contents and the rate.
    """
    source = Path(path) if path else default_hrtf_path()
    hrtf_set = load_sofa(source)
    key = source.read_bytes() + f"{sample_rate}:{_PREPARATION}".encode()

    def prepare() -> dict[str, np.ndarray]:
        hrtf = Hrtf.prepare(hrtf_set, sample_rate)
        return {"directions": hrtf.directions, "filters": hrtf.filters, "delays": hrtf.delays}

    data = cached_arrays("hrtf", key, prepare, ("directions", "filters", "delays"))
    return Hrtf(hrtf_set.name, sample_rate, data["directions"], data["filters"], data["delays"])


class MovingBinaural:
    """Streaming binaural rendering of mono voices that move.

    Each call to `process` takes `n` samples per voice (a multiple of `block`) and the voices'
    directions, gains and extra delays (samples) at the n // block + 1 block boundaries; the
    first boundary must repeat the previous call's last. Filters switch by crossfading over a
    block; delays and gains glide linearly, sample by sample.

    Args:
        hrtf: prepared HRTF set.
        voices: number of voices.
        max_delay: largest extra delay (samples) a voice may reach.
        device: torch device.
    """

    def __init__(self, hrtf: Hrtf, voices: int, max_delay: float, device: torch.device,
                 block: int = MOVE_BLOCK) -> None:
        self.hrtf, self.voices, self.block, self.device = hrtf, voices, block, device
        self._lines = DelayLines(voices, max_delay + hrtf.delays.max(), device)
        self._conv = torch.zeros(voices, 2, hrtf.taps - 1, device=device)
        self.n_fft = 1 << int(np.ceil(np.log2(block + hrtf.taps - 1)))
        self._ramp = (torch.arange(block, device=device, dtype=torch.float32) + 0.5) / block

    def process(self, x: np.ndarray, directions: np.ndarray, gains: np.ndarray, delays: np.ndarray
                ) -> np.ndarray:
        """Render (voices, n) samples; directions (voices, nb + 1, 3), gains and delays
        (voices, nb + 1) at the block boundaries. Returns (2, n) ears."""
        dev, block, taps, ramp = self.device, self.block, self.hrtf.taps, self._ramp
        v, n = x.shape
        nb = n // block
        filt, ear_delay = self.hrtf.interpolate(directions.reshape(-1, 3))
        filt = torch.tensor(filt.reshape(v, nb + 1, 2, taps), dtype=torch.float32, device=dev)
        total = ear_delay.reshape(v, nb + 1, 2).transpose(0, 2, 1) + delays[:, None, :]
        delayed = self._lines.process(x, total, gains, block)  # (v, 2, n)
        # overlap-save convolution of every block with its start and end filters, crossfaded
        seq = torch.cat([self._conv, delayed], dim=2)  # (v, 2, taps - 1 + n)
        self._conv = seq[..., -(taps - 1):]
        segments = seq.unfold(2, block + taps - 1, block)  # (v, 2, nb, block + taps - 1)
        spec = torch.fft.rfft(segments, self.n_fft)
        h = torch.fft.rfft(filt.permute(0, 2, 1, 3), self.n_fft)  # (v, 2, nb + 1, bins)
        start = torch.fft.irfft(spec * h[:, :, :-1], self.n_fft)[..., taps - 1:taps - 1 + block]
        end = torch.fft.irfft(spec * h[:, :, 1:], self.n_fft)[..., taps - 1:taps - 1 + block]
        out = (start * (1 - ramp) + end * ramp).sum(0)  # (2, nb, block)
        return out.reshape(2, n).cpu().numpy()
