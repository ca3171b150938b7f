"""Room acoustics: pyroomacoustics' image sources, spatialised by the target, plus a late tail.

- `RoomAcoustics`: the scene's shoebox with per-surface, per-octave-band absorption. From
  materials (pyroomacoustics' database or a coefficient); or from an RT60, read as the
  reverberation time the room is to have, so the walls absorb what air absorption leaves over
  (Sabine: T = 0.161 V / (S alpha + 4 m V) per band).
- `ImageSet`: pyroomacoustics' image sources of a source (position, order, per-band damping). In
  a shoebox every image is a fixed affine map of the source (``a + s * p``, s = +-1 per axis), so
  moving sources reuse the set without another image-source run.
- `early_responses`: each image as sound from its direction of arrival through the target's
  encoder (panning gains, Ambisonic gains, or an HRIR pair), delayed to its exact fractional
  arrival, with its per-band damping and air absorption as a 255-tap linear-phase filter.
- `tail_response`: the diffuse late reverberation per octave band, decaying at each band's RT60.
  Its level is the diffuse-field energy density of the image-source model, 4 pi c / V per second
  for a source of unit level at 1 m, less what the rendered early images already carry (so early
  and late join without a level jump). Uncorrelated across speakers, with the diffuse-field
  weights of the SH channels for Ambisonics, and with the HRTF set's diffuse-field level and
  interaural coherence for headphones.

Scene coordinates (x right, y front, z up, origin at a floor corner) are pyroomacoustics'
room coordinates; the surfaces map left/right/back/front to west/east/south/north.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from ..geometry import PRA_WALLS, SPEED_OF_SOUND, normalise, rotate_yaw
from ..scene import Room

OCTAVE_BANDS = 125.0 * 2.0 ** np.arange(8)
"""Octave-band centres (Hz) of pyroomacoustics' absorption and damping, 125 Hz to 16 kHz."""

EARLY_ORDER = 3
"""Highest image order rendered as discrete reflections."""

EARLY_TIME_S = 0.12
"""Images arriving later than this after the direct sound are left to the late tail."""

BAND_TAPS = 255
"""Length of the per-image band-damping filters (odd, linear phase)."""


@lru_cache(maxsize=1)
def _pra():
    import pyroomacoustics as pra  # deferred: importing it takes a second

    return pra


@dataclass(frozen=True)
class RoomAcoustics:
    """A shoebox room: dimensions (m), octave `bands` (Hz), `absorption` (6 walls in pyroomacoustics
    order west, east, south, north, floor, ceiling; bands) of energy, `air` energy attenuation per
    metre per band, `rt60` seconds per band."""

    dimensions: tuple[float, float, float]
    bands: np.ndarray
    absorption: np.ndarray
    air: np.ndarray
    rt60: np.ndarray

    @property
    def volume(self) -> float:
        x, y, z = self.dimensions
        return x * y * z

    @property
    def surfaces(self) -> np.ndarray:
        """Areas of the 6 walls in pyroomacoustics order (m^2)."""
        x, y, z = self.dimensions
        return np.array([y * z, y * z, x * z, x * z, x * y, x * y])


def _air(pra, bands: np.ndarray) -> np.ndarray:
    air = pra.parameters.Physics().get_air_absorption()
    return np.interp(np.log(bands), np.log(air["center_freqs"]), air["coeffs"])


def acoustics(room: Room) -> RoomAcoustics:
    """Per-band absorption and reverberation times of a scene room."""
    pra = _pra()
    bands = OCTAVE_BANDS
    dims = tuple(float(d) for d in room.dimensions)
    volume = dims[0] * dims[1] * dims[2]
    surfaces = np.array([dims[1] * dims[2]] * 2 + [dims[0] * dims[2]] * 2 + [dims[0] * dims[1]] * 2)
    air = _air(pra, bands) if room.air_absorption else np.zeros(len(bands))
    if room.rt60 is not None:
        wanted = 24 * math.log(10) * volume / (SPEED_OF_SOUND * room.rt60)  # total Sabine absorption, m^2
        alpha = np.clip((wanted - 4 * air * volume) / surfaces.sum(), 0.01, 0.99)
        absorption = np.tile(alpha, (6, 1))
    else:
        absorption = np.zeros((6, len(bands)))
        for k, surface in enumerate(PRA_WALLS):
            material = room.materials[surface]
            m = pra.Material(material)
            coeffs = np.atleast_1d(m.energy_absorption["coeffs"])
            if len(coeffs) == 1:
                absorption[k] = coeffs[0]
            else:
                freqs = np.asarray(m.energy_absorption["center_freqs"], dtype=float)
                absorption[k] = np.interp(np.log(bands), np.log(freqs), coeffs)
        absorption = np.clip(absorption, 0.0, 0.99)
    total = surfaces @ absorption + 4 * air * volume
    rt60 = 24 * math.log(10) * volume / (SPEED_OF_SOUND * np.maximum(total, 1e-9))
    return RoomAcoustics(dims, bands, absorption, air, rt60)


