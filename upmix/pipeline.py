"""The jobs behind the CLI commands: each reads, processes in blocks, writes, and returns a report."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import __version__
from .dsp import LoudnessMeter, SignalStats
from .errors import UpmixError
from .files import refuse_overwriting, temporary_sibling
from .geometry import cartesian
from .io import SUBTYPES, AudioInfo, AudioWriter, BlockReader
from .layouts import WAV_SPEAKER_BITS, get_layout, layout_for_mask, mask_labels
from .master import Delivery
from .render.renderer import SceneRenderer, file_sources
from .render.targets import AmbisonicsTarget, SpeakerTarget, Target, get_target
from .scene import Scene, load_path, load_scene

Progress = Callable[[int, int], None]
"""Called with (frames done, frames expected)."""

DEFAULT_SAMPLE_RATE = 48000


class SnrMeter:
    """Running SNR (dB) of a processed stream against the input it should give back (a fold-down,
    a sum of stems), which arrives earlier: `feed` the input blocks, `check` each output block as
    written to the file (already mapped back to the input's channels; a mono input stands for each
    of them)."""

    def __init__(self) -> None:
        self._pending: list[np.ndarray] = []
        self._lock = threading.Lock()  # `feed` and `check` may run on different threads
        self.signal = self.error = 0.0

    def feed(self, block: np.ndarray) -> None:
        with self._lock:
            self._pending.append(block)

    def check(self, estimate: np.ndarray) -> None:
        n = estimate.shape[1]
        with self._lock:
            ref = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else self._pending[0]
            self._pending = [ref[:, n:]]
        ref = np.broadcast_to(ref[:, :n].astype(np.float64), estimate.shape)  # mono input: every channel
        self.signal += float(np.sum(ref ** 2))
        self.error += float(np.sum((estimate - ref) ** 2))

    @property
    def snr_db(self) -> float | None:
        return None if self.signal == 0 else round(10 * np.log10(self.signal / max(self.error, 1e-30)), 2)


def write_json(path: Path, data: dict, outputs: Iterable[Path] = ()) -> None:
    """Write a JSON file atomically (temporary file in the same folder, then rename).

    `outputs` are the files it reports on, already written: if the report cannot be written, they
    are removed too, so no output is left without its report. A failed write (a full disk) raises
    UpmixError naming `path`."""
    tmp = None
    try:
        tmp = temporary_sibling(path)
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        for output in outputs:
            output.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UpmixError(f"cannot write it: {exc.strerror or exc}", path) from None
        raise


def report_path(output: Path) -> Path:
    """Where the JSON report of an output file goes: beside it, extension .json."""
    return output.with_suffix(".json")


def write_rendered(renderer: SceneRenderer, output: Path, target: Target, rate: int, bits: str,
                   expected: int, progress: Progress | None,
                   written: Callable[[np.ndarray], None] | None = None) -> tuple[AudioWriter, SignalStats]:
    """Stream a renderer's blocks into the output file, measuring the samples as stored (quantised,
    dithered, clipped: the report describes the file on disk), true peak included, and handing
    each stored block to `written` when given.

    Writing and measuring run on a second thread while the next block renders (both mostly run
    outside the GIL: file writes, scipy filters), with at most a few blocks in flight.
    """
    stats = SignalStats(rate, target.loudness_weights, true_peak=True)
    with AudioWriter(output, rate, target.num_channels, SUBTYPES[bits], target.channel_mask) as writer:
        def consume(block: np.ndarray) -> None:
            stored = writer.write(block)
            stats.process(stored)
            if written is not None:
                written(stored)
            if progress:
                progress(writer.frames, max(expected, writer.frames))

        run_beside(renderer.blocks(), consume)
    return writer, stats


def write_delivered(renderer: SceneRenderer, output: Path, target: Target, rate: int, bits: str,
                    expected: int, progress: Progress | None, delivery: Delivery,
                    written: Callable[[np.ndarray], None] | None = None,
                    dialogue: LoudnessMeter | None = None
                    ) -> tuple[AudioWriter, SignalStats, dict | None, list[str]]:
    """`write_rendered`, then, when `delivery` asks for a loudness or a true-peak ceiling, a second
    pass that brings the output there (`upmix.master.deliver`; the first pass goes to a hidden
    float file beside the output, and its stored blocks go to `written`). Returns the writer, the
    output's measures, the delivery report section (None without one) and the warnings about the
    written file (clipping, silence)."""
    if not delivery.active:
        writer, stats = write_rendered(renderer, output, target, rate, bits, expected, progress, written)
        return writer, stats, None, clip_warnings(writer)
    from .master import deliver, intermediate_path

    rendered = intermediate_path(output)
    try:
        _, before = write_rendered(renderer, rendered, target, rate, "float", expected, progress, written)
        writer, stats, section, warnings = deliver(rendered, output, target, bits, delivery, before, dialogue)
        return writer, stats, section, clip_warnings(writer) + warnings
    finally:
        rendered.unlink(missing_ok=True)


@contextmanager
def compute_threads() -> Iterator[None]:
    """Thread settings for a streaming job on this machine, restored afterwards.

    The jobs hand many small matrix products to numpy's BLAS and FFTs to torch, and write and
    meter on a second thread (`run_beside`). With every pool at its default, BLAS and OpenMP worker
    threads spin against each other on few cores (a 60 s stereo upmix to 7.1.4 took 2.0-3.0 s on 2
    cores; with BLAS at one thread, torch at cores - 1 and the writer beside it, 0.9 s). The
    environment variable ``UPMIX_THREADS`` sets torch's count instead (`upmix batch` workers share
    the cores out).
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")  # only jobs that already use torch pay for importing it
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(int(os.environ.get("UPMIX_THREADS", 0)) or max(1, (os.cpu_count() or 2) - 1))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if torch:
            torch.set_num_threads(before)


