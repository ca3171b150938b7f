"""Where the performers of a stereo recording are: a direction map from its time-frequency bins.

Every STFT bin of a stereo recording gets the stereo azimuth its level difference gives (the
energy-vector azimuth of gains (cos theta, sin theta) on a +-30 degree pair, `upmix.stage`; +30 =
hard left), weighted by its energy and by how direct it is (`DirectionMap._local_covariance`: how close
the channels' covariance over neighbouring bins is to that of one panned source; reverberation,
whose bins point anywhere, weighs little). The weights are summed into a histogram over azimuth
(`AZIMUTH_STEP_DEG` wide bins) per stretch of `FRAMES_PER_ROW` frames, so memory stays small for
inputs of any length. The sources are the azimuths where a sharp peak stands in enough rows
(`DirectionMap._voted`), or with a forced count the highest peaks; each comes with its azimuth,
spread, share of the direct energy and the share of the time it plays.

A performer that never dominates a bin (a guitar inside a dense band) makes no peak of its own,
but it still shows in the bins it shares: the channels' local covariance, normalised, is a point
of the "pan disc" (`DirectionMap.disc`), where a single source panned at angle theta lies on the
rim at angle 2 theta and a mixture of sources lies inside, on the chords between them. Extending
the chord from a found source through each bin's point to the rim lands on the source it is mixed
with (`DirectionMap._extended`).

Level differences only: pan-potted and coincident-pair recordings. Time differences (spaced pairs,
Decca trees) are not read, so a spaced pair's performers are not found (docs/separation.md has the
measurements).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from ..errors import UpmixError
from ..stage import STEREO_HALF_ANGLE, pan_angle, stereo_azimuth

AZIMUTH_STEP_DEG = 0.25
"""Width of a histogram bin, degrees."""

SMOOTHING_DEG = 0.75
"""Standard deviation of the Gaussian that smooths the histogram before peaks are picked, degrees."""

MIN_SEPARATION_DEG = 5.0
"""Closest two sources may be and still be told apart, degrees."""

MIN_ROW_PEAK = 0.2
"""In one row of the map, a peak votes when its prominence is at least this share of the row's highest..."""

MIN_ROWS_SHARE = 0.15
"""... and an azimuth is a source when at least this share of the rows that hold sound vote for it.
On 48 pan-potted development mixes of recorded instruments (2-5 sources) the count was exact in 41
(with one whole-file histogram and its sharp peaks, 30; docs/separation.md)."""

MIN_FORCED_SHARE = 0.01
"""With a forced count, the peaks down to this share of the highest are candidates (the sharp ones
first, then the broad ones)."""

PEAK_CORE_DEG, PEAK_SKIRT_DEG = 0.6, 3.0
MIN_SHARPNESS = 0.3
"""A peak is sharp when at least this share of the energy within `PEAK_SKIRT_DEG` of it lies within
`PEAK_CORE_DEG`. A source is a narrow peak; the bins where two sources overlap point between them,
at angles that change with their levels, and make broad hills."""

FRAME_S = 0.085
"""STFT frame length of the map, seconds (4096 samples at 48 kHz). On 32 pan-potted development
mixes of recorded instruments the count was exact in 75 % with 2048-sample frames and 84 % with
4096 (docs/separation.md)."""

COHERENCE_BINS = 5
"""Neighbouring frequency bins over which how direct a bin is is measured."""

FRAMES_PER_ROW = 16
"""STFT frames summed into one row (about 0.34 s at 48 kHz) of the time-resolved map."""

DISC_CELLS = 200
"""Cells of the pan disc's histogram along each axis (from -1 to 1)."""

MIN_CHORD = 0.2
"""Points of the pan disc closer than this to a found source carry too little of another to be
extended (the chord's error grows as 1 / distance)."""

HULL_MARGIN = 0.05
"""Points of the pan disc within this of the polygon of the found sources are mixtures of them
and are not extended."""

MIN_EXTENDED_PEAK = 0.5
"""A peak of the chords' landing points becomes a source when its prominence is at least this
share of the highest there..."""

MIN_EXTENDED_MASS = 0.01
"""... and the landings within a degree of it weigh at least this share of the recording's energy
(hiss 20 dB down, whose chords from a hard-panned source land at the other edge, weighs 0.004;
docs/separation.md has the counts it gives)."""

MAX_SOURCES = 16
"""Most sources a recording may be split into."""

MIN_APART_DEG = 1.0
"""Closest two directions a user gives may be, degrees."""

ACTIVE_DB = -30.0
"""A source plays in a row whose share of it is within this many dB of its loudest row."""


