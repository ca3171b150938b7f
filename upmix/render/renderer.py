"""Static scene rendering: each object's direct path (direction, distance gain, propagation delay)
mixed to a target, streamed block by block with bounded memory.

Direct path of an object at distance r metres from the listener:
gain = 10^(gain_db/20) * reference_distance / max(r, near_field), delay = r / 343 m/s (rounded to
the nearest sample; the scene is static). Inside the near field the source also widens, from its own
width at ``near_field`` to all around the head at r = 0, so passing through the head never jumps.

A mono source with a width is spread over a cap of that angular diameter. A stereo source with a
width keeps its image: its left and right channels are placed width/2 either side of the object's
direction; a stereo source of width 0 is played as the mean of its channels.
A ``diffuse`` share goes to every main channel through mutually decorrelated all-pass filters.
Objects reach the LFE only when ``lfe`` is on: a 120 Hz low-pass of the object mix at -10 dB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..audio import DEFAULT_BLOCK, BlockReader
from ..dsp import BlockConvolver, LowPass, decorrelation_filters
from ..errors import UpmixError
from ..geometry import SPEED_OF_SOUND, cartesian, relative_direction
from ..scene import Scene, SceneObject, object_source
from .targets import SpeakerTarget

LFE_GAIN = 10 ** (-10 / 20)
"""LFE feeds are mixed 10 dB low; playback adds +10 dB (ITU-R BS.775)."""

LFE_CUTOFF = 120.0
"""LFE low-pass cut-off in Hz."""

DIFFUSE_TAPS = 512
"""Length of the decorrelation filters for diffuse sound, samples."""


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
    (samples), spread (degrees), and `channel_gains` (voices, channels) including the gain; an
    object has one voice, or two for a stereo source with a width."""

    obj: SceneObject
    source: str
    azimuth: float
    elevation: float
    distance: float
    gain: float
    delay: int
    width: float
    channel_gains: np.ndarray

    @property
    def voices(self) -> int:
        return self.channel_gains.shape[0]

    def summary(self) -> dict:
        return {"name": self.obj.name, "source": self.source,
                "azimuth_deg": round(self.azimuth, 2), "elevation_deg": round(self.elevation, 2),
                "distance_m": round(self.distance, 3),
                "gain_db": round(20 * np.log10(self.gain), 2) if self.gain > 0 else None,
                "delay_samples": self.delay, "width_deg": round(self.width, 2),
                "stereo_image": self.voices == 2, "diffuse": self.obj.diffuse}


class _DelayedSource:
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
        out = np.zeros((self._voices, n), dtype=np.float32)
        out[:, :min(n, data.shape[1])] = data[:, :n]
        self._pending = data[:, n:]
        return out

    @property
    def done(self) -> bool:
        return self.exhausted and self._pending.shape[1] == 0


class SceneRenderer:
    """Render a scene's objects to a target from the listener's position and yaw.

    Args:
        scene: the scene.
        target: output target (speaker layout).
        sample_rate: output rate in Hz.
        sources: one source per scene object, at `sample_rate` (see `file_sources`, `StemStream`).
        lfe: feed the LFE channel(s) with the low-passed object mix.
        block: frames per block.
    """

    def __init__(self, scene: Scene, target: SpeakerTarget, sample_rate: int, sources: list[Source],
                 lfe: bool = False, block: int = DEFAULT_BLOCK) -> None:
        self.scene, self.target, self.sample_rate = scene, target, int(sample_rate)
        self.lfe = lfe and len(target.layout.lfe_indices) > 0
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
        delays = (np.rint(dist / SPEED_OF_SOUND * self.sample_rate).astype(int)
                  if rs.propagation_delay else np.zeros(len(dist), dtype=int))
        plans = []
        for o, r, a, e, d, g, dl, w in zip(sc.objects, self._readers, az, el, dist, gains, delays, widths):
            scale = g * np.sqrt(1 - o.diffuse)
            if r.channels == 2 and o.width > 0 and not d < rs.near_field:
                # stereo image: left and right channels either side of the object, point sources
                ch = self.target.gains(cartesian([a + w / 2, a - w / 2], [e, e])) * scale
            else:
                ch = self.target.gains(cartesian(a, e)[None], w) * scale
            plans.append(ObjectPlan(o, r.label, float(a), float(e), float(d), float(g), int(dl),
                                    float(w), ch))
        return plans

    @property
    def _has_diffuse(self) -> bool:
        return any(o.diffuse > 0 for o in self.scene.objects)

    @property
    def frames(self) -> int:
        """Output length in frames (estimated when a source is decoded through ffmpeg)."""
        tail = DIFFUSE_TAPS - 1 if self._has_diffuse else 0
        return max(r.frames + p.delay for r, p in zip(self._readers, self.plans)) + tail

    def blocks(self) -> Iterator[np.ndarray]:
        """Rendered (channels, frames) float32 blocks until every source has ended."""
        n_ch = self.target.num_channels
        sources = [_DelayedSource(r, p.delay, p.voices) for r, p in zip(self._readers, self.plans)]
        mix = np.concatenate([p.channel_gains for p in self.plans]).T.astype(np.float32)  # (ch, voices)
        # per-voice weights that turn the voices back into each object's mono signal x gain
        mono = np.concatenate([np.full(p.voices, p.gain / p.voices) for p in self.plans])
        main = self.target.layout.main_indices
        diffuse = None
        if self._has_diffuse:
            share = mono * np.concatenate([np.full(p.voices, np.sqrt(p.obj.diffuse)) for p in self.plans])
            filters = decorrelation_filters(len(main), DIFFUSE_TAPS) / np.sqrt(len(main))
            diffuse = (share.astype(np.float32), BlockConvolver(filters))
        lfe = None
        if self.lfe:
            lfe_idx = self.target.layout.lfe_indices
            lfe = (lfe_idx, (mono * LFE_GAIN / len(lfe_idx)).astype(np.float32),
                   LowPass(self.sample_rate, LFE_CUTOFF))
        emitted = total = 0
        while not all(s.done for s in sources):
            x = np.concatenate([s.read(self.block) for s in sources])
            out = mix @ x
            if diffuse is not None:
                out[main] += diffuse[1].process(diffuse[0] @ x)
            if lfe is not None:
                out[lfe[0]] += lfe[2].process(lfe[1] @ x)
            if all(s.done for s in sources):
                total = max(s.length for s in sources) + (DIFFUSE_TAPS - 1 if diffuse else 0)
                out = out[:, :total - emitted]
            emitted += out.shape[1]
            yield out
        if diffuse is not None and emitted < total:
            tail = np.zeros((n_ch, total - emitted), dtype=np.float32)
            tail[main] = diffuse[1].flush()[:, :total - emitted]
            yield tail