def run_beside(blocks: Iterable[np.ndarray], consume: Callable[[np.ndarray], None], depth: int = 3) -> None:
    """Call `consume` on every block on a worker thread while the producer makes the next ones.

    An exception on either side stops both and is raised here.
    """
    pending: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []

    def worker() -> None:
        while (block := pending.get()) is not None:
            if not failure:
                try:
                    consume(block)
                except BaseException as exc:  # handed to the producer's thread below
                    failure.append(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        for block in blocks:
            if failure:
                break
            pending.put(block)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def output_report(target: Target, rate: int, writer: AudioWriter, stats: SignalStats) -> dict:
    """The report fields that describe the written file."""
    return {
        "channel_mask": f"0x{target.channel_mask:X}",
        "frames": writer.frames,
        "duration_s": round(writer.frames / rate, 3),
        "channels": [{"index": i, "label": lab, "name": name, "peak_dbfs": pk}
                     for i, (lab, name, pk) in enumerate(zip(target.labels, target.channel_names,
                                                             stats.peak_dbfs))],
        "integrated_lufs": stats.integrated_lufs,
        "true_peak_dbtp": stats.true_peak_dbtp,
        "clipped_samples": writer.clipped,
    }


def clip_warnings(writer: AudioWriter) -> list[str]:
    if not writer.clipped:
        return []
    return [f"{writer.clipped} samples exceeded full scale and were clipped; lower the level or write "
            "--bits float"]


def scene_renderer(scene: Scene, target: Target, rate: int, sources: list, lfe: bool = False,
                   device: str = "auto", lfe_objects: frozenset[str] | None = None):
    """The renderer a scene needs: the plain static one, or the spatial one for a room or movement
    (`lfe_objects`: the objects whose bass feeds the LFE, default all)."""
    if scene.room is None and not scene.listener.path and not any(o.path for o in scene.objects):
        return SceneRenderer(scene, target, rate, sources, lfe=lfe, lfe_objects=lfe_objects)
    from .render.moving import SpatialRenderer  # imports torch

    return SpatialRenderer(scene, target, rate, sources, lfe=lfe, device=device, lfe_objects=lfe_objects)


def with_options(scene: Scene, walk: Path | None = None, doppler: bool | None = None) -> Scene:
    """The scene with its listener walking the path of a `walk` file, and Doppler set, if given."""
    from dataclasses import replace

    if walk is not None:
        scene = replace(scene, listener=replace(scene.listener, path=load_path(walk, scene.room)))
    if doppler is not None:
        scene = replace(scene, render=replace(scene.render, doppler=doppler))
    return scene


def render_scene(scene_file: Path, output: Path, *, stems_dir: Path | None = None,
                 format: str | None = None, sample_rate: int | None = None, bits: str | None = None,
                 lfe: bool = False, hrtf: str | None = None, walk: Path | None = None,
                 doppler: bool | None = None, require_path: bool = False, device: str = "auto",
                 overwrite: bool = True, progress: Progress | None = None) -> dict:
    """Render a scene file to an audio file plus a JSON report beside it; returns the report.
    Without `overwrite`, an existing output or report stops it (files.OutputExists).

    `hrtf` is a SOFA file for binaural output (default: the bundled KEMAR set); `walk` a file of
    listener keyframes that replaces the scene's path; `require_path` makes a scene without one an
    error (the `upmix walk` command)."""
    start = time.perf_counter()
    scene = with_options(load_scene(scene_file), walk, doppler)
    if require_path and not scene.listener.path:
        raise UpmixError("the scene has no listener path: give --walk PATH.yaml or listener.path", scene_file)
    spec = format or scene.output.format
    if spec is None:
        raise UpmixError("no output format: give --format (e.g. 7.1.4) or output.format in the scene",
                         scene_file)
    target = get_target(spec, hrtf)
    rate = sample_rate or scene.output.sample_rate or DEFAULT_SAMPLE_RATE
    bits = bits or scene.output.bits or "24"
    if stems_dir is not None and not stems_dir.is_dir():
        raise UpmixError("stems folder not found", stems_dir)
    warnings = []
    readers = file_sources(scene, stems_dir, rate)
    refuse_overwriting([output, report_path(output)],
                       {"scene file": scene_file, "walk file": walk, "HRTF file": hrtf,
                        **{f"audio of object {o.name!r}": r.path for o, r in zip(scene.objects, readers)}},
                       overwrite)
    renderer = scene_renderer(scene, target, rate, readers, lfe=lfe, device=device)
    with compute_threads():
        writer, stats = write_rendered(renderer, output, target, rate, bits, renderer.frames, progress)
    warnings += clip_warnings(writer)
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
        **output_report(target, rate, writer, stats),
        "objects": renderer.summary(),
        "room": None if scene.room is None else {"rt60_s_by_band": dict(zip(
            [f"{f:g}" for f in renderer.room.bands], [round(float(v), 3) for v in renderer.room.rt60]))},
        "moving": bool(scene.listener.path or any(o.path for o in scene.objects)),
        "warnings": warnings,
        "processing_time_s": round(elapsed, 3),
        "realtime_factor": round(writer.frames / rate / elapsed, 1) if elapsed > 0 else None,
    }
    write_json(report_path(output), report, [output])
    return report


