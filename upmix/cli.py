"""The `upmix` command line: parse options, call the library, print. No signal processing here."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .allocator import keep_freed_memory
from .errors import UpmixError
from .files import OutputExists

# Help texts are rich markup: "\\[" prints a bracket ("[default: ...]" alone would be read as a style tag).
FOLD_BACK_HELP = ("Spread the ambience with complementary filters, so that the ITU stereo fold-down returns the "
                  "recording (the front then keeps 5/9 of the ambience on 5.1, 1/3 on 7.1.4). "
                  "\\[default: on; film off]")
DOPPLER_HELP = ("Let moving paths shift pitch (as the distance changes) or keep it. \\[default: the scene's "
                "render.doppler, on unless it says otherwise]")
OVERWRITE_HELP = "Replace output files that already exist (without it they stop the command)."
SOURCES_HELP = "The sources separator: split into exactly this many performers (the strongest directions)."
DIRECTIONS_HELP = ("The sources separator: the performers' stereo azimuths in degrees, e.g. 20,-5 (+30 hard left, "
                   "-30 hard right, as upmix sources prints them), instead of finding them.")


def _flags_as_flags(params: list[click.Parameter]) -> list[click.Parameter]:
    """Give on/off options an empty metavar: typer's rich help prints ``<bool>`` after them
    otherwise, as if they took a value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _flags_as_flags(super().get_params(ctx))


class _Command(typer.core.TyperCommand):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _flags_as_flags(super().get_params(ctx))


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Turn mono and stereo recordings into immersive audio.")
command = functools.partial(app.command, cls=_Command)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        raise SystemExit(_quiet_broken_pipe())  # as print() does, not rich's status 1


def _console(stderr: bool) -> Console:
    """A rich console; off a terminal (a pipe, a file) lines are as long as they need to be,
    never wrapped at 80 columns in the middle of a value."""
    console = _Console(stderr=stderr, emoji=False)
    if not console.is_terminal:
        console.width = 10_000
    return console


out = _console(stderr=False)
err = _console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        print(f"upmix {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_show_version,
                                       is_eager=True, show_default=False)) -> None:
    """Turn mono and stereo recordings into immersive audio."""


def _line(label: str, style: str, message: str) -> Text:
    """`label` in `style`, then `message` as plain text (paths may hold rich markup such as ``[/]``)."""
    return Text.assemble((label, style), " ", message)


def _fail(message: str) -> None:
    err.print(_line("upmix: error:", "bold red", message), soft_wrap=True)
    raise typer.Exit(2)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(_line("upmix: warning:", "yellow", warning), soft_wrap=True)


def _flag(option: str) -> str:
    """The command line's name for a library setting: the long flag of the running command's
    parameter of that name, else ``--`` and the key with dashes."""
    ctx = click.get_current_context(silent=True)
    for param in ctx.command.params if ctx else []:
        longs = [opt for opt in param.opts if opt.startswith("--")]
        if param.name == option and longs:
            return longs[0]
    return "--" + option.replace("_", "-")


def _error_text(exc: UpmixError) -> str:
    """A library error in the command line's terms: its setting named by the flag."""
    return exc.text(None if exc.option is None else _flag(exc.option))


def handles_errors(fn: Callable) -> Callable:
    """Turn bad-input errors into one line on stderr and exit status 2, with no traceback.

    Path parameters skip click's readability check (a usage-error box): the jobs report an
    unreadable file themselves, in one line."""
    for param in inspect.signature(fn).parameters.values():
        if isinstance(param.default, typer.models.ParameterInfo):
            param.default.readable = False

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OutputExists as exc:
            _fail(f"{_error_text(exc)} (give -y or --overwrite to replace it)")
        except UpmixError as exc:
            _fail(_error_text(exc))
        except BrokenPipeError:
            raise typer.Exit(_quiet_broken_pipe()) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}")
        except Terminated as exc:
            err.print(f"upmix: terminated ({signal.Signals(exc.signum).name})", markup=False)
            raise typer.Exit(128 + exc.signum) from None
        except KeyboardInterrupt:
            err.print("upmix: interrupted")
            raise typer.Exit(128 + signal.SIGINT) from None
    return wrapper


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that the
    same cleanup runs (unfinished outputs and temporary files removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


TERMINATING = (signal.SIGTERM, signal.SIGHUP)
"""Signals that end a command as Ctrl-C does, with exit status 128 + the signal's number."""


def _terminate(signum: int, frame: object) -> None:
    for sig in TERMINATING:  # a second signal must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _catch_termination() -> None:
    """Turn SIGTERM and SIGHUP into `Terminated`, unless they are ignored (as under nohup)."""
    for sig in TERMINATING:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _terminate)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr (only on a terminal); yields the callback for the library."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@command()
