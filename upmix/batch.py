"""Many files: the job list, the resumable journal, and local or Ray workers (`upmix batch`).

- **Jobs** come from files, folders (searched recursively for `AUDIO_EXTENSIONS`; the output
  keeps the file's path below the folder) and CSV manifests (column ``input``, optional
  ``output`` name and per-file settings in columns named as in `SETTINGS`; paths relative to
  the manifest). Two jobs that would write the same output are an error for the second.
- **Journal**: ``OUTDIR/upmix-journal.jsonl``, one JSON line per event (``started``, ``done``
  with the output's SHA-256, size and timing, ``failed`` with the reason). A rerun skips a job
  whose last event is ``done`` with the same settings hash (settings and the input's size and
  modification time) while its output is still there unchanged; everything else is redone.
- **Outputs** are written atomically by the job (`upmix.audio.AudioWriter`: a temporary file in the
  same folder, then a rename), so a killed batch leaves no half file under a final name; the
  temporary files a killed job left are removed when it runs again.
- **Engines**: ``local`` (a process pool of `jobs` workers, nothing else needed) or ``ray`` (the
  same per-file tasks on a Ray cluster, the optional extra ``upmix[ray]``). Both run
  `convert` with the same thread settings, so they write byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import queue
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import UpmixError

JOURNAL = "upmix-journal.jsonl"
"""The journal's file name in the output folder."""

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".w64", ".rf64", ".caf",
                              ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".wma", ".mka"})
"""File extensions a folder is searched for (case-insensitive)."""

SETTINGS: dict[str, type] = {
    "format": str, "scene": str, "preset": str, "width": float, "center": float, "ambience_front": float,
    "lfe": bool, "exact_downmix": bool, "loudness": float, "true_peak": float, "sample_rate": int, "bits": str,
    "separator": str, "device": str,
}
"""Per-file settings (manifest columns, `upmix batch` options) and their types."""


@dataclass(frozen=True)
class Job:
    """One file to convert: input, output path and settings (see `SETTINGS`; None = default)."""

    input: Path
    output: Path
    settings: dict = field(default_factory=dict)

    def settings_hash(self) -> str:
        """SHA-256 (16 hex digits) of the settings and the input's size and modification time."""
        try:
            st = self.input.stat()
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = None
        key = json.dumps({"settings": {k: v for k, v in sorted(self.settings.items()) if v is not None},
                          "input": stamp}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Rejected:
    """An input that makes no job, and why."""

    input: str
    error: str


def _parse(value: str, kind: type, where: str) -> Any:
    text = value.strip()
    if text == "":
        return None
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return kind(text)
    except ValueError:
        raise UpmixError(f"{where}: {text!r} is not a valid {kind.__name__}") from None


def read_manifest(path: Path) -> list[tuple[Path, str | None, dict]]:
    """Rows of a CSV manifest: (input, output name or None, settings); relative paths are taken
    from the manifest's folder. Unknown columns and bad values are errors naming the row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "input" not in columns:
                raise UpmixError("a manifest needs an 'input' column", path)
            unknown = [c for c in columns if c not in SETTINGS and c not in ("input", "output")]
            if unknown:
                raise UpmixError(f"unknown manifest column {unknown[0]!r}; known: input, output, "
                                 f"{', '.join(SETTINGS)}", path)
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "") for k, v in row.items() if k is not None}
                if not row.get("input", "").strip():
                    raise UpmixError(f"row {line}: empty input", path)
                settings = {k: _parse(v, SETTINGS[k], f"row {line}, column {k!r}")
                            for k, v in row.items() if k in SETTINGS}
                for key in ("scene",):
                    if settings.get(key):
                        settings[key] = str((path.parent / settings[key]).resolve())
                name = row.get("output", "").strip() or None
                rows.append((path.parent / row["input"].strip(), name, {k: v for k, v in settings.items()
                                                                        if v is not None}))
            return rows
    except UpmixError as exc:
        if exc.path is None:
            raise UpmixError(str(exc), path) from None
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UpmixError(f"cannot read the manifest: {exc}", path) from None


def collect_jobs(inputs: Iterable[Path], outdir: Path, settings: dict) -> tuple[list[Job], list[Rejected]]:
    """The jobs for files, folders and CSV manifests, with `settings` as every job's defaults
    (a manifest row's own settings win); and the inputs that make no job (missing files,
    duplicate output names)."""
    outdir_abs = outdir.resolve()
    jobs: list[Job] = []
    rejected: list[Rejected] = []
    made_by: dict[Path, Path] = {}

    def add(source: Path, output: Path, own: dict) -> None:
        key = output.resolve()
        if key in made_by:
            rejected.append(Rejected(str(source), f"duplicate output name {output.name!r} (also made from "
                                                  f"{made_by[key]}); give it another name in a manifest"))
            return
        made_by[key] = source
        jobs.append(Job(source, output, {**settings, **own}))

    for item in inputs:
        item = Path(item)
        if item.suffix.lower() == ".csv" and item.is_file():
            for source, name, own in read_manifest(item):
                add(source, outdir / (name or f"{source.stem}.wav"), own)
        elif item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                           and not p.name.startswith(".") and outdir_abs not in p.resolve().parents)
            for source in found:
                add(source, outdir / source.relative_to(item).with_suffix(".wav"), {})
        elif item.is_file():
            add(item, outdir / f"{item.stem}.wav", {})
        else:
            rejected.append(Rejected(str(item), "not found"))
    return jobs, rejected


def file_checksum(path: Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Journal:
    """The batch's JSON-lines journal in `outdir` (appended and flushed to disk line by line)."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / JOURNAL
        self.last: dict[str, dict] = {}
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                for line in self.path.read_text().splitlines():
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        continue
                    self.last[entry.get("output", "")] = entry
            self._file = self.path.open("a")
        except OSError as exc:
            raise UpmixError(f"cannot write the batch journal here: {exc.strerror or exc}", outdir) from None

    def record(self, job: Job, status: str, **extra: Any) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": status, "input": os.path.abspath(job.input),
                 "output": os.path.abspath(job.output), "settings_hash": job.settings_hash(), **extra}
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.last[entry["output"]] = entry

    def finished(self, job: Job) -> bool:
        """Whether the job's last event is a success with the same settings and its output is
        still the file that was written."""
        entry = self.last.get(os.path.abspath(job.output))
        if not entry or entry.get("status") != "done" or entry.get("settings_hash") != job.settings_hash():
            return False
        try:
            st = job.output.stat()
        except OSError:
            return False
        return st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")

    def close(self) -> None:
        self._file.close()


