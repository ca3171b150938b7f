"""Scenes in a room, with a listener who walks and sources that move.

Three layers, each updated smoothly:

- **direct path** of every voice: per-sample gliding delay (so Doppler follows from the changing
  distance; with ``doppler: false`` each delay stays at its start), gain (distance law with the
  near-field clamp) and direction, recomputed every 256 samples; binaural through
  `MovingBinaural` (HRIRs crossfaded), other targets with encoding gains that glide per sample.
- **early reflections** (images up to order 3 within 120 ms, `upmix.render.room`): a response per
  voice, recomputed from the poses every 8192 samples (170 ms at 48 kHz) when anything moves and
  crossfaded, through uniformly partitioned convolution. Headphones get HRIR responses; for speakers
  and Ambisonics a moving scene encodes reflections to first-order Ambisonics and decodes that
  once (a static scene encodes them with the target's own panner), which keeps the per-update
  cost at four channels instead of twelve.
- **late tail**: one diffuse response for all voices (diffuse sound does not depend on where its
  source is), fed with every voice at its own level.

Paths interpolate keyframes with monotone cubic Hermite splines (smooth, at rest at the first and
last keyframe, never overshooting a keyframe: a pause - two keyframes at one place - stays still,
and a path between points inside the room stays inside it) or linearly; yaw is unwrapped first so
a turn through +-180 goes the short way.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.interpolate
import torch

from ..geometry import SPEED_OF_SOUND, normalise, rotate_yaw
from ..scene import Keyframe, Scene
from ..stft import resolve_device
from .binaural import MOVE_BLOCK, MovingBinaural
from .convolution import PartitionedConvolver
from .delaylines import DelayLines
from .renderer import Beds, DelayedSource, Source
from .room import RoomAcoustics, acoustics, early_responses, images, tail_response
from .targets import AmbisonicsTarget, BinauralTarget, Target

SEGMENT = 8192
"""Samples between updates of the early-reflection responses (a multiple of `MOVE_BLOCK`)."""

STILL_M, STILL_DEG = 0.01, 0.5
"""Early responses are reused while no voice nor the listener has moved more than this (metres)
and the listener has turned less than this (degrees) since they were computed."""


class Trajectory:
    """Position and yaw over time from keyframes (or a fixed pose when there are none)."""

    def __init__(self, keys: tuple[Keyframe, ...], position: tuple[float, float, float], yaw: float = 0.0,
                 interpolation: str = "spline") -> None:
        if not keys:
            keys = (Keyframe(0.0, position, yaw),)
        self.times = np.array([k.time for k in keys])
        self.points = np.array([k.position for k in keys], dtype=float)
        self.yaws = np.degrees(np.unwrap(np.radians([k.yaw for k in keys])))
        self.linear = interpolation == "linear"
        self._curves = [self._curve(v) for v in (self.points, self.yaws[:, None])]

    @property
    def moving(self) -> bool:
        return len(self.times) > 1

    def _curve(self, values: np.ndarray):
        """A function of time (N,) -> values (N, D) through the keyframe values (K, D)."""
        if len(self.times) == 1:
            return lambda t: np.repeat(values, len(t), axis=0)
        if self.linear:
            return lambda t: np.stack([np.interp(t, self.times, v) for v in values.T], axis=-1)
        # monotone cubic Hermite (Fritsch-Carlson slopes, as scipy's PCHIP), at rest at both ends
        slopes = scipy.interpolate.PchipInterpolator(self.times, values).derivative()(self.times)
        slopes[[0, -1]] = 0.0
        return scipy.interpolate.CubicHermiteSpline(self.times, values, slopes)

    def __call__(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions (N, 3), yaws (N,) degrees) at times `t` (N,) in seconds; before the first
        keyframe the first pose, after the last the last."""
        t = np.clip(np.asarray(t, dtype=float), self.times[0], self.times[-1])
        return self._curves[0](t), self._curves[1](t)[:, 0]