@handles_errors
def layouts(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the speaker layouts (built in, and from folders in UPMIX_LAYOUT_PATH)."""
    from .layouts import list_layouts

    items = list_layouts()
    if as_json:
        print(json.dumps([{"name": lay.name, "aliases": list(lay.aliases), "channels": lay.channel_names,
                           "wav_labels": lay.wav_labels, "channel_mask": f"0x{lay.channel_mask:X}",
                           "source": lay.source} for lay in items], indent=2))
        return
    table = Table("layout", "aliases", "ch", "channels (file order)", "WAV mask")
    for lay in items:
        table.add_row(*map(Text, (lay.name, ", ".join(lay.aliases), str(lay.num_channels),
                                  " ".join(lay.channel_names), f"0x{lay.channel_mask:X}")))
    out.print(table)


@command()
@handles_errors
def info(file: Path = typer.Argument(..., help="Audio file."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Print format, channels with their labels, duration, peaks, true peak and loudness of an audio file."""
    from .jobs.describe import describe_file

    with _progress("measuring", True) as progress:
        desc = describe_file(file, progress)
    if as_json:
        print(json.dumps(desc, indent=2))
        return
    lufs, tp = desc["integrated_lufs"], desc["true_peak_dbtp"]
    out.print(Text(desc["path"], style="bold"), soft_wrap=True)
    out.print(f"  format       {desc['container']} {desc['sample_format']}, {desc['sample_rate']} Hz, "
              f"{desc['channels']} channels\n"
              f"  layout       {desc['layout'] or '-'} (channel mask {desc['channel_mask'] or 'none'})\n"
              f"  duration     {desc['duration_s']:.3f} s ({desc['frames']} frames)\n"
              f"  loudness     {'-' if lufs is None else f'{lufs:.1f}'} LUFS integrated (BS.1770-4)\n"
              f"  true peak    {'-' if tp is None else f'{tp:.1f}'} dBTP (4x oversampled)",
              markup=False, highlight=False)
    table = Table("#", "label", "name", "peak dBFS")
    for ch in desc["channel_info"]:
        pk = ch["peak_dbfs"]
        table.add_row(*map(Text, (str(ch["index"] + 1), ch["label"], ch["name"] or "",
                                  "-inf" if pk is None else f"{pk:.2f}")))
    out.print(table)


@command()
@handles_errors
def render(scene: Path = typer.Argument(..., metavar="SCENE", help="Scene file (YAML), or an AmbiX file to decode."),
           output: Path = typer.Option(..., "-o", "--output", help="Output .wav or .flac file."),
           stems: Path | None = typer.Option(None, "--stems", help="Folder of STEM.<ext> audio files."),
           format: str | None = typer.Option(None, "--format", "-f",
                                                help="Target: layout name/alias (7.1.4, 5.1, 4+7+0, ...), a layout "
                                                     ".yaml file, binaural, or ambix1..ambix5. "
                                                     "\\[default: the scene's]",
                                                show_default=False),
           sample_rate: int | None = typer.Option(None, "--sample-rate", "-r", min=8000, max=384000,
                                                     help="Output rate in Hz. \\[default: the scene's, else 48000]",
                                                     show_default=False),
           bits: str | None = typer.Option(None, "--bits", help="16, 24 or float. \\[default: the scene's, else 24]",
                                           show_default=False),
           lfe: bool = typer.Option(False, "--lfe/--no-lfe",
                                    help="Feed the LFE with the 120 Hz low-passed object mix at -10 dB."),
           hrtf: Path | None = typer.Option(None, "--hrtf", help="SOFA HRTF set for binaural. \\[default: MIT KEMAR]",
                                                 show_default=False),
           walk: Path | None = typer.Option(None, "--walk", help="Listener keyframes (YAML) to walk instead "
                                                                  "of the scene's path."),
           doppler: bool | None = typer.Option(None, "--doppler/--no-doppler", help=DOPPLER_HELP, show_default=False),
           device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
           overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
           quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Render a scene's objects to a speaker layout, headphones or Ambisonics (or decode AmbiX).

    A scene with a room is heard in it; a scene whose listener or objects have paths moves."""
    from .io import BitDepth
    from .jobs.options import check_device
    from .jobs.render import render_ambix, render_scene

    depth = BitDepth.parse(bits) if bits else None
    check_device(device)
    with _progress("rendering", not quiet) as progress:
        if scene.suffix.lower() in (".yaml", ".yml"):
            report = render_scene(scene, output, stems_dir=stems, format=format, sample_rate=sample_rate,
                                  bits=depth, lfe=lfe, hrtf=hrtf, walk=walk, doppler=doppler,
                                  device=device, overwrite=overwrite, progress=progress)
        else:
            report = render_ambix(scene, output, format=format or "7.1.4", sample_rate=sample_rate,
                                  bits=depth or BitDepth.PCM_24, hrtf=hrtf, overwrite=overwrite,
                                  progress=progress)
    _wrote(report, quiet)


@command()
@handles_errors
def run(source: Path = typer.Argument(..., metavar="INPUT", help="Mono or stereo recording (any format)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output .wav or .flac file."),
        format: str | None = typer.Option(None, "--format", "-f",
                                             help="Target layout (7.1.4, 5.1, 4+7+0, ... or a layout .yaml). "
                                                  "\\[default: the scene's, else 7.1.4]", show_default=False),
        preset: str = typer.Option("music", "--preset", help="music, or film: dialogue (the centre extraction) "
                                   "to the centre, music wide across the front (--width 60), ambience and "
                                   "effects to surrounds and heights (--ambience-front 0), LFE from the "
                                   "effects' bass, 48 kHz. Options given here win."),
        width: float | None = typer.Option(None, "--width", help="Front stage half-width in degrees: where a "
                                           "hard-panned source lands (30 = the stage as recorded). "
                                           "\\[default: 30; film 60]", show_default=False),
        center: float | None = typer.Option(None, "--center", help="0..1: how much centre-panned sound (film: the "
                                            "dialogue) moves to the centre speaker. \\[default: 1]",
                                            show_default=False),
        ambience_front: float | None = typer.Option(None, "--ambience-front",
                                                    help="0..1: share of the ambience kept in the front pair, "
                                                         "with --no-fold. \\[default: 0.2; film 0]",
                                                    show_default=False),
        fold_back: bool | None = typer.Option(None, "--fold-back/--no-fold", help=FOLD_BACK_HELP,
                                              show_default=False),
        exact_downmix: bool = typer.Option(False, "--exact-downmix",
                                           help="Guarantee that the ITU stereo fold-down equals the input."),
        lfe: bool | None = typer.Option(None, "--lfe/--no-lfe", help="Redirect bass (< 120 Hz) to the LFE, "
                                        "-10 dB. \\[default: off; film on, from the effects]", show_default=False),
        loudness: float | None = typer.Option(None, "--loudness", help="Normalise to this integrated loudness, "
                                              "LUFS (BS.1770-4; -23 EBU R128, -24 ATSC A/85)."),
        true_peak: float | None = typer.Option(None, "--true-peak", help="Limit the true peak to this, dBTP "
                                               "(look-ahead limiter, 4x oversampled), e.g. -1."),
        scene: Path | None = typer.Option(None, "--scene", help="Seat the recording on a scene's objects "
                                                                 "(its room and paths included)."),
        walk: Path | None = typer.Option(None, "--walk", help="Listener keyframes (YAML) to walk through the scene."),
        doppler: bool | None = typer.Option(None, "--doppler/--no-doppler", help=DOPPLER_HELP, show_default=False),
        sample_rate: int | None = typer.Option(None, "--sample-rate", "-r", min=8000, max=384000,
                                                  help="Output rate in Hz. "
                                                       "\\[default: the scene's, else the input's; film 48000]",
                                                  show_default=False),
        bits: str | None = typer.Option(None, "--bits", help="16, 24 or float. \\[default: 24]", show_default=False),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        hrtf: Path | None = typer.Option(None, "--hrtf", help="SOFA HRTF set for binaural. \\[default: MIT KEMAR]",
                                                 show_default=False),
        separator: str = typer.Option("auto", "--separator",
                                      help="auto (spatial for stereo, mono for mono), sources (each performer, "
                                           "found by direction, at its own place on the stage or on the "
                                           "--scene's seats left to right), spatial, mono, orchestra "
                                           "(experimental: strings/woodwinds/brass/other, seated on the orchestra "
                                           "preset or the --scene's families) or demucs[:NAME]."),
        sources: int | None = typer.Option(None, "--sources", help=SOURCES_HELP + " \\[default: as many as "
                                           "the recording shows; with --scene, one per seat]", show_default=False),
        directions: str | None = typer.Option(None, "--directions", help=DIRECTIONS_HELP, show_default=False),
        weights: Path | None = typer.Option(None, "--weights", help="Separator weights (see upmix separate)."),
        overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Upmix a mono or stereo recording to a speaker layout, headphones or Ambisonics (AmbiX
    input is decoded)."""
    from .jobs.options import RunOptions
    from .jobs.upmix import upmix_file

    options = RunOptions(format=format, preset=preset, width=width, center=center, ambience_front=ambience_front,
                         fold_back=fold_back, exact_downmix=exact_downmix, lfe=lfe, scene=scene, walk=walk,
                         doppler=doppler,
                         loudness=loudness, true_peak=true_peak, sample_rate=sample_rate, bits=bits,
                         separator=separator, sources=sources, directions=directions, weights=weights, hrtf=hrtf,
                         device=device)
    with _progress("upmixing", not quiet) as progress:
        report = upmix_file(source, output, options, overwrite=overwrite, progress=progress)
    snr = report.get("fold_down_snr_db")
    _wrote(report, quiet, extra="" if snr is None else f", fold-down SNR {snr:.1f} dB")


@command()
@handles_errors
def walk(scene: Path = typer.Argument(..., help="Scene file (YAML)."),
         output: Path = typer.Option(..., "-o", "--output", help="Output .wav or .flac file."),
         stems: Path | None = typer.Option(None, "--stems", help="Folder of STEM.<ext> audio files."),
         path: Path | None = typer.Option(None, "--walk", help="Listener keyframes (YAML). "
                                                                   "\\[default: the scene's path]", show_default=False),
         format: str = typer.Option("binaural", "--format", "-f", help="Target: a layout, binaural or ambix1..ambix5."),
         sample_rate: int | None = typer.Option(None, "--sample-rate", "-r", min=8000, max=384000,
                                                  help="Output rate in Hz. \\[default: the scene's, else 48000]",
                                                  show_default=False),
         bits: str | None = typer.Option(None, "--bits", help="16, 24 or float. \\[default: the scene's, else 24]",
                                           show_default=False),
         hrtf: Path | None = typer.Option(None, "--hrtf", help="SOFA HRTF set for binaural. \\[default: MIT KEMAR]",
                                                 show_default=False),
         doppler: bool | None = typer.Option(None, "--doppler/--no-doppler", help=DOPPLER_HELP, show_default=False),
         device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
         overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Walk through a scene: render it as heard by a listener moving along a path."""
    from .io import BitDepth
    from .jobs.options import check_device
    from .jobs.render import render_scene

    depth = BitDepth.parse(bits) if bits else None
    check_device(device)
    with _progress("walking", not quiet) as progress:
        report = render_scene(scene, output, stems_dir=stems, format=format, sample_rate=sample_rate,
                              bits=depth, hrtf=hrtf, walk=path, doppler=doppler, require_path=True, device=device,
                              overwrite=overwrite, progress=progress)
    _wrote(report, quiet)


@command()
@handles_errors
def binauralize(source: Path = typer.Argument(..., metavar="INPUT", help="Speaker-layout file (e.g. 7.1.4 WAV)."),
                output: Path = typer.Option(..., "-o", "--output", help="Output .wav or .flac file (2 channels)."),
                layout: str | None = typer.Option(None, "--layout",
                                                  help="Layout of the input, when its channel mask does not say."),
                hrtf: Path | None = typer.Option(None, "--hrtf", help="SOFA HRTF set. \\[default: MIT KEMAR]",
                                                  show_default=False),
                bits: str = typer.Option("24", "--bits", help="16, 24 or float."),
                overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
                quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Play a speaker-layout file on headphones: every channel becomes a virtual speaker."""
    from .io import BitDepth
    from .jobs.binauralize import binauralize as job

    with _progress("binauralizing", not quiet) as progress:
        report = job(source, output, layout=layout, hrtf=hrtf, bits=BitDepth.parse(bits), overwrite=overwrite,
                     progress=progress)
    _wrote(report, quiet, f"binaural from {report['input']['format']}")


@command()
@handles_errors
def separate(source: Path = typer.Argument(..., metavar="INPUT", help="Mono or stereo recording (any format)."),
             output: Path = typer.Option(..., "-o", "--output", help="Folder for the stems (made if missing)."),
             model: str = typer.Option("orchestra", "--model", "-m",
                                       help="sources (each performer of a stereo recording, found by "
                                            "direction: source_01 ... and ambience), orchestra (experimental: "
                                            "strings, woodwinds, brass, other), spatial, mono, or "
                                            "demucs[:NAME] with weights you have."),
             sources: int | None = typer.Option(None, "--sources", help=SOURCES_HELP, show_default=False),
             directions: str | None = typer.Option(None, "--directions", help=DIRECTIONS_HELP, show_default=False),
             weights: Path | None = typer.Option(None, "--weights", help="orchestra: a safetensors file; "
                                                                           "demucs: a folder of its weights."),
             bits: str = typer.Option("24", "--bits", help="16, 24 or float."),
             device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
             overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Separate a recording into stems (one WAV each, adding back up to the input) and a report."""
    from .io import BitDepth
    from .jobs.options import check_device
    from .jobs.separate import separate_file
    from .separation.localise import check_performers

    depth = BitDepth.parse(bits)
    check_device(device)
    chosen = check_performers(model, sources, directions)
    with _progress("separating", not quiet) as progress:
        report = separate_file(source, output, model=model, device=device, weights=weights, bits=depth,
                               overwrite=overwrite, sources=sources, directions=chosen, progress=progress)
    _warn(report["warnings"])
    if not quiet:
        names = ", ".join(s["name"] for s in report["stems"])
        out.print(f"wrote {len(report['stems'])} stems ({names}) to {output}, adding up to the input at "
                  f"{report['mix_snr_db']} dB SNR; {report['realtime_factor']}x real time",
                  markup=False, highlight=False, soft_wrap=True)


@command()
@handles_errors
def sources(source: Path = typer.Argument(..., metavar="INPUT", help="Stereo recording (any format)."),
            png: Path | None = typer.Option(None, "--png", help="Draw the stage map here: direction over time, "
                                                                "the sources marked (PNG)."),
            count: int | None = typer.Option(None, "--sources", help="How many sources to find. "
                                             "\\[default: as many as the recording shows]", show_default=False),
            report: Path | None = typer.Option(None, "--json", help="Write the report (JSON) here."),
            overwrite: bool = typer.Option(False, "--overwrite", "-y", help=OVERWRITE_HELP),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")) -> None:
    """Find the performers of a stereo recording by their direction: azimuth, spread, level and
    how long each plays (from level differences, as pan-potting and coincident pairs code direction)."""
    from .jobs.sources import locate_file

    with _progress("localising", not quiet) as progress:
        result = locate_file(source, count=count, png=png, report=report, overwrite=overwrite, progress=progress)
    _warn(result["warnings"])
    if quiet:
        return
    out.print(Text(f"{len(result['sources'])} sources in {source} ({result['duration_s']:.1f} s; azimuth in "
                   "degrees, +30 = left; level: share of the direct sound)"), soft_wrap=True)
    table = Table("#", "azimuth", "spread", "level dB", "active s (%)")
    for s in result["sources"]:
        table.add_row(str(s["index"]), f"{s['azimuth_deg']:+.1f}", f"{s['spread_deg']:.1f}",
                      "-inf" if s["level_db"] is None else f"{s['level_db']:.1f}",
                      f"{s['active_s']:.1f} ({100 * s['active_share']:.0f} %)")
    out.print(table)
    for what, path in (("stage map", png), ("report", report)):
        if path is not None:
            out.print(f"wrote the {what} to {path}", markup=False, highlight=False, soft_wrap=True)


@command()
@handles_errors
def batch(inputs: list[Path] = typer.Argument(..., metavar="INPUTS...",
                                             help="Audio files, folders (searched recursively) or CSV manifests "
                                                  "(columns: input, output, and any of the options below by "
                                                  "name, e.g. scene, format, loudness)."),
          outdir: Path = typer.Option(..., "-o", "--output", help="Output folder (the journal goes here too)."),
          format: str | None = typer.Option(None, "--format", "-f", help="Target layout. \\[default: 7.1.4]",
                                            show_default=False),
          scene: Path | None = typer.Option(None, "--scene", help="Seat every recording on this scene."),
          preset: str = typer.Option("music", "--preset", help="music or film (see upmix run --help)."),
          width: float | None = typer.Option(None, "--width", help="Front stage half-width, degrees. "
                                            "\\[default: 30; film 60]", show_default=False),
          center: float | None = typer.Option(None, "--center", help="0..1 centre extraction strength. \\[default: 1]",
                                             show_default=False),
          ambience_front: float | None = typer.Option(None, "--ambience-front",
                                                     help="0..1 ambience kept in front, with --no-fold. "
                                                          "\\[default: 0.2; film 0]", show_default=False),
          fold_back: bool | None = typer.Option(None, "--fold-back/--no-fold", help=FOLD_BACK_HELP,
                                                show_default=False),
          lfe: bool | None = typer.Option(None, "--lfe/--no-lfe", help="Bass to the LFE. \\[default: off; film on]",
                                  show_default=False),
          exact_downmix: bool = typer.Option(False, "--exact-downmix", help="Fold-down equals the input."),
          loudness: float | None = typer.Option(None, "--loudness", help="Integrated loudness target, LUFS."),
          true_peak: float | None = typer.Option(None, "--true-peak", help="True-peak ceiling, dBTP."),
          sample_rate: int | None = typer.Option(None, "--sample-rate", "-r", min=8000, max=384000,
                                                 help="Output rate in Hz. \\[default: the input's; film 48000]",
                                                 show_default=False),
          bits: str | None = typer.Option(None, "--bits", help="16, 24 or float. \\[default: 24]", show_default=False),
          separator: str = typer.Option("auto", "--separator", help="As for upmix run."),
          sources: int | None = typer.Option(None, "--sources", help="As for upmix run.", show_default=False),
          directions: str | None = typer.Option(None, "--directions", help="As for upmix run.", show_default=False),
          weights: Path | None = typer.Option(None, "--weights", help="Separator weights (as for upmix run)."),
          walk: Path | None = typer.Option(None, "--walk", help="Listener keyframes (YAML) to walk through --scene."),
          doppler: bool | None = typer.Option(None, "--doppler/--no-doppler", help=DOPPLER_HELP, show_default=False),
          hrtf: Path | None = typer.Option(None, "--hrtf", help="SOFA HRTF set for binaural. \\[default: MIT KEMAR]",
                                           show_default=False),
          device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
          workers: int = typer.Option(1, "--jobs", "-j", help="Files converted at once."),
          engine: str = typer.Option("local", "--engine", help="local (a process pool) or ray."),
          address: str | None = typer.Option(None, "--address", help="Ray cluster HOST:PORT (--engine ray)."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors and the summary.")) -> None:
    """Upmix many files: resumable (a journal in the output folder; a rerun skips what is done),
    atomic outputs, one bad file reported and skipped. Exit status 2 when any file failed."""
    from .batch import collect_jobs, run_batch
    from .jobs.options import RunOptions

    options = RunOptions(format=format, preset=preset, width=width, center=center, ambience_front=ambience_front,
                         fold_back=fold_back, exact_downmix=exact_downmix, lfe=lfe, scene=_absolute(scene),
                         walk=_absolute(walk),
                         doppler=doppler, loudness=loudness, true_peak=true_peak, sample_rate=sample_rate,
                         bits=bits, separator=separator, sources=sources, directions=directions,
                         weights=_absolute(weights), hrtf=_absolute(hrtf), device=device)  # bad values stop here
    job_list, rejected = collect_jobs(inputs, outdir, options)
    with _batch_progress(len(job_list), not quiet) as progress:
        summary = run_batch(job_list, outdir, engine=engine, workers=workers, address=address, rejected=rejected,
                            progress=progress)
    _warn(summary.warnings)
    err.print(Text(f"upmix batch: {outdir}", style="italic"), soft_wrap=True)  # not a table title: wrapped there
    table = Table(show_edge=False)
    for col in ("converted", "skipped (done before)", "failed", "time"):
        table.add_column(col, justify="right")
    table.add_row(str(len(summary.done)), str(len(summary.skipped)), str(len(summary.failed)),
                  f"{summary.seconds:.1f} s")
    err.print(table)
    for source, error in summary.failed:
        err.print(_line("upmix: failed:", "bold red", _about(source, error)), soft_wrap=True)
    if not summary.ok:
        raise typer.Exit(2)


class _RichBatch:
    """`upmix.batch.BatchProgress` on a rich display: the batch and every running file; off a
    terminal, one line per finished file."""

    def __init__(self, total: int, bar: Progress | None) -> None:
        self.bar = bar
        self.tasks: dict[int, object] = {}
        self.overall = bar.add_task("all files", total=total) if bar else None

    def started(self, index, job) -> None:
        if self.bar:
            self.tasks[index] = self.bar.add_task(f"  {job.input.name}", total=None)

    def advanced(self, index, done, total) -> None:
        if self.bar and index in self.tasks:
            self.bar.update(self.tasks[index], completed=done, total=total)

    def finished(self, index, job, result) -> None:
        ok = result["status"] == "done"
        if self.bar:
            self.bar.remove_task(self.tasks.pop(index))
            self.bar.advance(self.overall)
        line = (Text(f"{job.input} -> {job.output} ({result['seconds']:.1f} s)") if ok
                else _line("failed:", "bold red", _about(str(job.input), result["error"])))
        (self.bar.console if self.bar else err).print(line, soft_wrap=True)


def _about(source: str, error: str) -> str:
    """An error line that names the input once."""
    return error if error.startswith(source) else f"{source}: {error}"


@contextmanager
def _batch_progress(total: int, enabled: bool) -> Iterator[_RichBatch | None]:
    if not enabled:
        yield None
        return
    if not err.is_terminal:
        yield _RichBatch(total, None)
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=err) as bar:
        yield _RichBatch(total, bar)


def _absolute(path: Path | None) -> Path | None:
    """`path` made absolute (a batch's jobs and its journal see the same file wherever they run)."""
    return None if path is None else path.resolve()


def _wrote(report: dict, quiet: bool, what: str | None = None, extra: str = "") -> None:
    """Print a job's warnings, then (unless `quiet`) what it wrote: the output and its report."""
    from .jobs.output import report_path

    _warn(report["warnings"])
    if quiet:
        return
    lufs, output = report["integrated_lufs"], Path(report["output"])
    out.print(f"wrote {output} ({what or report['format']}, {len(report['channels'])} channels, "
              f"{report['duration_s']:.2f} s, {'-' if lufs is None else f'{lufs:.1f}'} LUFS{extra}) and "
              f"{report_path(output)}; {report['realtime_factor']}x real time",
              markup=False, highlight=False, soft_wrap=True)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``upmix layouts | head -1``): send later writes and
    the final flush to /dev/null, and return the exit status of a Unix tool killed by SIGPIPE
    (141), to stop quietly as they do."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def main() -> None:
    """Console-script entry point (SIGTERM and SIGHUP stop a command as Ctrl-C does)."""
    keep_freed_memory()
    _catch_termination()
    try:
        app(prog_name="upmix")
    except BrokenPipeError:
        sys.exit(_quiet_broken_pipe())


if __name__ == "__main__":
    sys.exit(main())
