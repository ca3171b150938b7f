"""The `upmix info` job: what an audio file holds, measured (format, labels, peaks, loudness)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp import SignalStats
from ..io import AudioInfo, BlockReader
from ..layouts import WAV_SPEAKER_BITS, layout_for_mask, mask_labels
from ..render.sh import AMBIX_ORDERS
from ..render.targets import AmbisonicsTarget, SpeakerTarget
from .output import Progress, report_path


def ambix_order(info: AudioInfo) -> int | None:
    """The Ambisonic order of a file that looks like AmbiX: (N + 1)^2 channels, N = 1..5, and no
    speaker channel mask."""
    return AMBIX_ORDERS.get(info.channels) if not info.channel_mask else None


def ambix_report_order(path: Path, info: AudioInfo) -> int | None:
    """The Ambisonic order of a file that upmix wrote as AmbiX, or None: (N + 1)^2 channels, no
    speaker mask, and the JSON report beside it (`report_path`) names this file and ``ambixN``
    as its format. (A channel count without a mask alone cannot tell AmbiX from unlabelled
    speaker feeds.)"""
    order = ambix_order(info)
    try:
        report = json.loads(report_path(path).read_text())
    except (OSError, ValueError):
        return None
    if order is None or not isinstance(report, dict) or Path(str(report.get("output"))).name != path.name:
        return None
    return order if report.get("format") == f"ambix{order}" else None


def describe_file(path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Format, channel labels, duration, per-channel peak, true peak and loudness of an audio file
    (an AmbiX file upmix wrote, see `ambix_report_order`, with ACN labels and its loudness on W,
    as the report of the run that wrote it)."""
    reader = BlockReader(path)
    info = reader.info
    mask = info.channel_mask
    layout = layout_for_mask(mask, info.channels) if mask else None
    ambix = ambix_report_order(path, info)
    if ambix is not None:
        target = AmbisonicsTarget(ambix)
        labels, names, weights = target.labels, target.channel_names, target.loudness_weights
    elif layout is not None:
        labels, names = layout.wav_labels, layout.channel_names
        weights = SpeakerTarget(layout).loudness_weights
    else:
        default = {1: ["FC"], 2: ["FL", "FR"]}.get(info.channels)
        labels = mask_labels(mask, info.channels) if mask else default or mask_labels(0, info.channels)
        names = [None] * info.channels
        weights = _mask_weights(labels) if all(lab in WAV_SPEAKER_BITS for lab in labels) \
            else np.ones(info.channels)
    stats = SignalStats(info.sample_rate, weights, true_peak=True)
    for block in reader:
        stats.process(block)
        if progress:
            progress(stats.frames, max(reader.frames, stats.frames))
    return {
        "path": str(path),
        "container": info.container,
        "sample_format": info.subtype,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "channel_mask": None if mask is None else f"0x{mask:X}",
        "format": f"ambix{ambix}" if ambix is not None else layout.name if layout else None,
        "layout": (f"AmbiX order {ambix} (ACN, SN3D)" if ambix is not None
                   else layout.display_name if layout else None),
        "frames": stats.frames,
        "duration_s": round(stats.frames / info.sample_rate, 3),
        "channel_info": [{"index": i, "label": lab, "name": nm, "peak_dbfs": pk}
                         for i, (lab, nm, pk) in enumerate(zip(labels, names, stats.peak_dbfs))],
        "integrated_lufs": stats.integrated_lufs,
        "true_peak_dbtp": stats.true_peak_dbtp,
    }


def _mask_weights(labels: list[str]) -> np.ndarray:
    """BS.1770 weights from WAV labels when no known layout matches: LFE 0, surrounds 1.41."""
    has_side = "SL" in labels or "SR" in labels
    surround = {"SL", "SR"} | (set() if has_side else {"BL", "BR"})
    return np.array([0.0 if lab == "LFE" else 1.41 if lab in surround else 1.0 for lab in labels])