def check_directions(directions: Iterable[float] | str) -> tuple[float, ...]:
    """Directions a user gives (numbers, or text like ``"20,-5.5"``), as stereo azimuths in
    degrees (+30 hard left, -30 hard right, as `upmix sources` prints them), leftmost first:
    1 to `MAX_SOURCES` of them, each on the stage and `MIN_APART_DEG` from the others."""
    try:
        if isinstance(directions, str):
            directions = directions.split(",") if directions.strip() else []
        values = tuple(float(d) for d in directions)
    except ValueError:
        raise UpmixError(f"{{option}} takes azimuths in degrees separated by commas, not {directions!r}",
                         option="directions") from None
    if not 1 <= len(values) <= MAX_SOURCES:
        raise UpmixError(f"{{option}} takes 1 to {MAX_SOURCES} azimuths", option="directions")
    for d in values:
        if not math.isfinite(d) or abs(d) > STEREO_HALF_ANGLE:
            raise UpmixError(f"{{option}}: {d:g} degrees is off the stereo stage (from +30, hard left, to -30, "
                             "hard right, as upmix sources prints it)", option="directions")
    ordered = tuple(sorted(values, reverse=True))
    if any(a - b < MIN_APART_DEG for a, b in zip(ordered, ordered[1:])):
        raise UpmixError(f"{{option}}: two azimuths are closer than {MIN_APART_DEG:g} degrees", option="directions")
    return ordered


def check_performers(separator: str, count: int | None, directions: Iterable[float] | str | None
                     ) -> tuple[float, ...] | None:
    """The performers asked of a separator: a count or directions only for ``sources``
    (`check_count`), the directions checked (`check_directions`); returns them."""
    if (count is not None or directions is not None) and separator != "sources":
        raise UpmixError(f"{{option}} applies to the sources separator, not {separator!r}",
                         option="sources" if count is not None else "directions")
    check_count(count, directions)
    return None if directions is None else check_directions(directions)


def check_count(count: int | None, directions: object = None) -> int | None:
    """A forced source count: 1 to `MAX_SOURCES`, and not together with given directions."""
    if count is not None and directions is not None:
        raise UpmixError("{option} (a count) and directions exclude each other: give one", option="sources")
    if count is not None and not 1 <= count <= MAX_SOURCES:
        raise UpmixError(f"{{option}} must be 1 to {MAX_SOURCES}, not {count}", option="sources")
    return count


@dataclass(frozen=True)
class LocalisedSource:
    """A source found in the map: stereo azimuth and spread (standard deviation) in degrees, share
    (0..1) of the direct energy, and share (0..1) of the time it plays."""

    azimuth: float
    spread: float
    share: float
    active: float