class GainVoices:
    """Direct paths of moving voices for targets that mix with gains (speakers, Ambisonics)."""

    def __init__(self, voices: int, max_delay: float, device: torch.device, block: int = MOVE_BLOCK) -> None:
        self.block, self.device = block, device
        self._lines = DelayLines(voices, max_delay, device)

    def process(self, x: np.ndarray, encoding: np.ndarray, gains: np.ndarray, delays: np.ndarray) -> torch.Tensor:
        """(voices, n) samples; `encoding` (nb + 1, channels, voices), `gains` and `delays`
        (voices, nb + 1) at the block boundaries. Returns (channels, n)."""
        b = self.block
        v, n = x.shape
        nb = n // b
        delayed = self._lines.process(x, delays[:, None, :], gains, b)[:, 0]  # (v, n)
        blocks = delayed.reshape(v, nb, b).permute(1, 0, 2)  # (nb, v, block)
        enc = torch.as_tensor(encoding, dtype=torch.float32, device=self.device)
        ramp = (torch.arange(b, device=self.device, dtype=torch.float32) + 0.5) / b
        out = torch.bmm(enc[:-1], blocks) + torch.bmm(enc[1:] - enc[:-1], blocks * ramp)  # (nb, channels, block)
        return out.permute(1, 0, 2).reshape(enc.shape[1], n)


