"""Delivery mastering: loudness normalisation (ITU-R BS.1770-4) and a true-peak ceiling.

A rendered programme is measured while it is written to an intermediate float file (integrated
loudness with the BS.1770 channel weights of the target, true peak 4x oversampled), then copied to
the output with one gain that brings it to the target loudness, through the look-ahead true-peak
limiter when a ceiling is set, and measured again. Typical targets: -23 LUFS / -1 dBTP (EBU R128),
-24 LUFS / -2 dBTP (ATSC A/85).

When the programme has a dialogue stem (film mode: the centre extraction), its loudness is
*dialogue-gated*: only the 400 ms gating blocks where the dialogue is a real part of the
programme (`DIALOGUE_WITHIN_LU` of the block's loudness, and above the absolute gate) count, as
A/85 allows for dialogue-anchored normalisation; the BS.1770 gates then apply as usual.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dsp import LoudnessMeter, SignalStats, TruePeakLimiter
from .errors import UpmixError
from .files import temporaries
from .io import AudioWriter, BitDepth, BlockReader
from .render.targets import Target

DIALOGUE_WITHIN_LU = 10.0
"""A gating block counts as dialogue when the dialogue stem is at most this far (LU) below the
whole programme in it."""

MIN_DIALOGUE_SHARE = 0.05
"""Below this share of dialogue blocks the programme is measured as a whole."""


@dataclass(frozen=True)
class Delivery:
    """Loudness target in LUFS (None: keep the level) and true-peak ceiling in dBTP (None: no
    limiter)."""

    loudness: float | None = None
    true_peak: float | None = None

    def __post_init__(self) -> None:
        if self.loudness is not None and not -70.0 <= self.loudness <= 0.0:
            raise UpmixError(f"{{option}} must be between -70 and 0 LUFS, not {self.loudness:g}", option="loudness")
        if self.true_peak is not None and not -20.0 <= self.true_peak <= 0.0:
            raise UpmixError(f"{{option}} must be between -20 and 0 dBTP, not {self.true_peak:g}", option="true_peak")

    @property
    def active(self) -> bool:
        return self.loudness is not None or self.true_peak is not None


def dialogue_gate(programme: LoudnessMeter, dialogue: LoudnessMeter) -> np.ndarray:
    """Which gating blocks of the programme hold dialogue (bool per block, see
    `LoudnessMeter.block_powers`)."""
    p, d = programme.block_powers(), dialogue.block_powers()
    n = min(len(p), len(d))
    with np.errstate(divide="ignore"):
        p_db, d_db = 10 * np.log10(p[:n]), 10 * np.log10(d[:n])
    return (d_db - 0.691 >= -70.0) & (d_db >= p_db - DIALOGUE_WITHIN_LU)


def _rounded(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None


def deliver(rendered: Path, output: Path, target: Target, bits: BitDepth, delivery: Delivery, before: SignalStats,
            dialogue: LoudnessMeter | None = None) -> tuple[AudioWriter, SignalStats, dict, list[str]]:
    """Copy an intermediate render to `output` (atomically) at the delivery's loudness and under
    its true-peak ceiling; returns the writer, the output's measures, the report section and
    warnings.

    `before` holds the intermediate's measures (with true peak); `dialogue` the dialogue stem's
    loudness meter when there is one."""
    integrated = before.loudness.integrated()
    measured, basis = integrated, "integrated"
    dialogue_lufs = None
    if dialogue is not None:
        gate = dialogue_gate(before.loudness, dialogue)
        if gate.size and gate.mean() >= MIN_DIALOGUE_SHARE:
            measured, basis = before.loudness.integrated(gate), "dialogue-gated"
            dialogue_lufs = _rounded(measured)
    warnings = []
    if delivery.loudness is None:
        gain_db = 0.0
    elif math.isfinite(measured):
        gain_db = delivery.loudness - measured
    else:
        gain_db = 0.0
        warnings.append("the programme is silent (below the -70 LUFS gate): its level was kept")
    gain = np.float32(10 ** (gain_db / 20))
    reader = BlockReader(rendered)
    rate = reader.sample_rate
    limiter = TruePeakLimiter(rate, delivery.true_peak) if delivery.true_peak is not None else None
    after = SignalStats(rate, target.loudness_weights, true_peak=True)
    with AudioWriter(output, rate, target.num_channels, bits.subtype, target.channel_mask) as writer:
        def put(block: np.ndarray) -> None:
            if block.shape[1]:
                after.process(writer.write(block))

        for block in reader:
            scaled = block * gain
            put(limiter.process(scaled) if limiter is not None else scaled)
        if limiter is not None:
            put(limiter.flush())
    section = {
        "loudness_target_lufs": delivery.loudness,
        "true_peak_ceiling_dbtp": delivery.true_peak,
        "measured_as": basis,
        "before": {"integrated_lufs": _rounded(integrated), "dialogue_gated_lufs": dialogue_lufs,
                   "true_peak_dbtp": before.true_peak_dbtp},
        "gain_db": round(gain_db, 2),
        "limiter_max_reduction_db": round(limiter.reduction_db, 2) if limiter is not None else None,
        "after": {"integrated_lufs": after.integrated_lufs,
                  "dialogue_gated_lufs": (_rounded(dialogue_lufs + gain_db) if dialogue_lufs is not None else None),
                  "true_peak_dbtp": after.true_peak_dbtp},
    }
    return writer, after, section, warnings


def intermediate_path(output: Path) -> Path:
    """Where the first pass of a delivered render goes: a hidden float WAV beside the output
    (removed once the output is written; see `intermediates` for those a killed run left)."""
    return output.with_name(f".{output.name}.{os.getpid()}.render.wav")


def intermediates(output: Path) -> list[Path]:
    """The first passes of delivered renders of `output` (`intermediate_path`, of any process)
    that killed runs left beside it, and their temporary siblings."""
    name = rf"\.{re.escape(output.name)}\.\d+\.render\.wav"
    if not output.parent.is_dir():
        return []
    found = [p for p in output.parent.glob(".*.render.wav") if re.fullmatch(name, p.name)]
    return sorted(found + temporaries(output, name))