@dataclass(frozen=True)
class ImageSet:
    """Image sources of one source: `positions` (K, 3) in room coordinates, reflection `orders`
    (K,), per-band `damping` (K, bands) of amplitude, and the affine map (`offsets` (K, 3),
    `signs` (K, 3)) with positions = offsets + signs * source."""

    positions: np.ndarray
    orders: np.ndarray
    damping: np.ndarray
    offsets: np.ndarray
    signs: np.ndarray

    def moved(self, source: np.ndarray) -> np.ndarray:
        """Image positions (K, 3) for the source at another position."""
        return self.offsets + self.signs * np.asarray(source, dtype=float)


def _shoebox(ac: RoomAcoustics, max_order: int):
    pra = _pra()
    materials = {wall: pra.Material({"coeffs": list(ac.absorption[k]), "center_freqs": list(ac.bands)})
                 for k, wall in enumerate(PRA_WALLS.values())}
    return pra.ShoeBox(list(ac.dimensions), fs=48000, materials=materials, max_order=max_order,
                       air_absorption=False)


def images(ac: RoomAcoustics, source: np.ndarray, max_order: int = EARLY_ORDER) -> ImageSet:
    """The image sources of a source up to `max_order` (order 0 is the source itself)."""
    source = np.asarray(source, dtype=float)
    found = []
    for probe in (source, source + np.array([0.01, 0.013, 0.017])):
        room = _shoebox(ac, max_order)
        room.add_source(list(probe))
        room.add_microphone(list(np.asarray(ac.dimensions) / 2))  # required; every shoebox image is visible
        room.image_source_model()
        src = room.sources[0]
        found.append((np.asarray(src.images, dtype=float).T, np.asarray(src.orders),
                      np.asarray(src.damping, dtype=float)[:len(ac.bands)].T))
    (pos, orders, damping), (pos2, _, _) = found
    signs = np.sign(np.round((pos2 - pos) / np.array([0.01, 0.013, 0.017])))
    offsets = pos - signs * source
    return ImageSet(pos, orders, damping, offsets, signs)