def _mask_weights(labels: list[str]) -> np.ndarray:
    """BS.1770 weights from WAV labels when no known layout matches: LFE 0, surrounds 1.41."""
    has_side = "SL" in labels or "SR" in labels
    surround = {"SL", "SR"} | (set() if has_side else {"BL", "BR"})
    return np.array([0.0 if lab == "LFE" else 1.41 if lab in surround else 1.0 for lab in labels])


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
    settings = report.get("settings")
    spec = report.get("format") or (settings.get("format") if isinstance(settings, dict) else None)
    return order if spec == f"ambix{order}" else None


def describe_file(path: Path, progress: Progress | None = None) -> dict:
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



def ambix_order(info: AudioInfo) -> int | None:
    """The Ambisonic order of a file that looks like AmbiX: (N + 1)^2 channels, N = 1..5, and no
    speaker channel mask."""
    from .render.ambisonics import AMBIX_ORDERS

    return AMBIX_ORDERS.get(info.channels) if not info.channel_mask else None


def render_ambix(source: Path, output: Path, *, format: str, order: int | None = None,
                 sample_rate: int | None = None, bits: str = "24", hrtf: str | None = None,
                 delivery: Delivery | None = None, overwrite: bool = True,
                 progress: Progress | None = None) -> dict:
    """Decode an AmbiX file (ACN, SN3D) to a speaker layout, binaural or another order (at a
    `delivery` loudness and true-peak ceiling when given). Without `overwrite`, an existing
    output or report stops it (files.OutputExists)."""
    from .render.ambisonics import AMBIX_ORDERS, AmbixRenderer

    start = time.perf_counter()
    reader = BlockReader(source, sample_rate=sample_rate, max_channels=36)
    order = order or AMBIX_ORDERS.get(reader.channels)
    if order is None or reader.channels != (order + 1) ** 2:
        raise UpmixError(f"has {reader.channels} channels; AmbiX files have 4, 9, 16, 25 or 36 "
                         "(orders 1 to 5)", source)
    refuse_overwriting([output, report_path(output)], {"input": source, "HRTF file": hrtf}, overwrite)
    target = get_target(format, hrtf)
    rate = reader.sample_rate
    with compute_threads():
        writer, stats, delivered, warnings = write_delivered(AmbixRenderer(reader, target, order, rate), output,
                                                             target, rate, bits, reader.frames, progress,
                                                             delivery or Delivery())
    elapsed = time.perf_counter() - start
    report = {"upmix_version": __version__, "command": "render", "input": str(source),
              "input_format": f"ambix{order}", "output": str(output), "format": target.name, "sample_rate": rate,
              "bits": bits, **output_report(target, rate, writer, stats),
              "delivery": delivered, "warnings": warnings,
              "processing_time_s": round(elapsed, 3),
              "realtime_factor": round(writer.frames / rate / elapsed, 1) if elapsed > 0 else None}
    write_json(report_path(output), report, [output])
    return report


