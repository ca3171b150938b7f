"""What every job shares: progress, streaming a renderer into the output file, and the report.

Every job returns, and writes beside its output, one report of the schema `finish_report` builds:
``upmix_version``, ``command``, ``input`` (a mapping with ``path``), ``output``, ``format``,
``sample_rate``, ``bits``, ``settings``, the job's own results (for an audio file the fields of
`measured`), then ``warnings``, ``processing_time_s`` and ``realtime_factor`` (seconds of audio
per second of processing).
"""

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
from typing import Any

import numpy as np

from .. import __version__
from ..dsp import LoudnessMeter, SignalStats
from ..errors import UpmixError
from ..files import temporaries, temporary_sibling
from ..io import AudioWriter, BitDepth, BlockReader
from ..master import Delivery, deliver, intermediate_path, intermediates
from ..render.renderer import SceneRenderer
from ..render.targets import Target, check_format, get_target
from ..scene import Scene

Progress = Callable[[int, int], None]
"""Called with (frames done, frames expected)."""


def report_path(output: Path) -> Path:
    """Where the JSON report of an output file goes: beside it, extension .json."""
    return output.with_suffix(".json")


def leftovers(output: Path) -> list[Path]:
    """The temporary files a killed job writing `output` left beside it: those of the output and
    of its report, and the first passes of a delivered render (`upmix.master.intermediates`)."""
    return sorted(temporaries(output) + temporaries(report_path(output)) + intermediates(output))


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


