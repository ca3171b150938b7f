"""The `upmix run` job: separate a mono or stereo recording, seat the stems, render, write."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp import LoudnessMeter, SnrMeter
from ..errors import UpmixError
from ..files import refuse_overwriting
from ..io import BitDepth, BlockReader, probe
from ..layouts import get_layout, presets_dir
from ..pipeline import ahead
from ..render.downmix import fold_down_matrix
from ..render.renderer import StemStream, file_source
from ..render.targets import SpeakerTarget
from ..scene import load_scene, with_options
from ..seating import performer_seats, scene_layout, seat_ambience, seat_families, seat_sources, stage_scene
from ..stage import STEREO_HALF_ANGLE, Stage, StageOptions
from .describe import ambix_order
from .options import RunOptions
from .output import Progress, analysed, located, report_path, scene_renderer, target_for, write_output
from .render import render_ambix

DEFAULT_FORMAT = "7.1.4"
"""Target of `upmix run` when neither the options nor the scene give one."""

VIRTUAL_STAGE = "7.1.4"
"""Speaker layout whose directions carry the stage when the target is not a speaker layout."""


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


def upmix_file(source: Path, output: Path, options: RunOptions = RunOptions(), *, overwrite: bool = True,
               progress: Progress | None = None) -> dict[str, Any]:
    """Upmix a mono or stereo file to a layout (the `upmix run` job); returns the report.
    Without `overwrite`, an existing output or report stops it (files.OutputExists).

    The preset (`upmix.jobs.presets`) gives the defaults of the stage, the LFE, the sample rate
    and the bit depth; the delivery loudness is measured dialogue-gated in the film preset (the
    centre extraction is the dialogue stem).

    With the default separator (``auto``: ``spatial`` for stereo, ``mono`` for mono) the recording
    is separated into direct and ambience stems (`upmix.separation`) and rendered: on the default
    stage, each stem on its speaker; or, with a scene, seated on it: the direct sound goes to the
    scene's objects by where they sit across the stage as seen from the listener's starting place
    (stage left is the recording's left), the ambience to two diffuse objects, and the scene's room
    and paths (or the walk file) take over. A source separator (``orchestra``, ``demucs``) gives
    stems that are seated where the scene's objects of their `family` sit (``orchestra`` without a
    scene: the orchestra preset), or without a scene on their suggested directions. A JSON report
    goes beside the output.
    """
    start = time.perf_counter()
    chosen = options.chosen_preset
    stage_options = options.stage
    lfe = chosen.lfe if options.lfe is None else options.lfe
    delivery = options.delivery
    separator = options.separator
    info = probe(source)
    if ambix_order(info) and info.channels > 2:  # an Ambisonic recording: decode it, nothing to separate
        return render_ambix(source, output, format=options.format or DEFAULT_FORMAT,
                            sample_rate=options.sample_rate or chosen.sample_rate, bits=options.bits or chosen.bits,
                            hrtf=options.hrtf, delivery=delivery, overwrite=overwrite, progress=progress)
    if info.channels > 2:
        raise UpmixError(f"upmix run takes mono, stereo or AmbiX input; this file has {info.channels} channels",
                         source)
    performers = separator == "sources"
    families = separator not in ("auto", "spatial", "mono", "sources")
    if performers and info.channels == 1:
        raise UpmixError("the sources separator finds performers by direction and needs a stereo recording; "
                         "this file is mono", source)
    scene_file = options.scene
    if options.walk is not None and scene_file is None and separator != "orchestra":
        raise UpmixError("a walk needs a scene to walk through ({option})", options.walk, option="scene")
    if families and scene_file is None and separator == "orchestra":
        scene_file = presets_dir() / "scenes" / "orchestra.yaml"
    scene = load_scene(scene_file) if scene_file is not None else None
    if scene is not None:
        scene = with_options(scene, options.walk, options.doppler)
    target = target_for(options.format, scene, options.hrtf, DEFAULT_FORMAT)
    rate = (options.sample_rate or (scene.output.sample_rate if scene else None) or chosen.sample_rate
            or info.sample_rate)
    bits = BitDepth.parse(options.bits or (scene.output.bits if scene else None) or chosen.bits)
    scene_objects = scene.objects if scene is not None else ()
    refuse_overwriting([output, report_path(output)],
                       {"input": source, "scene file": scene_file, "walk file": options.walk,
                        "HRTF file": options.hrtf, "weights": options.weights,
                        **{f"file of object {o.name!r}": o.file for o in scene_objects}},
                       overwrite)
    mono = separator == "mono" or info.channels == 1 or (separator == "auto" and is_dual_mono(source))
    speakers = isinstance(target, SpeakerTarget)
    from ..separation import get_separator, upmix_separator  # imports torch (seconds): only once the input is good

    weights = None if options.weights is None else str(options.weights)
    if performers:
        from ..separation.sources import SourceSeparator

        count = options.sources
        if scene is not None and count is None and options.directions is None:
            count = len(performer_seats(scene))  # one performer per seat
        sep = SourceSeparator(count, options.directions, device=options.device, mono=True)
        try:
            analysed(sep, source)
        except UpmixError as exc:
            if exc.option != "sources" or options.sources is not None:
                raise
            raise UpmixError(f"the scene seats {count} performers but the recording shows fewer; give their "
                             "azimuths ({option})", source, option="directions") from None
    elif families:
        sep = get_separator(separator, device=options.device, weights=weights)
    else:
        if scene is not None:  # seat the recording on the scene's objects
            stage = Stage(scene_layout(scene), StageOptions(width=STEREO_HALF_ANGLE, center=0.0, ambience_front=0.0,
                                                               fold_back=False))
        else:  # headphones and Ambisonics get the stage of a virtual 7.1.4 layout, from its directions
            stage = Stage(target.layout if speakers else get_layout(VIRTUAL_STAGE), stage_options)
        if separator == "spatial" and mono:
            raise UpmixError("the spatial separator needs a stereo recording; this one is mono", source)
        sep = upmix_separator("mono" if mono else "spatial", stage, options.device, options.exact_downmix)
    specs = sep.specs()
    reader = BlockReader(source, sample_rate=rate)
    fold = fold_down_matrix(target.layout) if scene is None and speakers and not families else None
    meter = SnrMeter() if fold is not None else None

    def input_blocks():
        for block in reader:
            if meter is not None:
                meter.feed(np.repeat(block[:1], 2, axis=0) if mono else block)
            yield block[:1] if mono else block

    dialogue_stem = (f"direct.{stage.dests[stage.centre].name}"
                     if chosen.name == "film" and not families and stage.centre is not None else None)
    dialogue = LoudnessMeter(rate, [1.0]) if dialogue_stem is not None and delivery.active else None

    def stem_blocks():
        for out in sep.stream(input_blocks(), rate):
            if dialogue is not None:
                dialogue.process(out[dialogue_stem])
            yield out

    # the stems are made a block ahead, while the renderer mixes and the writer writes
    stems = StemStream(ahead(stem_blocks()), [s.name for s in specs], reader.frames)
    if performers:  # each performer at its own place on the stage, or on a seat of the scene
        if scene is None:
            scene = stage_scene([replace(s, azimuth=s.azimuth * stage_options.width / STEREO_HALF_ANGLE)
                                 if s.name.startswith("source_") else s for s in specs])
        else:
            scene = seat_ambience(seat_sources(scene, specs), [s for s in specs if s.name.startswith("ambience.")])
        sources = [file_source(o, None, rate) if o.stem is None else stems.source(o.stem) for o in scene.objects]
    elif scene is None:
        scene = stage_scene(specs)
        sources = [stems.source(o.stem) for o in scene.objects]
    elif families:
        scene = seat_families(scene, specs)
        sources = [file_source(o, None, rate) if o.stem is None else stems.source(o.stem) for o in scene.objects]
    else:
        scene = seat_ambience(scene, [s for s in specs if s.name.startswith(("ambience.", "wide."))])
        sources = [file_source(o, None, rate) if o.stem is None else
                   stems.source(o.stem if "." in o.stem else f"direct.{o.stem}") for o in scene.objects]
    lfe_objects = (frozenset(o.name for o in scene.objects if o.name.startswith("ambience."))
                   if chosen.lfe_from_ambience and not families else None)
    renderer = scene_renderer(scene, target, rate, sources, lfe=lfe, device=options.device, lfe_objects=lfe_objects)

    def results() -> dict[str, Any]:
        return {"fold_down_snr_db": meter.snr_db if meter is not None else None, "dialogue_stem": dialogue_stem,
                "stems": [{"name": s.name, "azimuth_deg": s.azimuth, "elevation_deg": s.elevation} for s in specs],
                **({"sources": located(sep)} if performers else {})}

    return write_output(
        "run", start, renderer, output, target, rate, bits, reader.frames, progress,
        input={"path": str(source), "sample_rate": info.sample_rate, "channels": info.channels,
               "treated_as": "mono" if mono else "stereo", "duration_s": round(info.duration, 3)},
        settings={"preset": chosen.name, "width_deg": stage_options.width, "center": stage_options.center,
                  "ambience_front": None if stage_options.fold_back else stage_options.ambience_front,
                  "fold_back": stage_options.fold_back, "exact_downmix": options.exact_downmix,
                  "lfe_from_bass": renderer.lfe, "separator": sep.name, "device": str(sep.device),
                  "scene": None if scene_file is None else str(scene_file),
                  "walk": None if options.walk is None else str(options.walk), "doppler": options.doppler,
                  "loudness": options.loudness, "true_peak": options.true_peak,
                  "hrtf": None if options.hrtf is None else str(options.hrtf), "weights": weights,
                  "sources": options.sources,
                  "directions": None if options.directions is None else list(options.directions)},
        results=results, delivery=delivery, dialogue=dialogue, warnings=[sep.caveat] if sep.caveat else [],
        written=(lambda out: meter.check(fold @ out)) if meter is not None else None)
