"""Static scene rendering: each object's direct path (direction, distance gain, propagation delay)
mixed to a target, streamed block by block with bounded memory.

Direct path of an object at distance r metres from the listener:
gain = 10^(gain_db/20) * reference_distance / max(r, near_field), delay = r / 343 m/s (rounded to
the nearest sample; the scene is static). Inside the near field the source also widens, from its own
width at ``near_field`` to all around the head at r = 0, so passing through the head never jumps.

A mono source with a width is spread over a cap of that angular diameter. A stereo source with a
width keeps its image: its left and right channels are placed width/2 either side of the object's
direction; a stereo source of width 0 is played as the mean of its channels.
A ``diffuse`` share is rendered from the target's diffuse directions (every speaker of a layout; a
t-design for binaural and Ambisonics) through mutually decorrelated all-pass filters.
Objects reach the LFE only when ``lfe`` is on: a 120 Hz low-pass of the object mix (or of the objects
``lfe_objects`` names, e.g. the effects of a film) at -10 dB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..dsp import BlockConvolver, LowPass, decorrelation_filters, to_db
from ..errors import UpmixError
from ..geometry import SPEED_OF_SOUND, cartesian, relative_direction
from ..io import DEFAULT_BLOCK, BlockReader
from ..scene import Scene, SceneObject, object_source
from .targets import Target

LFE_GAIN = 10 ** (-10 / 20)
"""LFE feeds are mixed 10 dB low; playback adds +10 dB (ITU-R BS.775)."""

LFE_CUTOFF = 120.0
"""LFE low-pass cut-off in Hz."""

DIFFUSE_TAPS = 512
"""Length of the decorrelation filters for diffuse sound at 48 kHz, samples."""


class Source(Protocol):
    """An object's audio: `channels`, expected `frames`, a `label` for reports, and blocks
    (channels, frames) when iterated (a `BlockReader`, or a stem of a separator's stream)."""

    channels: int
    frames: int
    label: str

    def __iter__(self) -> Iterator[np.ndarray]: ...


def file_source(obj: SceneObject, stems_dir: Path | None, sample_rate: int, block: int = DEFAULT_BLOCK
                ) -> BlockReader:
    """A reader of an object's audio file, resampled to `sample_rate` (mono or stereo only)."""
    return BlockReader(object_source(obj, stems_dir), block=block, sample_rate=sample_rate, max_channels=2)


def file_sources(scene: Scene, stems_dir: Path | None, sample_rate: int, block: int = DEFAULT_BLOCK
                 ) -> list[BlockReader]:
    """A reader per object of the scene (see `file_source`)."""
    return [file_source(o, stems_dir, sample_rate, block) for o in scene.objects]


class StemStream:
    """Per-stem sources drawn from one pass over a separator's stream of {stem: block} dicts.

    Every `source(name)` call gives an independent consumer; blocks wait in a queue per consumer
    until it reads them, so memory is bounded when the consumers read in step (as the renderer does).
    """

    def __init__(self, stream: Iterable[dict[str, np.ndarray]], names: list[str], frames: int) -> None:
        self._stream = iter(stream)
        self.names, self.frames = names, frames
        self._queues: list[tuple[str, deque]] = []

    def source(self, name: str) -> _StemSource:
        if name not in self.names:
            raise UpmixError(f"no stem named {name!r}; this separation gives: {', '.join(self.names)}")
        q: deque = deque()
        self._queues.append((name, q))
        return _StemSource(self, q, name)

    def _pull(self) -> bool:
        try:
            out = next(self._stream)
        except StopIteration:
            return False
        for name, q in self._queues:
            q.append(out[name])
        return True


class _StemSource:
    channels = 1

    def __init__(self, stream: StemStream, queue: deque, name: str) -> None:
        self._stream, self._queue, self.label = stream, queue, f"stem {name}"
        self.frames = stream.frames

    def __iter__(self) -> Iterator[np.ndarray]:
        while self._queue or self._stream._pull():
            if self._queue:
                yield self._queue.popleft()


@dataclass(frozen=True)
class ObjectPlan:
    """How one object is rendered: direction as heard (degrees), distance (m), linear gain, delay
    (samples), spread (degrees), and its voices: one, or two for a stereo source with a width,
    each a direction vector (head frame) with a spread in degrees."""

    obj: SceneObject
    source: str
    azimuth: float
    elevation: float
    distance: float
    gain: float
    delay: int
    width: float
    voice_directions: np.ndarray
    voice_widths: np.ndarray

    @property
    def voices(self) -> int:
        return len(self.voice_directions)

    def summary(self) -> dict:
        return {"name": self.obj.name, "source": self.source,
                "azimuth_deg": round(self.azimuth, 2), "elevation_deg": round(self.elevation, 2),
                "distance_m": round(self.distance, 3),
                "gain_db": to_db(self.gain),
                "delay_samples": self.delay, "width_deg": round(self.width, 2),
                "stereo_image": self.voices == 2, "diffuse": self.obj.diffuse}


class DelayedSource:
    """An object's audio as `voices` channels (1 = mean of the file's channels), delayed by a
    whole number of samples."""

    def __init__(self, source: Source, delay: int, voices: int) -> None:
        self._blocks = iter(source)
        self._voices = voices
        self._pending = np.zeros((voices, delay), dtype=np.float32)
        self.exhausted = False
        self.length = delay  # frames this stream holds, counted as they are read

    def read(self, n: int) -> np.ndarray:
        parts, have = [self._pending], self._pending.shape[1]
        while have < n and not self.exhausted:
            try:
                block = next(self._blocks)
            except StopIteration:
                self.exhausted = True
                break
            if self._voices == 1 and block.shape[0] > 1:
                block = block.mean(axis=0, keepdims=True)
            parts.append(block)
            have += block.shape[1]
            self.length += block.shape[1]
        data = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        self._pending = data[:, n:]
        if data.shape[1] >= n:
            return data[:, :n]
        out = np.zeros((self._voices, n), dtype=np.float32)
        out[:, :data.shape[1]] = data
        return out

    @property
    def done(self) -> bool:
        return self.exhausted and self._pending.shape[1] == 0


class Beds:
    """What a renderer adds to its voices besides their own sound: the diffuse share of objects,
    spread all round through decorrelation filters, and the LFE feed (the low-passed mix, -10 dB).

    Args:
        target: output target.
        sample_rate: Hz.
        diffuse: per-voice weights (voices,) of the diffuse feed (all zero: none).
        mono: per-voice weights (voices,) that mix the voices into the LFE feed.
        lfe: feed the target's LFE channels.
    """

    def __init__(self, target: Target, sample_rate: int, diffuse: np.ndarray, mono: np.ndarray, lfe: bool) -> None:
        self.tail = 0
        self._diffuse = self._lfe = None
        if np.any(diffuse):
            around = target.diffuse_directions()
            taps = int(DIFFUSE_TAPS * sample_rate / 48000)
            spread = target.mixer(around, np.zeros(len(around)), np.full(len(around), 1 / np.sqrt(len(around))),
                                  sample_rate)
            self._diffuse = (np.asarray(diffuse, dtype=np.float32),
                             BlockConvolver(decorrelation_filters(len(around), taps)), spread)
            self.tail = taps - 1 + spread.tail
        if lfe:
            idx = target.lfe_indices
            self._lfe = (idx, (np.asarray(mono) * LFE_GAIN / len(idx)).astype(np.float32),
                         LowPass(sample_rate, LFE_CUTOFF))

    def add(self, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Add the beds of one block of voices `x` (voices, n) to `out` (channels, n); returns `out`."""
        if self._diffuse is not None:
            weights, decorrelate, spread = self._diffuse
            out += spread.process(decorrelate.process(weights @ x))
        if self._lfe is not None:
            idx, weights, low_pass = self._lfe
            out[idx] += low_pass.process(weights @ x)
        return out


class SceneRenderer:
    """Render a scene's objects to a target from the listener's position and yaw.

    Args:
        scene: the scene.
        target: output target (speaker layout, binaural or Ambisonics).
        sample_rate: output rate in Hz.
        sources: one source per scene object, at `sample_rate` (see `file_sources`, `StemStream`).
        lfe: feed the LFE channel(s) with the low-passed object mix (speaker layouts with an LFE).
        lfe_objects: names of the objects whose bass feeds the LFE (default: all of them).
        block: frames per block.
    """

    def __init__(self, scene: Scene, target: Target, sample_rate: int, sources: list[Source],
                 lfe: bool = False, block: int = DEFAULT_BLOCK, lfe_objects: frozenset[str] | None = None) -> None:
        self.scene, self.target, self.sample_rate = scene, target, int(sample_rate)
        self.lfe = lfe and len(target.lfe_indices) > 0
        self.lfe_objects = lfe_objects
        self.block = block
        self._readers = sources
        self.plans = self._plan()

    def _plan(self) -> list[ObjectPlan]:
        sc, rs = self.scene, self.scene.render
        pos = np.array([o.position for o in sc.objects])
        az, el, dist = relative_direction(pos, sc.listener.position, sc.listener.yaw)
        gains = 10 ** (np.array([o.gain_db for o in sc.objects]) / 20)
        gains = gains * rs.reference_distance / np.maximum(dist, rs.near_field)
        widths = np.array([o.width for o in sc.objects])
        inside = dist < rs.near_field
        widths[inside] = np.maximum(widths[inside], 360.0 * (1 - dist[inside] / rs.near_field))
        # paths arrive at their geometric delay less what the target's filters add (HRIR latency)
        offset = self.target.delay_offset(self.sample_rate)
        delays = (np.maximum(np.rint(dist / SPEED_OF_SOUND * self.sample_rate - offset), 0).astype(int)
                  if rs.propagation_delay else np.zeros(len(dist), dtype=int))
        plans = []
        for o, r, a, e, d, g, dl, w in zip(sc.objects, self._readers, az, el, dist, gains, delays, widths):
            if r.channels == 2 and o.width > 0 and not d < rs.near_field:
                # stereo image: left and right channels either side of the object, point sources
                dirs, vw = cartesian([a + w / 2, a - w / 2], [e, e]), np.zeros(2)
            else:
                dirs, vw = cartesian(a, e)[None], np.array([w])
            plans.append(ObjectPlan(o, r.label, float(a), float(e), float(d), float(g), int(dl), float(w),
                                    dirs, vw))
        return plans

    @property
    def frames(self) -> int:
        """Output length in frames (estimated when a source is decoded through ffmpeg)."""
        return max(r.frames + p.delay for r, p in zip(self._readers, self.plans))

    def summary(self) -> list[dict]:
        """How each object is rendered, for reports."""
        return [p.summary() for p in self.plans]

    def blocks(self) -> Iterator[np.ndarray]:
        """Rendered (channels, frames) float32 blocks until every source has ended and the
        filters have rung out."""
        rate, plans = self.sample_rate, self.plans
        sources = [DelayedSource(r, p.delay, p.voices) for r, p in zip(self._readers, plans)]
        directions = np.concatenate([p.voice_directions for p in plans])
        widths = np.concatenate([p.voice_widths for p in plans])
        direct = np.concatenate([np.full(p.voices, p.gain * np.sqrt(1 - p.obj.diffuse)) for p in plans])
        mixer = self.target.mixer(directions, widths, direct, rate)
        tail = mixer.tail
        # per-voice weights that turn the voices back into each object's mono signal x gain
        mono = np.concatenate([np.full(p.voices, p.gain / p.voices) for p in plans])
        share = mono * np.concatenate([np.full(p.voices, np.sqrt(p.obj.diffuse)) for p in plans])
        if self.lfe_objects is not None:
            mono = mono * np.concatenate([np.full(p.voices, p.obj.name in self.lfe_objects) for p in plans])
        beds = Beds(self.target, rate, share, mono, self.lfe)
        tail = max(tail, beds.tail)
        emitted, total = 0, None
        while total is None or emitted < total:
            x = np.concatenate([s.read(self.block) for s in sources])
            out = beds.add(mixer.process(x), x)
            if total is None and all(s.done for s in sources):
                total = max(s.length for s in sources) + tail
            if total is not None:
                out = out[:, :total - emitted]
            emitted += out.shape[1]
            yield out