def _remove_leftovers(output: Path) -> None:
    """Temporary files a killed run of this job left beside its output."""
    if output.parent.is_dir():
        for p in output.parent.glob(f".{output.name}.*"):
            if p.name.endswith((".part", ".render.wav", ".tagged")):
                p.unlink(missing_ok=True)
        report = output.with_suffix(".json")
        for p in output.parent.glob(f".{report.name}.*.part"):
            p.unlink(missing_ok=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UpmixError) else f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def convert(job: Job, threads: int, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run one job in this process (`upmix.run.upmix_file`) with `threads` compute threads;
    returns the result: ``status`` done (with ``checksum``, ``size``, ``mtime_ns``, ``seconds``,
    ``realtime_factor``) or failed (with ``error``, one line)."""
    os.environ["UPMIX_THREADS"] = str(threads)
    start = time.perf_counter()
    try:
        from .master import Delivery
        from .placement import get_preset
        from .run import upmix_file

        s = job.settings
        _remove_leftovers(job.output)
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UpmixError(f"cannot create the output folder: {exc.strerror or exc}", job.output.parent) from None
        preset = s.get("preset") or "music"
        report = upmix_file(
            job.input, job.output, format=s.get("format"),
            options=get_preset(preset).options(s.get("width"), s.get("center"), s.get("ambience_front")),
            exact_downmix=bool(s.get("exact_downmix")), lfe=s.get("lfe"),
            scene_file=Path(s["scene"]) if s.get("scene") else None, device=s.get("device") or "auto",
            sample_rate=s.get("sample_rate"), bits=s.get("bits"), separator=s.get("separator") or "auto",
            preset=preset, delivery=Delivery(s.get("loudness"), s.get("true_peak")), progress=progress)
        st = job.output.stat()
        return {"status": "done", "checksum": file_checksum(job.output), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "seconds": round(time.perf_counter() - start, 3),
                "realtime_factor": report.get("realtime_factor"), "warnings": report.get("warnings", [])}
    except Exception as exc:  # noqa: BLE001 - one bad file is reported and the batch goes on
        return {"status": "failed", "error": _one_line(exc), "seconds": round(time.perf_counter() - start, 3)}


class BatchProgress(Protocol):
    """What `run_batch` reports as it goes (the CLI draws it with rich)."""

    def started(self, index: int, job: Job) -> None: ...

    def advanced(self, index: int, done: int, total: int) -> None: ...

    def finished(self, index: int, job: Job, result: dict) -> None: ...


class _Throttled:
    """A progress callback for a worker that sends at most a few updates a second to `sink`."""

    def __init__(self, index: int, sink: Any, interval: float = 0.25) -> None:
        self.index, self.sink, self.interval, self._last = index, sink, interval, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval or done >= total:
            self._last = now
            try:
                self.sink.put_nowait((self.index, done, total))
            except Exception:  # noqa: BLE001 - progress is best effort; a full or closed queue is ignored
                pass


def _convert_with_progress(index: int, job: Job, threads: int, sink: Any) -> dict:
    return convert(job, threads, _Throttled(index, sink) if sink is not None else None)


def _drain(sink: Any, empty: type[Exception]) -> list[tuple[int, int, int]]:
    """Every progress update waiting in a queue (`empty`: the exception its get_nowait raises)."""
    out = []
    while True:
        try:
            out.append(sink.get_nowait())
        except empty:
            return out


class LocalEngine:
    """A process pool (spawned workers: forking after torch is imported can deadlock)."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._manager = context.Manager()
        self.sink = self._manager.Queue()
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        self._futures: dict = {}

    def submit(self, index: int, job: Job, threads: int) -> None:
        self._futures[self._pool.submit(_convert_with_progress, index, job, threads, self.sink)] = index

    def poll(self, timeout: float) -> list[tuple[int, dict]]:
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for f in done:
            index = self._futures.pop(f)
            try:
                out.append((index, f.result()))
            except Exception as exc:  # noqa: BLE001 - a worker that died (e.g. out of memory)
                out.append((index, {"status": "failed", "error": f"worker failed: {_one_line(exc)}"}))
        return out

    def updates(self) -> list[tuple[int, int, int]]:
        return _drain(self.sink, queue.Empty)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()


class RayEngine:
    """The same tasks on a Ray cluster (`address`: HOST:PORT of a running one; None: the one
    this process is connected to, else a local instance)."""

    name = "ray"

    def __init__(self, address: str | None) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise UpmixError("--engine ray needs Ray: pip install 'upmix[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False, include_dashboard=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UpmixError(f"cannot reach the Ray cluster at {address or 'local'}: {_one_line(exc)}") from None
        self.sink = Queue(maxsize=10000)
        self._task = ray.remote(num_cpus=1, max_retries=0)(_convert_with_progress)
        self._refs: dict = {}

    def submit(self, index: int, job: Job, threads: int) -> None:
        self._refs[self._task.options(num_cpus=threads).remote(index, job, threads, self.sink)] = index

    def poll(self, timeout: float) -> list[tuple[int, dict]]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            index = self._refs.pop(ref)
            try:
                out.append((index, self._ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a task that died on its node
                out.append((index, {"status": "failed", "error": f"Ray task failed: {_one_line(exc)}"}))
        return out

    def updates(self) -> list[tuple[int, int, int]]:
        from ray.util.queue import Empty

        return _drain(self.sink, Empty)

    def close(self) -> None:
        self.sink.shutdown()


@dataclass
class BatchSummary:
    """What a batch did: jobs `done`, `skipped` (finished before) and `failed` (input, error)."""

    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def run_batch(jobs: list[Job], outdir: Path, *, engine: str = "local", workers: int = 1,
              address: str | None = None, rejected: Iterable[Rejected] = (),
              progress: BatchProgress | None = None) -> BatchSummary:
    """Convert the jobs not finished before (per the journal in `outdir`) on `workers` local
    processes or on Ray; returns the summary. Failed jobs are journalled and reported; the
    batch goes on."""
    if workers < 1:
        raise UpmixError(f"--jobs must be at least 1, not {workers}")
    if engine not in ("local", "ray"):
        raise UpmixError(f"--engine must be local or ray, not {engine!r}")
    start = time.perf_counter()
    journal = Journal(outdir)
    summary = BatchSummary(failed=[(r.input, r.error) for r in rejected])
    todo = []
    for index, job in enumerate(jobs):
        if journal.finished(job):
            summary.skipped.append(job)
        else:
            todo.append(index)
    if not todo:
        journal.close()
        summary.seconds = time.perf_counter() - start
        return summary
    threads = max(1, (os.cpu_count() or 1) // workers)
    runner = LocalEngine(min(workers, len(todo))) if engine == "local" else RayEngine(address)
    try:
        waiting = list(todo)
        running = 0
        limit = min(workers, len(todo))
        while waiting or running:
            while waiting and running < limit:
                index = waiting.pop(0)
                journal.record(jobs[index], "started", engine=runner.name)
                if progress:
                    progress.started(index, jobs[index])
                runner.submit(index, jobs[index], threads)
                running += 1
            for index, result in runner.poll(0.2):
                running -= 1
                job = jobs[index]
                journal.record(job, result["status"], **{k: v for k, v in result.items() if k != "status"})
                if result["status"] == "done":
                    summary.done.append(job)
                else:
                    summary.failed.append((str(job.input), result["error"]))
                if progress:
                    progress.finished(index, job, result)
            if progress:
                for index, done, total in runner.updates():
                    progress.advanced(index, done, total)
    finally:
        runner.close()
        journal.close()
    summary.seconds = time.perf_counter() - start
    return summary

