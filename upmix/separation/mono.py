"""Mono upmix: with no spatial cues, split by signal character instead.

Per STFT bin (numpy on the CPU, torch on CUDA):

- **ambience**: an estimate of the late reverberation (Lebart, Boucher & Denbigh 2001: the power
  one frame earlier, decayed for an assumed reverberation time) takes its share of the bin;
- **transients**: power well above its own slow average (onsets, percussion) stays direct and
  goes to the centre, so attacks keep their focus;
- **tonal** direct sound (the rest) goes partly to the centre and partly, decorrelated, to the
  front pair as a wider image.

Mono input is taken as the dual-mono pair (m, m) it plays as on stereo, so the centre carries
sqrt(2) m and the ITU fold-down of a centre-only output is (m, m).
"""

from __future__ import annotations

import math

from ..stft import Array, smooth_bins, smooth_frames, time_constant
from .staged import Bus, StagedSeparator

REVERB_TIME_S = 1.0
"""Reverberation time assumed for the ambience estimate, seconds."""

AMBIENCE_MAX = 0.6
"""Largest share of a bin's energy that can count as ambience."""

TRANSIENT_RATIO = 2.0
"""A bin is transient where its power exceeds this many times its slow average."""

SLOW_S = 0.3
"""Time constant of the slow average power, seconds."""

SPREAD = 0.5
"""Share of the tonal direct energy spread, decorrelated, over the front pair."""


class MonoSeparator(StagedSeparator):
    """Mono in; centre, wide-front and ambience stems.

    Args:
        stage: placement rules of the target layout.
        device: ``auto``, ``cpu`` or ``cuda``.
        exact_downmix: make the ITU fold-down of the output equal (m, m).
    """

    name = "mono"
    input_channels = 1

    def _buses(self) -> list[Bus]:
        left, right = self.stage.front_pair()
        wide = Bus("wide", ((left, 0.5, True), (right, 0.5, True)))
        shares = self.stage.ambience_shares()
        ambience = Bus("ambience", tuple((d, w / 2, True) for side in (1, -1) for d, w in shares[side]))
        return [wide, ambience]

    def _reset(self, sample_rate: int, hop: int) -> None:
        frame_s = hop / sample_rate
        self._decay = math.exp(-2 * 3 * math.log(10) / REVERB_TIME_S * frame_s)
        self._slow_alpha = time_constant(SLOW_S, hop, sample_rate)
        self._slow: Array | None = None
        self._previous: Array | None = None

    def _process(self, spec: Array) -> tuple[dict[int, Array], Array]:
        xp = self.xp
        x = spec[0] * math.sqrt(2.0)  # the dual-mono pair's energy
        power = smooth_bins(xp.abs(x) ** 2, 3)
        earlier = xp.concat([power[:1] if self._previous is None else self._previous[None], power[:-1]])
        self._previous = power[-1]
        floor = xp.maximum(power, 1e-30)
        ambience = xp.minimum(self._decay * earlier / floor, AMBIENCE_MAX)  # never negative
        slow, self._slow = smooth_frames(power, self._slow_alpha, self._slow)
        transient = xp.maximum(1 - TRANSIENT_RATIO * slow / floor, 0.0)  # never above 1
        direct = 1 - ambience
        centre_energy = direct * (transient + (1 - transient) * (1 - SPREAD))
        wide_energy = direct * (1 - transient) * SPREAD
        stage = self.stage
        out = {}
        if stage.centre is not None:
            out[stage.centre] = x * xp.sqrt(centre_energy)
        else:  # no centre speaker: a phantom centre on the front pair
            left, right = stage.front_pair()
            out[left] = out[right] = x * xp.sqrt(centre_energy / 2)
        buses = xp.stack([x * xp.sqrt(wide_energy), x * xp.sqrt(ambience)])
        return out, buses
