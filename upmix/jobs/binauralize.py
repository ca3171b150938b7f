"""The `upmix binauralize` job: a speaker-layout file played on headphones."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import UpmixError
from ..files import refuse_overwriting
from ..geometry import cartesian
from ..io import BitDepth, BlockReader
from ..layouts import get_layout, layout_for_mask
from ..render.renderer import SceneRenderer, StemStream
from ..render.targets import BinauralTarget
from ..scene import RenderSettings, Scene, SceneObject
from .output import Progress, report_path, write_output


def binauralize(source: Path, output: Path, *, layout: str | None = None, hrtf: Path | None = None,
                bits: BitDepth = BitDepth.PCM_24, overwrite: bool = True,
                progress: Progress | None = None) -> dict[str, Any]:
    """Render a speaker-layout file for headphones: every channel becomes a virtual speaker in its
    direction (LFE channels in front, all around the head, +10 dB as on playback). Without
    `overwrite`, an existing output or report stops it (files.OutputExists)."""
    start = time.perf_counter()
    bits = BitDepth.parse(bits)
    reader = BlockReader(source, max_channels=64)
    info = reader.info
    lay = get_layout(layout) if layout else layout_for_mask(info.channel_mask or 0, info.channels)
    if lay is None:
        raise UpmixError(f"cannot tell the speaker layout of {info.channels} channels "
                         f"(channel mask {info.channel_mask if info.channel_mask is not None else 'none'}); "
                         "name it ({option})", source, option="layout")
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
    target = BinauralTarget(None if hrtf is None else str(hrtf))
    rate = reader.sample_rate
    renderer = SceneRenderer(scene, target, rate, [stems.source(n) for n in names])
    return write_output("binauralize", start, renderer, output, target, rate, bits, reader.frames, progress,
                        input={"path": str(source), "format": lay.name},
                        settings={"hrtf": str(hrtf) if hrtf else "MIT KEMAR"})
