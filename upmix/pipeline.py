"""The jobs behind the CLI commands: each reads, processes in blocks, writes, and returns a report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np

from . import __version__
from .audio import SUBTYPES, AudioWriter, BlockReader, probe
from .dsp import SignalStats, bs1770_weights
from .errors import UpmixError
from .files import temporary_sibling
from .layouts import WAV_SPEAKER_BITS, Layout, layout_for_mask, mask_labels
from .placement import Stage, StageOptions, stage_scene
from .render.downmix import fold_down_matrix
from .render.renderer import SceneRenderer, StemStream, file_source, file_sources
from .render.targets import SpeakerTarget
from .render.targets import get_target
from .scene import load_scene
from .separation import upmix_separator

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


def _write(renderer: SceneRenderer, output: Path, target: SpeakerTarget, rate: int, bits: str,
           expected: int, progress: Progress | None, meter: "_FoldDownMeter | None" = None
           ) -> tuple[AudioWriter, SignalStats]:
    """Stream a renderer's blocks into the output file, measuring as they pass."""
    stats = SignalStats(rate, layout_weights(target.layout))
    with AudioWriter(output, rate, target.num_channels, SUBTYPES[bits], target.channel_mask) as writer:
        for block in renderer.blocks():
            writer.write(block)
            stats.process(block)
            if meter is not None:
                meter.process(block)
            if progress:
                progress(writer.frames, max(expected, writer.frames))
    return writer, stats


def _output_report(target: SpeakerTarget, rate: int, writer: AudioWriter, stats: SignalStats) -> dict:
    """The report fields that describe the written file."""
    return {
        "channel_mask": f"0x{target.channel_mask:X}",
        "frames": writer.frames,
        "duration_s": round(writer.frames / rate, 3),
        "channels": [{"index": i, "label": lab, "name": s.name, "peak_dbfs": pk}
                     for i, (lab, s, pk) in enumerate(zip(target.labels, target.layout.speakers,
                                                          stats.peak_dbfs))],
        "integrated_lufs": stats.integrated_lufs,
        "clipped_samples": writer.clipped,
    }


def _clip_warning(writer: AudioWriter) -> list[str]:
    if not writer.clipped:
        return []
    return [f"{writer.clipped} samples exceeded full scale and were clipped; lower the level or write "
            "--bits float"]


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
    readers = file_sources(scene, stems_dir, rate)
    sources = {r.path.resolve() for r in readers}
    if output.resolve() in sources or report_path(output).resolve() in sources:
        raise UpmixError("output would overwrite one of the scene's audio sources", output)
    renderer = SceneRenderer(scene, target, rate, readers, lfe=lfe)
    writer, stats = _write(renderer, output, target, rate, bits, renderer.frames, progress)
    warnings += _clip_warning(writer)
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
        "lfe_from_bass": renderer.lfe,
        **_output_report(target, rate, writer, stats),
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


DEFAULT_FORMAT = "7.1.4"
"""Target of `upmix run` when neither --format nor the scene gives one."""


def is_dual_mono(path: Path, tolerance_db: float = -80.0) -> bool:
    """True when a stereo file's channels are the same (difference below `tolerance_db`)."""
    diff = total = 0.0
    for block in BlockReader(path):
        if block.shape[0] != 2:
            return False
        diff += float(np.sum((block[0] - block[1]).astype(np.float64) ** 2))
        total += float(np.sum(block.astype(np.float64) ** 2))
        if total > 0 and diff > total * 10 ** (tolerance_db / 10):
            return False
    return True


class _FoldDownMeter:
    """Running SNR of the ITU fold-down of the output against the (delayed) input."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self._pending: list[np.ndarray] = []
        self.signal = self.error = 0.0

    def feed_input(self, stereo: np.ndarray) -> None:
        self._pending.append(stereo)

    def process(self, output: np.ndarray) -> None:
        n = output.shape[1]
        ref = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
        self._pending = [ref[:, n:]]
        ref = ref[:, :n].astype(np.float64)
        self.signal += float(np.sum(ref ** 2))
        self.error += float(np.sum((self.matrix @ output - ref) ** 2))

    @property
    def snr_db(self) -> float | None:
        if self.signal == 0:
            return None
        return round(10 * np.log10(self.signal / max(self.error, 1e-30)), 2)


def upmix_file(source: Path, output: Path, *, format: str | None = None, options: StageOptions = StageOptions(),
               exact_downmix: bool = False, lfe: bool = False, scene_file: Path | None = None,
               device: str = "auto", sample_rate: int | None = None, bits: str = "24",
               progress: Progress | None = None) -> dict:
    """Upmix a mono or stereo file to a layout (the `upmix run` job); returns the report.

    The recording is separated into direct and ambience stems (`upmix.separation`), the stems are
    placed on the default stage (each on its speaker) or by `scene_file`, rendered, and written
    with a JSON report beside the output.
    """
    start = time.perf_counter()
    info = probe(source)
    if info.channels > 2:
        raise UpmixError(f"upmix run takes mono or stereo input; this file has {info.channels} channels",
                         source)
    scene = load_scene(scene_file) if scene_file is not None else None
    spec = format or (scene.output.format if scene else None) or DEFAULT_FORMAT
    target = get_target(spec)
    rate = sample_rate or (scene.output.sample_rate if scene else None) or info.sample_rate
    bits = bits or (scene.output.bits if scene else None) or "24"
    if output.resolve() == source.resolve():
        raise UpmixError("output would overwrite the input", output)
    mono = info.channels == 1 or is_dual_mono(source)
    stage = Stage(target.layout, options)
    separator = upmix_separator("mono" if mono else "spatial", stage, device, exact_downmix)
    specs = separator.specs()
    reader = BlockReader(source, sample_rate=rate)
    meter = _FoldDownMeter(fold_down_matrix(target.layout)) if scene is None else None

    def input_blocks():
        for block in reader:
            if meter is not None:
                meter.feed_input(np.repeat(block[:1], 2, axis=0) if mono else block)
            yield block[:1] if mono else block

    stems = StemStream(separator.stream(input_blocks(), rate), [s.name for s in specs], reader.frames)
    scene = scene or stage_scene(specs)
    sources = [stems.source(o.stem) if o.stem else file_source(o, None, rate) for o in scene.objects]
    renderer = SceneRenderer(scene, target, rate, sources, lfe=lfe)
    writer, stats = _write(renderer, output, target, rate, bits, reader.frames, progress, meter)
    warnings = _clip_warning(writer)
    elapsed = time.perf_counter() - start
    report = {
        "upmix_version": __version__,
        "command": "run",
        "input": {"path": str(source), "sample_rate": info.sample_rate, "channels": info.channels,
                  "treated_as": "mono" if mono else "stereo", "duration_s": round(info.duration, 3)},
        "output": str(output),
        "settings": {"format": target.name, "width_deg": options.width, "center": options.center,
                     "ambience_front": options.ambience_front, "exact_downmix": exact_downmix,
                     "lfe_from_bass": renderer.lfe, "separator": separator.name, "device": str(separator.device),
                     "scene": None if scene_file is None else str(scene_file), "sample_rate": rate, "bits": bits},
        **_output_report(target, rate, writer, stats),
        "fold_down_snr_db": meter.snr_db if meter is not None else None,
        "stems": [{"name": s.name, "azimuth_deg": s.azimuth, "elevation_deg": s.elevation} for s in specs],
        "warnings": warnings,
        "processing_time_s": round(elapsed, 3),
        "realtime_factor": round(writer.frames / rate / elapsed, 1) if elapsed > 0 else None,
    }
    write_json(report_path(output), report)
    return report
