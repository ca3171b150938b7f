"""The jobs behind the CLI commands: each reads, processes in blocks, writes, and returns a report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np

from . import __version__
from .audio import SUBTYPES, AudioWriter, BlockReader
from .dsp import SignalStats, bs1770_weights
from .errors import UpmixError
from .files import temporary_sibling
from .layouts import WAV_SPEAKER_BITS, Layout, layout_for_mask, mask_labels
from .render.renderer import SceneRenderer
from .render.targets import get_target
from .scene import load_scene

Progress = Callable[[int, int], None]
"""Called with (frames done, frames expected)."""

DEFAULT_SAMPLE_RATE = 48000


def write_json(path: Path, data: dict) -> None:
    """Write a JSON file atomically (temporary file in the same folder, then rename)."""
    tmp = temporary_sibling(path)
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def report_path(output: Path) -> Path:
    """Where the JSON report of an output file goes: beside it, extension .json."""
    return output.with_suffix(".json")


def layout_weights(layout: Layout) -> np.ndarray:
    """BS.1770 loudness weights for a layout's channels."""
    sp = layout.speakers
    return bs1770_weights([s.azimuth for s in sp], [s.elevation for s in sp], [s.is_lfe for s in sp])


def render_scene(scene_file: Path, output: Path, *, stems_dir: Path | None = None,
                 format: str | None = None, sample_rate: int | None = None, bits: str | None = None,
                 lfe: bool = False, progress: Progress | None = None) -> dict:
    """Render a scene file to an audio file plus a JSON report beside it; returns the report."""
    start = time.perf_counter()
    scene = load_scene(scene_file)
    spec = format or scene.output.format
    if spec is None:
        raise UpmixError("no output format: give --format (e.g. 7.1.4) or output.format in the scene",
                         scene_file)
    target = get_target(spec)
    rate = sample_rate or scene.output.sample_rate or DEFAULT_SAMPLE_RATE
    bits = bits or scene.output.bits or "24"
    if stems_dir is not None and not stems_dir.is_dir():
        raise UpmixError("stems folder not found", stems_dir)
    warnings = []
    if scene.listener.path:
        warnings.append("the listener path is not rendered yet; rendering from listener.position")
    if scene.room is not None:
        warnings.append("room simulation is not available yet; rendering the direct path only")
    renderer = SceneRenderer(scene, target, rate, stems_dir=stems_dir, lfe=lfe)
    sources = {p.source.resolve() for p in renderer.plans}
    if output.resolve() in sources or report_path(output).resolve() in sources:
        raise UpmixError("output would overwrite one of the scene's audio sources", output)
    stats = SignalStats(rate, layout_weights(target.layout))
    expected = renderer.frames
    with AudioWriter(output, rate, target.num_channels, SUBTYPES[bits], target.channel_mask) as writer:
        for block in renderer.blocks():
            writer.write(block)
            stats.process(block)
            if progress:
                progress(writer.frames, max(expected, writer.frames))
    if writer.clipped:
        warnings.append(f"{writer.clipped} samples exceeded full scale and were clipped; lower the "
                        "object gains or write --bits float")
    elapsed = time.perf_counter() - start
    report = {
        "upmix_version": __version__,
        "command": "render",
        "scene": str(scene_file),
        "stems": None if stems_dir is None else str(stems_dir),
        "output": str(output),
        "format": target.name,
        "sample_rate": rate,
        "bits": bits,
        "channel_mask": f"0x{target.channel_mask:X}",
        "frames": writer.frames,
        "duration_s": round(writer.frames / rate, 3),
        "lfe_from_bass": renderer.lfe,
        "channels": [{"index": i, "label": lab, "name": s.name, "peak_dbfs": pk}
                     for i, (lab, s, pk) in enumerate(zip(target.labels, target.layout.speakers,
                                                          stats.peak_dbfs))],
        "integrated_lufs": stats.integrated_lufs,
        "clipped_samples": writer.clipped,
        "objects": [p.summary() for p in renderer.plans],
        "warnings": warnings,
        "processing_time_s": round(elapsed, 3),
        "realtime_factor": round(writer.frames / rate / elapsed, 1) if elapsed > 0 else None,
    }
    write_json(report_path(output), report)
    return report


def _mask_weights(labels: list[str]) -> np.ndarray:
    """BS.1770 weights from WAV labels when no known layout matches: LFE 0, surrounds 1.41."""
    has_side = "SL" in labels or "SR" in labels
    surround = {"SL", "SR"} | (set() if has_side else {"BL", "BR"})
    return np.array([0.0 if lab == "LFE" else 1.41 if lab in surround else 1.0 for lab in labels])


def describe_file(path: Path, progress: Progress | None = None) -> dict:
    """Format, channel labels, duration, per-channel peak and loudness of an audio file."""
    reader = BlockReader(path)
    info = reader.info
    mask = info.channel_mask
    layout = layout_for_mask(mask, info.channels) if mask else None
    if layout is not None:
        labels, names, weights = layout.wav_labels, layout.channel_names, layout_weights(layout)
    else:
        default = {1: ["FC"], 2: ["FL", "FR"]}.get(info.channels)
        labels = mask_labels(mask, info.channels) if mask else default or mask_labels(0, info.channels)
        names = [None] * info.channels
        weights = _mask_weights(labels) if all(lab in WAV_SPEAKER_BITS for lab in labels) \
            else np.ones(info.channels)
    stats = SignalStats(info.sample_rate, weights)
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
        "layout": layout.display_name if layout else None,
        "frames": stats.frames,
        "duration_s": round(stats.frames / info.sample_rate, 3),
        "channel_info": [{"index": i, "label": lab, "name": nm, "peak_dbfs": pk}
                         for i, (lab, nm, pk) in enumerate(zip(labels, names, stats.peak_dbfs))],
        "integrated_lufs": stats.integrated_lufs,
    }
