"""The `upmix render` and `upmix walk` jobs: a scene file rendered to a file; an AmbiX file decoded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import UpmixError
from ..files import refuse_overwriting
from ..io import BitDepth, BlockReader
from ..master import Delivery
from ..render.renderer import file_sources
from ..render.sh import AMBIX_ORDERS
from ..render.targets import get_target
from ..scene import load_scene, with_options
from .output import Progress, report_path, scene_renderer, target_for, write_output

DEFAULT_SAMPLE_RATE = 48000
"""Output rate (Hz) of a scene that gives none."""


def render_scene(scene_file: Path, output: Path, *, stems_dir: Path | None = None,
                 format: str | None = None, sample_rate: int | None = None, bits: BitDepth | None = None,
                 lfe: bool = False, hrtf: Path | None = None, walk: Path | None = None,
                 doppler: bool | None = None, require_path: bool = False, device: str = "auto",
                 overwrite: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Render a scene file to an audio file plus a JSON report beside it; returns the report.
    Without `overwrite`, an existing output or report stops it (files.OutputExists).

    `hrtf` is a SOFA file for binaural output (default: the bundled KEMAR set); `walk` a file of
    listener keyframes that replaces the scene's path; `require_path` makes a scene without one an
    error (the `upmix walk` job)."""
    start = time.perf_counter()
    scene = with_options(load_scene(scene_file), walk, doppler)
    if require_path and not scene.listener.path:
        raise UpmixError("the scene has no listener path: give a walk file ({option}) or listener.path",
                         scene_file, option="walk")
    target = target_for(format, scene, hrtf)
    rate = sample_rate or scene.output.sample_rate or DEFAULT_SAMPLE_RATE
    bits = BitDepth.parse(bits or scene.output.bits or BitDepth.PCM_24)
    if stems_dir is not None and not stems_dir.is_dir():
        raise UpmixError("stems folder not found", stems_dir)
    readers = file_sources(scene, stems_dir, rate)
    refuse_overwriting([output, report_path(output)],
                       {"scene file": scene_file, "walk file": walk, "HRTF file": hrtf,
                        **{f"audio of object {o.name!r}": r.path for o, r in zip(scene.objects, readers)}},
                       overwrite)
    renderer = scene_renderer(scene, target, rate, readers, lfe=lfe, device=device)

    def results() -> dict[str, Any]:
        room = None if scene.room is None else {"rt60_s_by_band": dict(zip(
            [f"{f:g}" for f in renderer.room.bands], [round(float(v), 3) for v in renderer.room.rt60]))}
        return {"objects": renderer.summary(), "room": room,
                "moving": bool(scene.listener.path or any(o.path for o in scene.objects))}

    return write_output(
        "walk" if require_path else "render", start, renderer, output, target, rate, bits, renderer.frames, progress,
        input={"path": str(scene_file), "format": "scene", "stems": None if stems_dir is None else str(stems_dir)},
        settings={"lfe_from_bass": renderer.lfe, "walk": None if walk is None else str(walk), "doppler": doppler,
                  "hrtf": None if hrtf is None else str(hrtf), "device": device},
        results=results)


def render_ambix(source: Path, output: Path, *, format: str, order: int | None = None,
                 sample_rate: int | None = None, bits: BitDepth = BitDepth.PCM_24, hrtf: Path | None = None,
                 delivery: Delivery | None = None, overwrite: bool = True,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Decode an AmbiX file (ACN, SN3D) to a speaker layout, binaural or another order (at a
    `delivery` loudness and true-peak ceiling when given). Without `overwrite`, an existing
    output or report stops it (files.OutputExists)."""
    from ..render.ambisonics import AmbixRenderer  # imports torch: only for AmbiX

    start = time.perf_counter()
    bits = BitDepth.parse(bits)
    reader = BlockReader(source, sample_rate=sample_rate, max_channels=36)
    order = order or AMBIX_ORDERS.get(reader.channels)
    if order is None or reader.channels != (order + 1) ** 2:
        raise UpmixError(f"has {reader.channels} channels; AmbiX files have 4, 9, 16, 25 or 36 "
                         "(orders 1 to 5)", source)
    refuse_overwriting([output, report_path(output)], {"input": source, "HRTF file": hrtf}, overwrite)
    target = get_target(format, hrtf)
    rate = reader.sample_rate
    return write_output(
        "render", start, AmbixRenderer(reader, target, order, rate), output, target, rate, bits, reader.frames,
        progress, input={"path": str(source), "format": f"ambix{order}", "sample_rate": reader.info.sample_rate},
        settings={"hrtf": None if hrtf is None else str(hrtf)}, delivery=delivery or Delivery())
