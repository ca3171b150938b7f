"""The `upmix sources` job: where the performers of a stereo recording are, as a table and a stage map.

The recording streams through a `upmix.separation.localise.DirectionMap` (bounded memory: the map
keeps one row of azimuth bins per `FRAMES_PER_ROW` STFT frames), which finds the sources.
`draw_stage_map` draws the map as a PNG: direction over time, the sources marked, and the map summed
over time beside it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UpmixError
from ..files import refuse_overwriting, temporary_sibling
from ..io import BlockReader, probe
from ..separation.localise import FRAMES_PER_ROW, DirectionMap, LocalisedSource, check_count
from .output import Progress, finish_report, write_json

MAP_RANGE_DB = 60.0
"""Energy range of the stage map's colours: from its loudest cell down by this many dB."""


def locate_file(source: Path, *, count: int | None = None, png: Path | None = None, report: Path | None = None,
                overwrite: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Find the sources of a stereo recording by their direction (the `upmix sources` job); returns
    the report (`finish_report`, command ``sources``; ``output`` is the PNG). `count` forces how many sources; `png`
    draws the stage map there (`draw_stage_map`), `report` writes the report there as JSON. Without
    `overwrite`, an existing PNG or report stops it (files.OutputExists) before anything is read."""
    start = time.perf_counter()
    info = probe(source)
    if info.channels != 2:
        raise UpmixError("source localisation needs a stereo recording; this file "
                         + ("is mono" if info.channels == 1 else f"has {info.channels} channels"), source)
    check_count(count)
    outputs = [p for p in (png, report) if p is not None]
    refuse_overwriting(outputs, {"input": source}, overwrite)
    reader = BlockReader(source)
    stage = DirectionMap(reader.sample_rate)
    done = 0
    for block in reader:
        stage.update(block)
        done += block.shape[1]
        if progress is not None:
            progress(done, max(reader.frames, done))
    try:
        found = stage.sources(count)
    except UpmixError as exc:  # the map's errors are about this file
        raise exc.about(source) from None
    duration = done / reader.sample_rate
    row_s = FRAMES_PER_ROW * stage.hop / reader.sample_rate
    results = {"duration_s": round(duration, 3), "row_duration_s": round(row_s, 4),
               "sources": [{"index": k + 1, "azimuth_deg": s.azimuth, "spread_deg": s.spread,
                            "level_db": round(10 * np.log10(s.share), 2) if s.share > 0 else None,
                            "share": s.share, "active_s": round(s.active * duration, 2), "active_share": s.active}
                           for k, s in enumerate(found)]}
    written: list[Path] = []
    try:
        if png is not None:
            draw_stage_map(png, stage, found, row_s, title=source.name)
            written.append(png)
        result = finish_report("sources", start, done, input={"path": str(source), "sample_rate": info.sample_rate,
                                                               "channels": info.channels,
                                                               "duration_s": round(info.duration, 3)},
                               output=png, format="png" if png is not None else None,
                               sample_rate=reader.sample_rate, bits=None, settings={"sources": count},
                               results=results, warnings=[])
        if report is not None:
            write_json(report, result, written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return result


def draw_stage_map(path: Path, stage: DirectionMap, sources: list[LocalisedSource], row_s: float,
                   title: str = "") -> None:
    """Draw `stage`'s direct energy over time and azimuth as a PNG at `path` (written to a temporary
    sibling, then renamed): time (s, rows of `row_s`) across, azimuth (degrees, +30 = left at the
    top) up, colour the energy in dB over `MAP_RANGE_DB`; the `sources` as lines labelled with their
    number and azimuth; beside it, the map summed over time (dB)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = stage.histogram()
    top = max(float(rows.max()), 1e-30)
    level = 10 * np.log10(np.maximum(rows, top * 10 ** (-MAP_RANGE_DB / 10)) / top)
    total = rows.sum(axis=0)
    profile = 10 * np.log10(np.maximum(total, total.max() * 10 ** (-MAP_RANGE_DB / 10)) / total.max())
    edges = stage.edges
    fig = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 2, width_ratios=(5, 1))
    ax = fig.add_subplot(grid[0])
    side = fig.add_subplot(grid[1], sharey=ax)
    image = ax.imshow(level.T, origin="lower", aspect="auto", cmap="magma", vmin=-MAP_RANGE_DB, vmax=0.0,
                      extent=(0.0, len(rows) * row_s, edges[0], edges[-1]), interpolation="nearest")
    side.plot(profile, stage.azimuths, color="black", linewidth=1)
    for k, s in enumerate(sources, 1):
        for axis in (ax, side):
            axis.axhline(s.azimuth, color="cyan", linewidth=0.6, linestyle="--", alpha=0.7)
        side.annotate(f"{k}: {s.azimuth:+.1f}°", (1.0, s.azimuth), xycoords=("axes fraction", "data"),
                      xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set(xlabel="time, s", ylabel="azimuth, degrees (+30 = left, -30 = right)", ylim=(edges[0], edges[-1]),
           title=f"stage map{': ' + title if title else ''}")
    side.set(xlabel="summed, dB", xlim=(-MAP_RANGE_DB, 3.0))
    side.tick_params(labelleft=False)
    fig.colorbar(image, ax=side, label="direct energy, dB")
    tmp = temporary_sibling(path)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    except OSError as exc:
        raise UpmixError(f"cannot write it: {exc.strerror or exc}", path) from None
    finally:
        tmp.unlink(missing_ok=True)