class DirectionMap:
    """The direction histogram of a stereo stream, fed block by block (fed in blocks it equals fed
    whole: frames continue across blocks).

    Args:
        sample_rate: Hz.
        n_fft: STFT size (a Hann window, hop n_fft / 4); default the power of two nearest
            `FRAME_S` (4096 at 44.1 and 48 kHz).
    """

    def __init__(self, sample_rate: int, n_fft: int | None = None) -> None:
        n_fft = n_fft or int(2 ** round(math.log2(FRAME_S * sample_rate)))
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, n_fft // 4
        self.window = scipy.signal.get_window("hann", n_fft).astype(np.float32)
        self.edges = np.arange(-STEREO_HALF_ANGLE, STEREO_HALF_ANGLE + AZIMUTH_STEP_DEG / 2, AZIMUTH_STEP_DEG)
        self.rows: list[np.ndarray] = []
        self._carry = np.zeros((2, 0), np.float32)
        self._pending: list[np.ndarray] = []  # weighted histograms of frames not yet in a row
        self.disc = np.zeros((DISC_CELLS, DISC_CELLS))

    @property
    def azimuths(self) -> np.ndarray:
        """Centres of the histogram bins, degrees."""
        return (self.edges[:-1] + self.edges[1:]) / 2

    def update(self, block: np.ndarray) -> None:
        """Add a (2, frames) block of the recording."""
        if block.ndim != 2 or block.shape[0] != 2:
            raise UpmixError("source localisation needs a stereo recording")
        audio = np.concatenate([self._carry, block.astype(np.float32)], axis=1)
        count = 0 if audio.shape[1] < self.n_fft else (audio.shape[1] - self.n_fft) // self.hop + 1
        if count:
            starts = np.arange(count) * self.hop
            frames = audio[:, starts[:, None] + np.arange(self.n_fft)] * self.window  # (2, frames, n_fft)
            self._add(np.fft.rfft(frames, axis=-1))
        self._carry = audio[:, count * self.hop:]

    def _add(self, spec: np.ndarray) -> None:
        left, right = spec[0], spec[1]
        power_l, power_r = np.abs(left) ** 2, np.abs(right) ** 2
        theta = np.arctan2(np.sqrt(power_r), np.sqrt(power_l))
        sxx, syy, sxy = self._local_covariance(left, right)
        total = np.maximum(sxx + syy, 1e-30)
        directness = np.clip(((sxx - syy) ** 2 + 4 * np.abs(sxy) ** 2) / np.maximum((sxx + syy) ** 2, 1e-30), 0.0, 1.0)
        weight = (power_l + power_r) * directness
        index = np.clip(np.searchsorted(self.edges, stereo_azimuth(theta), side="right") - 1, 0,
                        len(self.edges) - 2)
        bins = len(self.edges) - 1
        flat = (index + bins * np.arange(index.shape[0])[:, None]).ravel()
        self._pending.extend(np.bincount(flat, weight.ravel(), minlength=index.size and index.shape[0] * bins)
                             .reshape(index.shape[0], bins))
        while len(self._pending) >= FRAMES_PER_ROW:
            self.rows.append(np.sum(self._pending[:FRAMES_PER_ROW], axis=0))
            del self._pending[:FRAMES_PER_ROW]
        cell = lambda x: np.clip(((x + 1) / 2 * DISC_CELLS).astype(int), 0, DISC_CELLS - 1)  # noqa: E731
        u, v = cell((sxx - syy) / total), cell(2 * sxy.real / total)
        self.disc += np.bincount((u * DISC_CELLS + v).ravel(), (power_l + power_r).ravel(),
                                 minlength=DISC_CELLS ** 2).reshape(DISC_CELLS, DISC_CELLS)

    @staticmethod
    def _local_covariance(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The channels' 2x2 covariance around each bin: the means of |L|^2, |R|^2 and L R* over
        the `COHERENCE_BINS` bins around it in the same frame (so frames stay independent). How
        direct a bin is, with l1 >= l2 its eigenvalues: ((l1 - l2) / (l1 + l2))^2, 1 for one
        source panned anywhere (hard left included), 0 for uncorrelated sound of equal level on
        both sides."""
        size = (1, COHERENCE_BINS)
        mean = scipy.ndimage.uniform_filter
        cross = left * np.conj(right)
        return (mean(np.abs(left) ** 2, size), mean(np.abs(right) ** 2, size),
                mean(cross.real, size) + 1j * mean(cross.imag, size))

    def histogram(self) -> np.ndarray:
        """(rows, azimuth bins) direct energy so far, the frames not yet in a full row as the last row."""
        rows = self.rows + ([np.sum(self._pending, axis=0)] if self._pending else [])
        return np.array(rows) if rows else np.zeros((0, len(self.edges) - 1))

    def sources(self, count: int | None = None) -> list[LocalisedSource]:
        """The sources, left to right as seen from the front (highest azimuth first); `count`
        forces how many (the sharp peaks first, then what their chords find, then the broad
        peaks). UpmixError when the recording has no direct sound."""
        rows = self.histogram()
        total = rows.sum(axis=0)
        if not np.any(total > 0):
            raise UpmixError("found no direct sound to localise (silence?)")
        if count is None:
            voted = self._voted(rows)
            if not len(voted):
                raise UpmixError("found no source to localise: no direction stands out (silence, noise or "
                                 "only diffuse sound?)")
            extended = self._extended(voted)
            if extended is not None:
                voted = np.append(voted, extended)
            return self._describe(rows, np.sort([self._centre(total, v) for v in voted])[::-1])
        smooth = scipy.ndimage.gaussian_filter1d(total, SMOOTHING_DEG / AZIMUTH_STEP_DEG, mode="constant")
        padded = np.concatenate([[0.0], smooth, [0.0]])  # a source panned hard to one side peaks at the edge
        peaks, props = scipy.signal.find_peaks(padded, distance=max(1, int(MIN_SEPARATION_DEG / AZIMUTH_STEP_DEG)),
                                               prominence=0.0)
        peaks, prominence = peaks - 1, props["prominences"]
        offset = np.abs(self.azimuths[None, :] - self.azimuths[peaks][:, None])
        core = np.sum(total * (offset <= PEAK_CORE_DEG), axis=1)
        sharpness = core / np.maximum(np.sum(total * (offset <= PEAK_SKIRT_DEG), axis=1), 1e-30)
        centres = np.sum(total * self.azimuths * (offset <= PEAK_CORE_DEG), axis=1) / np.maximum(core, 1e-30)
        sharp = sharpness >= MIN_SHARPNESS
        rank = np.lexsort((-(prominence * sharpness), ~sharp))
        rank = rank[prominence[rank] >= MIN_FORCED_SHARE * prominence.max()]
        picked = list(centres[rank[sharp[rank]]][:count] if np.any(sharp[rank]) else centres[rank[:1]])
        while len(picked) < count:
            extended = self._extended(np.array(picked), min_mass=0.0)  # the user says it is there
            if extended is None:
                break
            picked.append(self._centre(total, extended))
        # a reverberant recording smears some sources into broad hills
        picked += [c for c in centres[rank[~sharp[rank]]] if all(abs(c - p) >= MIN_SEPARATION_DEG for p in picked)]
        if count > len(picked):
            raise UpmixError(f"{{option}} asks for {count} sources but the recording shows at most {len(picked)}",
                             option="sources")
        return self._describe(rows, np.sort(picked[:count])[::-1])

    def _centre(self, total: np.ndarray, azimuth: float) -> float:
        """The energy centroid (degrees) of the direct energy `total` within `PEAK_CORE_DEG` of an
        azimuth, or the azimuth itself where there is none."""
        near = np.abs(self.azimuths - azimuth) <= PEAK_CORE_DEG
        core = np.sum(total[near])
        return float(np.sum(total[near] * self.azimuths[near]) / core) if core > 0 else float(azimuth)

    def _voted(self, rows: np.ndarray) -> np.ndarray:
        """Azimuths (degrees) where a sharp peak stands in at least `MIN_ROWS_SHARE` of the rows
        that hold sound: in each row, the peaks of at least `MIN_ROW_PEAK` of the row's highest
        whose sharpness (as in `sources`) is at least `MIN_SHARPNESS` vote for their azimuth. A
        performer stands out sharply in the rows where it plays; where two overlap, the bins point
        between them at angles that change with their levels, so no azimuth there gathers votes."""
        sigma = SMOOTHING_DEG / AZIMUTH_STEP_DEG
        energy = rows.sum(axis=1)
        rows = rows[energy > energy.max() * 10 ** (ACTIVE_DB / 10)]
        smooth = scipy.ndimage.gaussian_filter1d(rows, sigma, axis=1, mode="constant")
        core = scipy.ndimage.uniform_filter1d(rows, 2 * round(PEAK_CORE_DEG / AZIMUTH_STEP_DEG) + 1, axis=1,
                                              mode="constant")
        skirt = scipy.ndimage.uniform_filter1d(rows, 2 * round(PEAK_SKIRT_DEG / AZIMUTH_STEP_DEG) + 1, axis=1,
                                               mode="constant")
        sharp = core * (2 * round(PEAK_CORE_DEG / AZIMUTH_STEP_DEG) + 1) \
            >= MIN_SHARPNESS * skirt * (2 * round(PEAK_SKIRT_DEG / AZIMUTH_STEP_DEG) + 1)
        votes = np.zeros(rows.shape[1])
        for row, row_sharp in zip(smooth, sharp):  # a few rows a second
            peaks, _ = scipy.signal.find_peaks(np.concatenate([[0.0], row, [0.0]]), prominence=MIN_ROW_PEAK * row.max())
            peaks = peaks - 1
            votes[peaks[row_sharp[peaks]]] += 1
        votes = scipy.ndimage.gaussian_filter1d(votes, sigma, mode="constant")
        peaks, _ = scipy.signal.find_peaks(np.concatenate([[0.0], votes, [0.0]]),
                                           distance=max(1, int(MIN_SEPARATION_DEG / AZIMUTH_STEP_DEG)))
        peaks = peaks - 1
        reach = round(1.0 / AZIMUTH_STEP_DEG)  # the votes within a degree of the peak
        gathered = np.array([votes[max(0, p - reach):p + reach + 1].sum() for p in peaks])
        return self.azimuths[peaks[gathered >= MIN_ROWS_SHARE * len(rows)]]

    def _extended(self, found: np.ndarray, min_mass: float = MIN_EXTENDED_MASS) -> float | None:
        """The azimuth (degrees) of one more source, mixed with the `found` ones, or None: for each
        found source, the chords from its point on the rim of the pan disc through the points of
        the disc's histogram are extended to the rim, each landing weighted by the point's energy
        and squared distance from the source (points closer than `MIN_CHORD` are left out). The
        points within `HULL_MARGIN` of the polygon of the found sources are mixtures of them; a
        peak of the other points' landings of at least `MIN_EXTENDED_PEAK` of the highest peak of
        all landings and `min_mass` of the energy, `MIN_SEPARATION_DEG` from every found source,
        is a candidate; the most prominent candidate wins."""
        centres = (np.arange(DISC_CELLS) + 0.5) / DISC_CELLS * 2 - 1
        u, v = np.meshgrid(centres, centres, indexing="ij")
        rim = np.stack([np.cos(2 * pan_angle(found)), np.sin(2 * pan_angle(found))], axis=-1)
        occupied = self.disc > 0
        points, weight = np.stack([u[occupied], v[occupied]], axis=-1), self.disc[occupied]
        outside = _hull_distance(points, rim) > HULL_MARGIN
        sigma = SMOOTHING_DEG / AZIMUTH_STEP_DEG
        near = round(1.0 / AZIMUTH_STEP_DEG)  # a landing peak's mass: within a degree of it
        best, best_prominence = None, 0.0
        for start in rim:
            chord = points - start
            distance2 = np.sum(chord ** 2, axis=-1)
            reach = -2 * (chord @ start) / np.maximum(distance2, 1e-12)
            land = start + reach[:, None] * chord
            # the rim's upper half is the stage (both gains positive); landings below it are out of phase
            landed = (distance2 >= MIN_CHORD ** 2) & (reach > 1) & (land[:, 1] > 0)
            landing = stereo_azimuth(np.arctan2(land[landed, 1], land[landed, 0]) / 2)
            hists = [np.histogram(landing, bins=self.edges, weights=(weight * distance2 * keep)[landed])[0]
                     for keep in (1.0, outside)]
            peaks, props = scipy.signal.find_peaks(
                np.concatenate([[0.0], scipy.ndimage.gaussian_filter1d(hists[0], sigma, mode="constant"), [0.0]]),
                prominence=0.0)
            if not len(peaks):
                continue
            highest = props["prominences"].max()
            peaks, props = scipy.signal.find_peaks(
                np.concatenate([[0.0], scipy.ndimage.gaussian_filter1d(hists[1], sigma, mode="constant"), [0.0]]),
                prominence=0.0)
            peaks, prominence = peaks - 1, props["prominences"] / highest
            new = (prominence >= MIN_EXTENDED_PEAK) & (
                np.min(np.abs(self.azimuths[peaks][:, None] - found[None, :]), axis=1) >= MIN_SEPARATION_DEG)
            for peak, height in zip(peaks[new], prominence[new]):
                mass = hists[1][max(0, peak - near):peak + near + 1].sum() / self.disc.sum()
                if mass >= min_mass and height > best_prominence:
                    best, best_prominence = float(self.azimuths[peak]), height
        return best

    def _describe(self, rows: np.ndarray, centres: np.ndarray) -> list[LocalisedSource]:
        """Each histogram bin belongs to the nearest source; each source's numbers come from its bins."""
        az = self.azimuths
        owner = np.argmin(np.abs(az[:, None] - centres[None, :]), axis=1)
        total = rows.sum(axis=0)
        found = []
        for k, centre in enumerate(centres):
            mine = owner == k
            energy = total[mine]
            near = energy > energy.max() * 10 ** (ACTIVE_DB / 10)  # the peak's own bins, not the floor
            spread = float(np.sqrt(np.average((az[mine][near] - centre) ** 2, weights=energy[near])))
            played = rows[:, mine].sum(axis=1)
            active = float(np.mean(played > played.max() * 10 ** (ACTIVE_DB / 10))) if played.max() > 0 else 0.0
            found.append(LocalisedSource(azimuth=round(float(centre), 2), spread=round(spread, 2),
                                         share=round(float(energy.sum() / total.sum()), 4), active=round(active, 3)))
        return found


def _hull_distance(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Distance of (..., 2) points from the convex polygon whose (K, 2) vertices lie on the unit
    circle (0 inside; for one vertex, the distance to it; for two, to the chord)."""
    order = np.argsort(np.arctan2(vertices[:, 1], vertices[:, 0]))
    a = vertices[order]
    if len(a) == 1:
        return np.linalg.norm(points - a[0], axis=-1)
    b = np.roll(a, -1, axis=0)
    edge = b - a
    rel = points[..., None, :] - a
    t = np.clip(np.sum(rel * edge, axis=-1) / np.sum(edge * edge, axis=-1), 0.0, 1.0)
    distance = np.min(np.linalg.norm(rel - t[..., None] * edge, axis=-1), axis=-1)
    if len(a) < 3:
        return distance
    cross = edge[:, 0] * rel[..., 1] - edge[:, 1] * rel[..., 0]  # >= 0 on the inner side of every edge
    return np.where(np.all(cross >= 0, axis=-1), 0.0, distance)
