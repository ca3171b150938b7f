"""The `upmix separate` job: split a recording into stem files that add back up to it."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dsp import SnrMeter, to_db
from ..errors import UpmixError
from ..files import refuse_overwriting
from ..io import AudioWriter, BitDepth, BlockReader, probe
from .output import Progress, analysed, compute_threads, finish_report, located, write_json

if TYPE_CHECKING:
    from ..separation.base import StemSpec

REPORT = "separation.json"
"""The report's name in the stems folder."""


def _write_stems(separator: Any, specs: list[StemSpec], reader: BlockReader, meter: SnrMeter, out_dir: Path, mono: bool,
                 bits: BitDepth, progress: Progress | None
                 ) -> tuple[dict[str, AudioWriter], dict[str, np.ndarray]]:
    """Stream the separation into one writer per stem (all appear together, or none), metering
    how the stems as written add up to the input; returns the writers and each stem's sample peak
    per channel as written (linear, full scale 1)."""

    def blocks():
        for block in reader:
            block = block[:1] if mono else block
            meter.feed(block)
            yield block

    done = 0
    writers: dict[str, AudioWriter] = {}
    peaks: dict[str, np.ndarray] = {}
    with ExitStack() as files, compute_threads():
        for out in separator.stream(blocks(), reader.sample_rate):
            for spec in specs:
                if spec.name not in writers:
                    writers[spec.name] = files.enter_context(
                        AudioWriter(out_dir / f"{spec.name}.wav", reader.sample_rate, out[spec.name].shape[0],
                                    bits.subtype))
            stored = {spec.name: writers[spec.name].write(out[spec.name]) for spec in specs}
            meter.check(separator.mix(stored))  # the stems as written: quantised and clipped
            for name, block in stored.items():
                if block.shape[1]:
                    peaks[name] = np.maximum(peaks.get(name, 0.0), np.abs(block).max(axis=1))
            done += next(iter(out.values())).shape[1]
            if progress is not None:
                progress(done, reader.frames)
    return writers, peaks


def separate_file(source: Path, out_dir: Path, *, model: str = "orchestra", device: str = "auto",
                  weights: Path | None = None, bits: BitDepth = BitDepth.PCM_24, overwrite: bool = True,
                  sources: int | None = None, directions: tuple[float, ...] | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Separate `source` into one file per stem in `out_dir` (``<stem>.wav``) plus `REPORT`;
    returns the report. Nothing is left in `out_dir` when it fails. Without `overwrite`,
    existing stems or report stop it (files.OutputExists) before anything is written. `sources`
    (a count) or `directions` (stereo azimuths, degrees) choose the performers of ``sources``,
    which reads the recording twice (it finds the performers first)."""
    start = time.perf_counter()
    bits = BitDepth.parse(bits)
    info = probe(source)
    if info.channels > 2:
        raise UpmixError(f"separation takes mono or stereo input; this file has {info.channels} channels", source)
    if not out_dir.parent.is_dir():
        raise UpmixError("the folder it would go in does not exist", out_dir)
    if model == "spatial" and info.channels == 1:
        model = "mono"
    if model == "sources" and info.channels == 1:
        raise UpmixError("the sources separator finds performers by direction and needs a stereo recording; "
                         "this file is mono", source)
    from ..separation import get_separator  # imports torch: only once the input is known good

    separator = get_separator(model, device=device, weights=None if weights is None else str(weights),
                              sources=sources, directions=directions)
    if separator.needs_analysis:
        analysed(separator, source)
    specs = separator.specs()
    files = [out_dir / f"{spec.name}.wav" for spec in specs]
    refuse_overwriting(files + [out_dir / REPORT], {"input": source, "weights": weights}, overwrite)
    reader = BlockReader(source)
    meter = SnrMeter()
    written: list[Path] = []  # the stems in place once all are written: removed if the report fails
    created = not out_dir.exists()
    out_dir.mkdir(exist_ok=True)
    try:  # the stems and the report appear together, or none of them
        writers, peaks = _write_stems(separator, specs, reader, meter, out_dir, model == "mono", bits, progress)
        written = files
        clipped = sum(w.clipped for w in writers.values())
        warnings = [separator.caveat] if separator.caveat else []
        warnings += [f"{clipped} samples of the stems exceeded full scale and were clipped (they add up to the "
                     f"input at {meter.snr_db} dB); lower the level or write float samples"] if clipped else []
        report = finish_report(
            "separate", start, info.frames,
            input={"path": str(source), "sample_rate": info.sample_rate, "channels": info.channels,
                   "duration_s": round(info.frames / info.sample_rate, 3)},
            output=out_dir, format="stems", sample_rate=info.sample_rate, bits=bits,
            settings={"separator": separator.name, "device": str(getattr(separator, "device", device)),
                      "weights": None if weights is None else str(weights), "sources": sources,
                      "directions": None if directions is None else list(directions)},
            results={"stems": [{"name": s.name, "file": f"{s.name}.wav", "channels": writers[s.name].channels,
                                "peak_dbfs": [to_db(p) for p in peaks.get(s.name, np.zeros(writers[s.name].channels))],
                                "azimuth_deg": s.azimuth, "elevation_deg": s.elevation,
                                "description": s.description}
                               for s in specs if s.name in writers],
                     "mix_snr_db": meter.snr_db, "clipped_samples": clipped,
                     **({"sources": located(separator)} if separator.name == "sources" else {})},
            warnings=warnings)
        write_json(out_dir / REPORT, report)
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return report