class SpatialRenderer:
    """Render a scene with a room and/or movement to a target.

    Args:
        scene: the scene (room optional; listener and object paths optional).
        target: output target.
        sample_rate: Hz.
        sources: one per scene object (see `upmix.render.renderer`).
        lfe: feed the LFE channel(s) with the low-passed object mix.
        device: ``auto``, ``cpu`` or ``cuda``.
        lfe_objects: names of the objects whose bass feeds the LFE (default: all of them).
    """

    def __init__(self, scene: Scene, target: Target, sample_rate: int, sources: list[Source], lfe: bool = False,
                 device: str = "auto", lfe_objects: frozenset[str] | None = None) -> None:
        self.scene, self.target, self.sample_rate = scene, target, int(sample_rate)
        self.device = resolve_device(device)
        self.lfe = lfe and len(target.lfe_indices) > 0
        self.lfe_objects = lfe_objects
        self._sources = sources
        self.listener = Trajectory(scene.listener.path, scene.listener.position, scene.listener.yaw,
                                   scene.listener.interpolation)
        self.objects = [Trajectory(o.path, o.position) for o in scene.objects]
        self.moving = self.listener.moving or any(t.moving for t in self.objects)
        self.duration = max(s.frames for s in sources) / self.sample_rate
        # voices: a mono object is one voice; a stereo object with a width is a pair of voices side by
        # side, as far apart as the width makes them look from where the listener starts
        lis0, yaw0 = self.listener(np.zeros(1))
        self.voice_object, self.voice_offset = [], []
        for k, (o, src) in enumerate(zip(scene.objects, sources)):
            if src.channels == 2 and o.width > 0:
                rel = np.asarray(o.position) - lis0[0]
                side = normalise(np.cross([0.0, 0.0, 1.0], rel)) * np.linalg.norm(rel) * np.tan(np.radians(o.width / 2))
                self.voice_object += [k, k]
                self.voice_offset += [-side, side]  # left channel to the listener's left
            else:
                self.voice_object.append(k)
                self.voice_offset.append(np.zeros(3))
        self.voice_object = np.array(self.voice_object)
        self.voice_offset = np.array(self.voice_offset)
        self._level = 10 ** (np.array([o.gain_db for o in scene.objects]) / 20)
        self.room: RoomAcoustics | None = acoustics(scene.room) if scene.room is not None else None
        voices0 = self._voice_positions(np.zeros(1))[:, 0]
        self._images = [images(self.room, p) for p in voices0] if self.room is not None else []
        self._start_delay = np.linalg.norm(voices0 - lis0[0], axis=1) / SPEED_OF_SOUND * self.sample_rate
        # the longest path a direct sound may take over the scene, for the delay lines
        probe = np.linspace(0.0, self.duration, max(2, int(self.duration * 10) + 1))
        far = np.max(np.linalg.norm(self._voice_positions(probe) - self.listener(probe)[0][None], axis=2))
        self.max_delay = far / SPEED_OF_SOUND * self.sample_rate + 8

    @property
    def frames(self) -> int:
        return max(s.frames for s in self._sources)

    def summary(self) -> list[dict]:
        """Each object's start as heard, and whether it moves, for reports."""
        dirs, gains, delays, widths = self._direct(np.zeros(1))
        out = []
        for k, (o, src) in enumerate(zip(self.scene.objects, self._sources)):
            v = int(np.flatnonzero(self.voice_object == k)[0])
            d = dirs[v, 0]
            out.append({"name": o.name, "source": src.label,
                        "start_azimuth_deg": round(float(np.degrees(np.arctan2(-d[0], d[1]))), 2),
                        "start_elevation_deg": round(float(np.degrees(np.arcsin(np.clip(d[2], -1, 1)))), 2),
                        "start_delay_samples": round(float(delays[v, 0]), 2), "moves": bool(o.path)})
        return out

    def _voice_positions(self, t: np.ndarray) -> np.ndarray:
        """Voice positions (voices, N, 3) at times t."""
        objects = np.stack([traj(t)[0] for traj in self.objects])  # (objects, N, 3)
        return objects[self.voice_object] + self.voice_offset[:, None, :]

    def _direct(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per voice at times t: head-frame directions (V, N, 3), gains (V, N), delays (V, N) in
        samples, spreads (V, N) in degrees."""
        rs = self.scene.render
        lis, yaw = self.listener(t)
        rel = self._voice_positions(t) - lis[None]
        dist = np.linalg.norm(rel, axis=2)
        directions = normalise(rotate_yaw(rel, -yaw[None, :]))
        directions[dist < 1e-9] = (0.0, 1.0, 0.0)  # a voice at the listener: ahead (it is spread all round)
        obj = self.voice_object
        diffuse = np.array([o.diffuse for o in self.scene.objects])[obj]
        level = self._level[obj] * np.sqrt(1 - diffuse)
        gains = level[:, None] * rs.reference_distance / np.maximum(dist, rs.near_field)
        if not rs.propagation_delay:
            delays = np.zeros_like(dist)
        elif rs.doppler:
            delays = dist / SPEED_OF_SOUND * self.sample_rate
        else:
            delays = np.repeat(self._start_delay[:, None], len(t), axis=1)
        delays = np.maximum(delays - self.target.delay_offset(self.sample_rate), 0.0)
        widths = np.array([self.scene.objects[k].width for k in obj])[:, None] * np.ones_like(dist)
        stereo = np.bincount(obj, minlength=len(self.scene.objects))[obj] == 2
        widths[stereo] = 0.0
        inside = dist < rs.near_field
        widths[inside] = np.maximum(widths[inside], 360.0 * (1 - dist[inside] / rs.near_field))
        return directions, gains, delays, widths

    def _reflections_target(self) -> Target:
        """Where reflections are encoded: the target itself, or first-order Ambisonics for speakers
        and Ambisonics when things move."""
        if isinstance(self.target, BinauralTarget) or not self.moving:
            return self.target
        return AmbisonicsTarget(1)

    def _pose(self, t: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Voice positions (voices, 3), listener position (3,) and yaw (degrees) at time t."""
        lis, yaw = self.listener(np.array([t]))
        return self._voice_positions(np.array([t]))[:, 0], lis[0], float(yaw[0])

    def _early(self, pose: tuple[np.ndarray, np.ndarray, float], encoder: Target) -> tuple[np.ndarray, np.ndarray]:
        """Early-reflection responses (voices, channels, length) for a pose, and the mean per-band
        energy they carry by arrival sample."""
        rs = self.scene.render
        return early_responses(encoder, self.room, self._images, *pose, self.sample_rate, rs.reference_distance,
                               rs.near_field, include_direct=False)

    def blocks(self) -> Iterator[np.ndarray]:
        """Rendered (channels, frames) blocks until the sources end and the room has rung out."""
        rate, dev, target = self.sample_rate, self.device, self.target
        obj = self.voice_object
        n_voices, n_ch = len(obj), target.num_channels
        readers = [DelayedSource(s, 0, 2 if np.count_nonzero(obj == k) == 2 else 1)
                   for k, s in enumerate(self._sources)]
        binaural = isinstance(target, BinauralTarget)
        mono = (self._level[obj] / np.bincount(obj)[obj]).astype(np.float32)  # voice -> its object's mono mix
        # diffuse sound is the recording's own ambience: it does not excite the room again
        dry = np.sqrt(1 - np.array([o.diffuse for o in self.scene.objects])[obj]).astype(np.float32)
        heard = dry > 0
        if binaural:
            direct = MovingBinaural(target.prepared(rate), n_voices, self.max_delay, dev)
        else:
            direct = GainVoices(n_voices, self.max_delay, dev)
        static_encoding: np.ndarray | None = None
        tail_len = int(self.max_delay) + (target.prepared(rate).taps if binaural else 0)
        reflections = tail = decoder = None
        if self.room is not None:
            encoder = self._reflections_target()
            posed = self._pose(0.0)
            responses, energy = self._early(posed, encoder)
            reflections = PartitionedConvolver(n_voices, encoder.num_channels, SEGMENT, dev)
            reflections.set_responses(responses)
            if encoder is not target:  # first-order Ambisonics decoded to the target
                from .ambisonics import decoding_mixer

                decoder = decoding_mixer(target, 1, rate)
            ir = tail_response(target, self.room, rate, energy, self.scene.render.reference_distance)
            tail = PartitionedConvolver(1, n_ch, SEGMENT, dev)
            tail.set_responses(ir[None].astype(np.float32))
            tail_len = max(tail_len, responses.shape[-1], ir.shape[-1]) + SEGMENT
        shares = np.sqrt(np.array([o.diffuse for o in self.scene.objects])[obj])
        to_lfe = mono if self.lfe_objects is None else \
            mono * np.array([o.name in self.lfe_objects for o in self.scene.objects])[obj]
        beds = Beds(target, rate, mono * shares, to_lfe, self.lfe)
        tail_len = max(tail_len, beds.tail)
        emitted, total, start = 0, None, 0
        while total is None or emitted < total:
            x = np.concatenate([r.read(SEGMENT) for r in readers]).astype(np.float32)
            t = (start + np.arange(SEGMENT // MOVE_BLOCK + 1) * MOVE_BLOCK) / rate
            dirs, gains, delays, widths = self._direct(t)
            if binaural:
                out = direct.process(x, dirs, gains, delays)
            else:
                if self.moving:  # encoding gains at every block boundary, for the voices heard directly
                    enc = np.zeros((n_voices, len(t), n_ch))
                    enc[heard] = target.gains(dirs[heard].reshape(-1, 3), widths[heard].reshape(-1)).reshape(
                        -1, len(t), n_ch)
                    enc = enc.transpose(1, 2, 0)
                else:
                    if static_encoding is None:
                        static_encoding = np.repeat(target.gains(dirs[:, 0], widths[:, 0]).T[None], len(t), axis=0)
                    enc = static_encoding
                out = direct.process(x, enc, gains, delays).cpu().numpy()
            if reflections is not None:
                pose = self._pose(t[-1]) if self.moving else posed
                if _moved(posed, pose):
                    reflections.set_responses(self._early(pose, encoder)[0])
                    posed = pose
                early = reflections.process(x * dry[:, None]).cpu().numpy()
                out += decoder.process(early) if decoder is not None else early
                out += tail.process(((mono * dry) @ x)[None]).cpu().numpy()
            beds.add(out, x)
            if total is None and all(r.done for r in readers):
                total = max(r.length for r in readers) + tail_len
            if total is not None:
                out = out[:, :total - emitted]
            emitted += out.shape[1]
            start += SEGMENT
            yield out.astype(np.float32)


def _moved(a: tuple[np.ndarray, np.ndarray, float], b: tuple[np.ndarray, np.ndarray, float]) -> bool:
    """Whether two poses (see `SpatialRenderer._pose`) differ by more than `STILL_M` / `STILL_DEG`."""
    return bool(np.abs(a[0] - b[0]).max() > STILL_M or np.abs(a[1] - b[1]).max() > STILL_M
                or abs(a[2] - b[2]) > STILL_DEG)