def binauralize(source: Path, output: Path, *, layout: str | None = None, hrtf: str | None = None,
                bits: str = "24", overwrite: bool = True, progress: Progress | None = None) -> dict:
    """Render a speaker-layout file for headphones: every channel becomes a virtual speaker in its
    direction (LFE channels in front, all around the head, +10 dB as on playback). Without
    `overwrite`, an existing output or report stops it (files.OutputExists)."""
    from .render.renderer import StemStream
    from .render.targets import BinauralTarget
    from .scene import RenderSettings, Scene, SceneObject

    start = time.perf_counter()
    reader = BlockReader(source, max_channels=64)
    info = reader.info
    lay = get_layout(layout) if layout else layout_for_mask(info.channel_mask or 0, info.channels)
    if lay is None:
        raise UpmixError(f"cannot tell the speaker layout of {info.channels} channels "
                         f"(channel mask {info.channel_mask if info.channel_mask is not None else 'none'}); "
                         "give --layout", source)
    if lay.num_channels != info.channels:
        raise UpmixError(f"has {info.channels} channels but layout {lay.name} has {lay.num_channels}", source)
    refuse_overwriting([output, report_path(output)], {"input": source, "HRTF file": hrtf}, overwrite)
    objects = tuple(
        SceneObject(name=s.name, stem=s.name, position=(0.0, 1.0, 0.0), gain_db=10.0, width=360.0) if s.is_lfe
        else SceneObject(name=s.name, stem=s.name, position=tuple(cartesian(s.azimuth, s.elevation, 1.0)))
        for s in lay.speakers)
    scene = Scene(objects=objects, render=RenderSettings(reference_distance=1.0, near_field=0.1,
                                                         propagation_delay=False))
    names = lay.channel_names
    stems = StemStream(({n: block[i:i + 1] for i, n in enumerate(names)} for block in reader), names,
                       reader.frames)
    target = BinauralTarget(hrtf)
    rate = reader.sample_rate
    renderer = SceneRenderer(scene, target, rate, [stems.source(n) for n in names])
    with compute_threads():
        writer, stats = write_rendered(renderer, output, target, rate, bits, reader.frames, progress)
    elapsed = time.perf_counter() - start
    report = {"upmix_version": __version__, "command": "binauralize", "input": str(source),
              "input_layout": lay.name, "output": str(output), "format": target.name, "hrtf": hrtf or "MIT KEMAR",
              "sample_rate": rate, "bits": bits, **output_report(target, rate, writer, stats),
              "warnings": clip_warnings(writer), "processing_time_s": round(elapsed, 3),
              "realtime_factor": round(writer.frames / rate / elapsed, 1) if elapsed > 0 else None}
    write_json(report_path(output), report, [output])
    return report