def _band_interpolation(bands: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Weights (len(freqs), bands) that interpolate per-band values linearly over log frequency."""
    x = np.log(np.clip(freqs, bands[0], bands[-1]))
    logb = np.log(bands)
    k = np.clip(np.searchsorted(logb, x, side="right") - 1, 0, len(bands) - 2)
    u = (x - logb[k]) / (logb[k + 1] - logb[k])
    w = np.zeros((len(freqs), len(bands)))
    w[np.arange(len(freqs)), k] = 1 - u
    w[np.arange(len(freqs)), k + 1] += u
    return w


def band_spectra(gains: np.ndarray, bands: np.ndarray, delays: np.ndarray, n_fft: int, sample_rate: int
                 ) -> np.ndarray:
    """Spectra (K, n_fft // 2 + 1) of delays (samples) whose magnitude follows per-band `gains`
    (K, bands), interpolated over log frequency."""
    f = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    mag = (gains @ _band_interpolation(bands, f).T).astype(np.float32)
    # float32 cosine and sine: several times faster than a complex128 exponential, and exact enough
    phase = (-2 * np.pi / sample_rate * f).astype(np.float32) * np.asarray(delays, dtype=np.float32)[:, None]
    return mag * np.cos(phase) + 1j * (mag * np.sin(phase))


def band_filters(gains: np.ndarray, bands: np.ndarray, fractions: np.ndarray, sample_rate: int,
                 taps: int = BAND_TAPS) -> np.ndarray:
    """Linear-phase FIRs (K, taps), centred on tap taps // 2 + fraction, whose magnitude follows
    per-band `gains` (K, bands) interpolated over log frequency."""
    n = 4 * (taps + 1)
    h = scipy.fft.irfft(band_spectra(gains, bands, taps // 2 + np.asarray(fractions), n, sample_rate), n)
    return h[:, :taps] * np.hanning(taps + 2)[1:-1]


def arrivals(positions: np.ndarray, listener: np.ndarray, yaw: float, sample_rate: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(directions in the head frame (K, 3), distances (K,), delays in samples (K,)) of sources."""
    offset = np.asarray(positions, dtype=float) - np.asarray(listener, dtype=float)
    distance = np.linalg.norm(offset, axis=1)
    heading = normalise(rotate_yaw(offset, -yaw))
    heading[distance < 1e-9] = (0.0, 1.0, 0.0)
    return heading, distance, distance / SPEED_OF_SOUND * sample_rate


def early_responses(target, ac: RoomAcoustics, image_sets: list[ImageSet], sources: np.ndarray,
                    listener: np.ndarray, yaw: float, sample_rate: int, reference_distance: float = 1.0,
                    near_field: float = 0.5, include_direct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The direct sound and early reflections of sources as multichannel responses.

    For every source (`image_sets[k]` at `sources[k]`), its images up to `EARLY_ORDER` arriving
    within `EARLY_TIME_S` of its direct sound, each with gain damping x reference_distance /
    max(distance, near_field) x air absorption, encoded from its direction of arrival. Returns
    (responses (sources, channels, length), sample 0 at emission; the sources' mean per-band energy
    of the rendered images by arrival sample (bands, length), for `tail_response`).
    """
    which, directions, distance, delay, gains = [], [], [], [], []
    for k, (imgs, src) in enumerate(zip(image_sets, sources)):
        d, dist, dl = arrivals(imgs.moved(src), listener, yaw, sample_rate)
        dl = np.maximum(dl - target.delay_offset(sample_rate), 0.0)  # the HRIRs add their latency back
        first = dl[imgs.orders == 0][0]
        keep = (dl <= first + EARLY_TIME_S * sample_rate) & (include_direct | (imgs.orders > 0))
        which.append(np.full(keep.sum(), k))
        directions.append(d[keep])
        distance.append(dist[keep])
        delay.append(dl[keep])
        gains.append(imgs.damping[keep] * reference_distance / np.maximum(dist[keep], near_field)[:, None]
                     * np.exp(-0.5 * ac.air[None, :] * dist[keep, None]))
    which, directions, distance, delay, gains = map(np.concatenate, (which, directions, distance, delay, gains))
    start = np.floor(delay).astype(int) - BAND_TAPS // 2
    fractions = delay - np.floor(delay)
    length = int(start.max()) + BAND_TAPS + 1
    energy = np.zeros((len(ac.bands), max(length, 1)))
    np.add.at(energy.T, np.clip(np.round(delay).astype(int), 0, length - 1), gains ** 2 / len(image_sets))
    if hasattr(target, "prepared"):  # binaural: every image through its interpolated HRIR pair
        hrtf = target.prepared(sample_rate)
        minphase, ear_delay = hrtf.interpolate(directions)  # (K, 2, taps), (K, 2)
        n = BAND_TAPS + hrtf.taps + int(np.ceil(ear_delay.max())) + 2
        nfft = scipy.fft.next_fast_len(2 * n, real=True)
        shape = band_spectra(np.repeat(gains, 2, axis=0), ac.bands,
                             (BAND_TAPS // 2 + fractions[:, None] + ear_delay).reshape(-1), nfft, sample_rate)
        combined = scipy.fft.irfft(scipy.fft.rfft(minphase, nfft, workers=-1) * shape.reshape(len(delay), 2, -1),
                                   nfft, workers=-1)[..., :n]
    else:
        firs = band_filters(gains, ac.bands, fractions, sample_rate)  # (K, taps)
        combined = target.gains(directions)[:, :, None] * firs[:, None, :]  # (K, channels, taps)
    out = np.zeros((len(image_sets), combined.shape[1], length + combined.shape[2]), dtype=np.float32)
    shift = np.clip(start, 0, None)
    cut = shift - start  # samples of an image filter that would land before sample 0
    for k in range(len(shift)):
        out[which[k], :, shift[k]:shift[k] + combined.shape[2] - cut[k]] += combined[k, :, cut[k]:]
    return out, energy


def _band_masks(n: int, bands: np.ndarray, sample_rate: int) -> np.ndarray:
    """Power-complementary octave-band weights (bands, n // 2 + 1) on an rfft grid."""
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    x = np.log2(np.maximum(f, 1e-9) / bands[0])  # band index on a continuous scale
    masks = np.zeros((len(bands), len(f)))
    for b in range(len(bands)):
        d = x - b
        w = np.cos(np.clip(d, -1, 1) * np.pi / 2) ** 2  # raised cosine between neighbouring centres
        if b == 0:
            w[d < 0] = 1.0
        if b == len(bands) - 1:
            w[d > 0] = 1.0
        masks[b] = w
    return np.sqrt(masks / masks.sum(axis=0, keepdims=True))


def tail_response(target, ac: RoomAcoustics, sample_rate: int, early_energy: np.ndarray,
                  reference_distance: float = 1.0, seed: int = 7) -> np.ndarray:
    """Diffuse late reverberation (channels, length) for a source of unit level at the reference
    distance; sample 0 is the emission, like `early_responses`.

    `early_energy` (bands, length) is the per-band energy the early response already renders, by
    arrival sample; the tail supplies the rest of the diffuse-field energy density, and nothing
    before the first rendered reflection.
    """
    length = int(min(1.2 * ac.rt60.max(), 8.0) * sample_rate)
    t = np.arange(length) / sample_rate
    density = 4 * math.pi * SPEED_OF_SOUND * reference_distance ** 2 / ac.volume / sample_rate
    model = density * np.exp(-6 * math.log(10) * t[None, :] / ac.rt60[:, None])  # energy per sample, band
    early = np.zeros_like(model)
    m = min(length, early_energy.shape[1])
    early[:, :m] = early_energy[:, :m]
    window = np.ones(int(0.01 * sample_rate)) / int(0.01 * sample_rate)
    reflections = early.copy()
    reflections[:, :int(np.argmax(early.sum(axis=0) > 0)) + 1] = 0.0  # the direct sound is not reverb
    first = int(np.argmax(reflections.sum(axis=0) > 0)) if reflections.any() else 0
    smooth = np.stack([np.convolve(e, window, mode="same") for e in reflections])
    envelope = np.maximum(model - smooth, 0.0)
    envelope[:, :first] = 0.0
    mixing, share = _diffuse_field(target, sample_rate, ac.bands)
    n = scipy.fft.next_fast_len(length)
    masks = _band_masks(n, ac.bands, sample_rate)
    spec = scipy.fft.rfft(np.random.default_rng(seed).standard_normal((share.shape[0], n)), n)
    out = np.zeros((share.shape[0], length))
    for b in range(len(ac.bands)):
        band = scipy.fft.irfft(spec * masks[b], n)[:, :length]
        if mixing is not None:  # give the ears the diffuse field's interaural coherence
            band = mixing[:, :, b] @ band
        out += band * np.sqrt(envelope[b] * share[:, b:b + 1])
    return out


def _diffuse_field(target, sample_rate: int, bands: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """How a diffuse field of unit energy reaches the target's channels: (mixing (channels,
    channels, bands) of independent noises or None, energy per channel and band (channels, bands))."""
    if hasattr(target, "prepared"):  # headphones: the HRTF set's diffuse-field level and coherence
        hrtf = target.prepared(sample_rate)
        nfft = 1024
        f = np.fft.rfftfreq(nfft, 1 / sample_rate)
        # complete HRTFs: the minimum-phase filters with their ears' delays (the ITD decorrelates)
        spec = np.fft.rfft(hrtf.filters, nfft) * np.exp(-2j * np.pi * f * hrtf.delays[..., None] / sample_rate)
        power = np.abs(spec) ** 2
        cross = (spec[:, 0] * np.conj(spec[:, 1])).real
        level, coherence = np.zeros((2, len(bands))), np.zeros(len(bands))
        for b, fc in enumerate(bands):
            sel = (f >= fc / math.sqrt(2)) & (f < fc * math.sqrt(2))
            level[:, b] = power[:, :, sel].mean(axis=(0, 2))
            coherence[b] = cross[:, sel].sum() / np.sqrt(power[:, 0, sel].sum() * power[:, 1, sel].sum())
        a, c = np.sqrt((1 + coherence) / 2), np.sqrt(np.clip(1 - coherence, 0, None) / 2)
        return np.stack([np.stack([a, c]), np.stack([a, -c])]), level
    if hasattr(target, "order"):  # Ambisonics: a diffuse field has energy 1 / (2n + 1) per SN3D channel
        from .sh import degrees

        return None, np.tile((1.0 / (2 * degrees(target.order) + 1))[:, None], (1, len(bands)))
    share = np.zeros(target.num_channels)
    share[target.layout.main_indices] = 1.0 / len(target.layout.main_indices)
    return None, np.tile(share[:, None], (1, len(bands)))