def finish_report(command: str, started: float, frames: int, *, input: dict[str, Any], output: Path | None,
                  format: str | None, sample_rate: int, bits: BitDepth | None, settings: dict[str, Any],
                  results: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """A job's report (the schema of this module's docstring); `started` is its
    `time.perf_counter()` at the start, `frames` the audio frames it processed at `sample_rate`;
    `output` and `bits` are None (null) for a job that writes no audio."""
    elapsed = time.perf_counter() - started
    return {"upmix_version": __version__, "command": command, "input": input,
            "output": None if output is None else str(output), "format": format, "sample_rate": sample_rate,
            "bits": None if bits is None else str(bits), "settings": settings, **results,
            "warnings": warnings, "processing_time_s": round(elapsed, 3),
            "realtime_factor": round(frames / sample_rate / elapsed, 1) if elapsed > 0 else None}


def measured(target: Target, rate: int, writer: AudioWriter, stats: SignalStats) -> dict[str, Any]:
    """The report fields that describe the written file, measured on its samples as stored."""
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


def clip_warnings(clipped: int) -> list[str]:
    """The warning for `clipped` samples (none when 0)."""
    if not clipped:
        return []
    return [f"{clipped} samples exceeded full scale and were clipped; lower the level or write float samples"]


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


def write_rendered(renderer: Any, output: Path, target: Target, rate: int, bits: BitDepth,
                   expected: int, progress: Progress | None,
                   written: Callable[[np.ndarray], None] | None = None) -> tuple[AudioWriter, SignalStats]:
    """Stream a renderer's blocks into the output file, measuring the samples as stored (quantised,
    dithered, clipped: the report describes the file on disk), true peak included, and handing
    each stored block to `written` when given.

    Writing and measuring run on a second thread while the next block renders (both mostly run
    outside the GIL: file writes, scipy filters), with at most a few blocks in flight.
    """
    stats = SignalStats(rate, target.loudness_weights, true_peak=True)
    with AudioWriter(output, rate, target.num_channels, bits.subtype, target.channel_mask) as writer:
        def consume(block: np.ndarray) -> None:
            stored = writer.write(block)
            stats.process(stored)
            if written is not None:
                written(stored)
            if progress:
                progress(writer.frames, max(expected, writer.frames))

        run_beside(renderer.blocks(), consume)
    return writer, stats


def write_delivered(renderer: Any, output: Path, target: Target, rate: int, bits: BitDepth,
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
        return writer, stats, None, clip_warnings(writer.clipped)
    rendered = intermediate_path(output)
    try:
        _, before = write_rendered(renderer, rendered, target, rate, BitDepth.FLOAT, expected, progress, written)
        writer, stats, section, warnings = deliver(rendered, output, target, bits, delivery, before, dialogue)
        return writer, stats, section, clip_warnings(writer.clipped) + warnings
    finally:
        rendered.unlink(missing_ok=True)


def write_output(command: str, started: float, renderer: Any, output: Path, target: Target, rate: int,
                 bits: BitDepth, expected: int, progress: Progress | None, *, input: dict[str, Any],
                 settings: dict[str, Any], results: Callable[[], dict[str, Any]] = dict,
                 delivery: Delivery | None = None, written: Callable[[np.ndarray], None] | None = None,
                 dialogue: LoudnessMeter | None = None, warnings: Iterable[str] = ()) -> dict[str, Any]:
    """The end of every rendering job: stream `renderer` into `output` (`write_delivered`, at the
    `delivery` loudness and ceiling when given), then write the report beside it
    (`finish_report`: the fields of `measured`, the ``delivery`` section when a delivery was
    given, and `results()`, called once the file is written; `warnings` ahead of those about the
    written file); returns the report."""
    with compute_threads():
        writer, stats, delivered, about_file = write_delivered(renderer, output, target, rate, bits, expected,
                                                               progress, delivery or Delivery(), written, dialogue)
    report = finish_report(command, started, writer.frames, input=input, output=output, format=target.name,
                           sample_rate=rate, bits=bits, settings=settings,
                           results={**measured(target, rate, writer, stats),
                                    **({} if delivery is None else {"delivery": delivered}), **results()},
                           warnings=[*warnings, *about_file])
    write_json(report_path(output), report, [output])
    return report


def target_for(format: str | None, scene: Scene | None, hrtf: Path | None, default: str | None = None) -> Target:
    """The target `format` names, else the scene's ``output.format``, else `default`; UpmixError
    when none names one. The scene's format is checked even when `format` overrides it (a bad one
    is an error naming the scene file and that key)."""
    if scene is not None and scene.output.format is not None:
        try:
            if format is None:
                return get_target(scene.output.format, hrtf)
            check_format(scene.output.format)
        except UpmixError as exc:
            if exc.path is not None:  # a layout file or the HRTF set names itself
                raise
            raise UpmixError(f"output.format: {exc.message}", scene.source) from None
    if format is None and default is None:
        raise UpmixError("no output format: give one ({option}, e.g. 7.1.4) or output.format in the scene",
                         None if scene is None else scene.source, option="format")
    return get_target(format or default, hrtf)


def scene_renderer(scene: Scene, target: Target, rate: int, sources: list, lfe: bool = False,
                   device: str = "auto", lfe_objects: frozenset[str] | None = None) -> Any:
    """The renderer a scene needs: the plain static one, or the spatial one for a room or movement
    (`lfe_objects`: the objects whose bass feeds the LFE, default all)."""
    if scene.room is None and not scene.listener.path and not any(o.path for o in scene.objects):
        return SceneRenderer(scene, target, rate, sources, lfe=lfe, lfe_objects=lfe_objects)
    from ..render.moving import SpatialRenderer  # imports torch

    return SpatialRenderer(scene, target, rate, sources, lfe=lfe, device=device, lfe_objects=lfe_objects)


def analysed(separator: Any, source: Path) -> None:
    """Run a separator's first pass over `source` (`Separator.analyse`); its errors name the file."""
    reader = BlockReader(source)
    try:
        with compute_threads():
            separator.analyse(iter(reader), reader.sample_rate)
    except UpmixError as exc:
        raise exc.about(source) from None


def located(separator: Any) -> list[dict[str, Any]]:
    """The performers the ``sources`` separator found, for a report: each stem's stereo azimuth and
    spread (degrees), level (dB of the direct sound) and share of the time it plays (None for
    directions the user gave)."""
    return [{"stem": f"source_{k + 1:02d}", "azimuth_deg": s.azimuth, "spread_deg": s.spread,
             "level_db": None if np.isnan(s.share) else round(10 * float(np.log10(max(s.share, 1e-12))), 2),
             "active": None if np.isnan(s.active) else s.active}
            for k, s in enumerate(separator.sources)]
