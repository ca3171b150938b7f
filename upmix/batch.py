"""Many files: the job list, the resumable journal, and local or Ray workers (`upmix batch`).

- **Jobs** come from files, folders (searched recursively for `AUDIO_EXTENSIONS`; the output
  keeps the file's path below the folder) and CSV manifests (column ``input``, optional
  ``output`` name and per-file options in columns named as the fields of
  `upmix.jobs.options.RunOptions`; paths relative to the manifest). Two jobs that would write
  the same output are an error for the second.
- **Journal**: ``OUTDIR/upmix-journal.jsonl``, one JSON line per event (``started``, ``done``
  with the output's SHA-256, size and timing, ``failed`` with the reason). A rerun skips a job
  whose last event is ``done`` with the same settings hash (settings and the input's size and
  modification time) while its output is still there unchanged; everything else is redone.
- **Outputs** are written atomically by the job (`upmix.io.AudioWriter`: a temporary file in the
  same folder, then a rename), so a killed batch leaves no half file under a final name; the
  temporary files a killed job left are removed when it runs again.
- **Engines**: ``local`` (a process pool of `jobs` workers, nothing else needed) or ``ray`` (the
  same per-file tasks on a Ray cluster, the optional extra ``upmix[ray]``). Both run
  `convert` with `JOB_THREADS` compute threads whatever the number of workers, so they write
  byte-identical files. Workers die with the
  batch (Linux: PR_SET_PDEATHSIG), and an interrupted batch (Ctrl-C, SIGTERM) kills its running
  jobs at once and removes their temporary files.
- **Output folder**: every output and its JSON report must resolve inside it and onto no input of
  the batch (nor the journal or the lock); a job that would is rejected. A lock file,
  ``OUTDIR/upmix-batch.lock`` (an `fcntl.flock` holding the batch's PID, released by the OS when
  the batch dies), lets one batch at a time write to a folder; a second one stops with an error.
- **Input checksums**: the journal also keeps each input's SHA-256, so an input rewritten with
  the same size and modification time is redone. A rerun hashes every input whose other checks
  pass, i.e. reads it once (a 10-minute 48 kHz stereo 24-bit WAV, 173 MB: 0.23 s here, about
  750 MB/s from the page cache; bounded by disk speed otherwise): small beside converting it,
  but a rerun of a finished batch is no longer instant.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import hashlib
import json
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Protocol

from .errors import UpmixError
from .jobs.options import RunOptions
from .jobs.output import leftovers, report_path

JOURNAL = "upmix-journal.jsonl"
"""The journal's file name in the output folder."""

LOCK = "upmix-batch.lock"
"""The output folder's lock file (holds the running batch's PID; removed when it ends)."""

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".w64", ".rf64", ".caf",
                              ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".wma", ".mka"})
"""File extensions a folder is searched for (case-insensitive)."""

JOB_THREADS = 1
"""Torch compute threads of every batch job, whatever the number of workers: torch's element-wise
kernels round the last elements of each thread's share differently, so a file converted with 1 and
with 2 threads differs by 1 LSB; one fixed count makes ``--jobs 1`` and ``--jobs N`` (and Ray)
write the same bytes. A batch runs its files in parallel instead (``--jobs``, one per core)."""

@dataclass(frozen=True)
class Job:
    """One file to convert: input, output path and options."""

    input: Path
    output: Path
    options: RunOptions = RunOptions()

    def settings_hash(self) -> str:
        """SHA-256 (16 hex digits) of the options and the input's size and modification time."""
        try:
            st = self.input.stat()
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = None
        key = json.dumps({"settings": self.options.record(), "input": stamp}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @functools.cached_property
    def input_checksum(self) -> str | None:
        """SHA-256 of the input file (read once per job; None if it cannot be read)."""
        try:
            return file_checksum(self.input)
        except OSError:
            return None


@dataclass(frozen=True)
class Rejected:
    """An input that makes no job, and why."""

    input: str
    error: str


def read_manifest(path: Path, defaults: RunOptions) -> list[tuple[Path, str | None, RunOptions]]:
    """Rows of a CSV manifest: (input, output name or None, options: `defaults` with the row's
    own); relative paths are taken from the manifest's folder. Unknown columns and bad values are
    errors naming the row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "input" not in columns:
                raise UpmixError("a manifest needs an 'input' column", path)
            known = [f.name for f in fields(RunOptions)]
            unknown = [c for c in columns if c not in known and c not in ("input", "output")]
            if unknown:
                raise UpmixError(f"unknown manifest column {unknown[0]!r}; known: input, output, "
                                 f"{', '.join(known)}", path)
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "") for k, v in row.items() if k is not None}
                if not row.get("input", "").strip():
                    raise UpmixError(f"row {line}: empty input", path)
                try:
                    options = defaults.with_strings({k: v for k, v in row.items() if k in known}, path.parent)
                except UpmixError as exc:
                    raise UpmixError(f"row {line}: {exc}") from None
                name = row.get("output", "").strip() or None
                rows.append((path.parent / row["input"].strip(), name, options))
            return rows
    except UpmixError as exc:
        if exc.path is None:
            raise UpmixError(str(exc), path) from None
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UpmixError(f"cannot read the manifest: {exc}", path) from None


def collect_jobs(inputs: Iterable[Path], outdir: Path,
                 options: RunOptions = RunOptions()) -> tuple[list[Job], list[Rejected]]:
    """The jobs for files, folders and CSV manifests, with `options` as every job's options
    (a manifest row's own win); and the inputs that make no job (missing files,
    duplicate output names, an output or its report outside `outdir` or onto an input of the batch)."""
    outdir_abs = outdir.resolve()
    planned: list[tuple[Path, Path, RunOptions]] = []
    manifests: list[Path] = []
    rejected: list[Rejected] = []
    for item in inputs:
        item = Path(item)
        if item.suffix.lower() == ".csv" and item.is_file():
            manifests.append(item)
            planned += [(source, outdir / (name or f"{source.stem}.wav"), own)
                        for source, name, own in read_manifest(item, options)]
        elif item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                           and not p.name.startswith(".") and outdir_abs not in p.resolve().parents)
            planned += [(source, outdir / source.relative_to(item).with_suffix(".wav"), options) for source in found]
        elif item.is_file():
            planned.append((item, outdir / f"{item.stem}.wav", options))
        else:
            rejected.append(Rejected(str(item), "not found"))
    sources = [source for source, _, _ in planned] + manifests
    taken = _Inputs(sources)
    jobs: list[Job] = []
    made_by: dict[Path, Path] = {}
    for source, output, own in planned:
        problem = _output_problem(output, outdir, outdir_abs, taken)
        if problem is None:
            keys = (output.resolve(), report_path(output).resolve())
            first = next((made_by[k] for k in keys if k in made_by), None)
            if first is not None:
                problem = (f"duplicate output name {output.name!r} (also made from {first}); "
                           "give it another name in a manifest")
        if problem is not None:
            rejected.append(Rejected(str(source), problem))
            continue
        made_by.update(dict.fromkeys(keys, source))
        jobs.append(Job(source, output, own))
    return jobs, rejected


class _Inputs:
    """The files a batch reads, by resolved path and by file identity (device, inode: the same
    test as `os.path.samefile`, which also catches hard links and case-insensitive names)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths: dict[Path, Path] = {}
        self.ids: dict[tuple[int, int], Path] = {}
        for p in paths:
            self.paths.setdefault(p.resolve(), p)
            if (key := _file_id(p)) is not None:
                self.ids.setdefault(key, p)

    def find(self, path: Path) -> Path | None:
        """The input that `path` (resolved) is, or None."""
        if path in self.paths:
            return self.paths[path]
        key = _file_id(path)
        return None if key is None else self.ids.get(key)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _output_problem(output: Path, outdir: Path, outdir_abs: Path, inputs: _Inputs) -> str | None:
    """Why a job may not write `output` and its JSON report, or None: each must resolve inside
    the output folder, not onto the batch's own journal or lock, and not onto an input."""
    if output.name in ("", ".", ".."):
        return f"output {str(output)!r} is not a file name"
    for path in (output, report_path(output)):
        at = path.resolve()
        if outdir_abs not in at.parents:
            return f"output {str(path)!r} is outside the output folder {str(outdir)!r}"
        if at.parent == outdir_abs and at.name in (JOURNAL, LOCK):
            return f"output {str(path)!r} would overwrite the batch's {at.name}"
        if (source := inputs.find(at)) is not None:
            return f"output {str(path)!r} would overwrite {str(source)!r}, an input of this batch"
    return None


def file_checksum(path: Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _lock_folder(outdir: Path) -> IO[str]:
    """Take `outdir`'s batch lock (an exclusive `fcntl.flock` on `LOCK`, which is given this
    process's PID) for as long as the returned file stays open. The OS drops the lock when its
    holder dies, so a lock file a killed batch left does not block; a live holder is an UpmixError
    naming its PID."""
    path = outdir / LOCK
    while True:
        f = path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise UpmixError(f"another upmix batch (PID {holder}) is writing to this folder", outdir) from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        held = os.fstat(f.fileno())
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        f.close()  # the holder removed this file as it finished: lock the new one
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _entry(line: bytes) -> dict | None:
    """A journal line as an event, or None when it is not one (cut short by a kill, not UTF-8,
    not a JSON object, or an ``output`` or ``status`` that is not a string)."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("output"), str) \
            or not isinstance(entry.get("status"), str):
        return None
    return entry


class Journal:
    """The batch's JSON-lines journal in `outdir` (appended and flushed to disk line by line),
    and the folder's lock, held until `close`: one batch at a time writes to a folder."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / JOURNAL
        self.last: dict[str, dict] = {}
        self.warnings: list[str] = []
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_folder(outdir)
        except OSError as exc:
            raise UpmixError(f"cannot write the batch journal here: {exc.strerror or exc}", outdir) from None
        try:
            data = self.path.read_bytes() if self.path.is_file() else b""
            damaged = 0
            for line in data.splitlines():
                if line.strip():
                    entry = _entry(line)
                    if entry is None:
                        damaged += 1
                    else:
                        self.last[entry["output"]] = entry
            if damaged:
                self.warnings.append(f"{self.path}: skipped {damaged} damaged line{'s' * (damaged > 1)}")
            self._file = self.path.open("a", encoding="utf-8")
            if data and not data.endswith(b"\n"):
                self._file.write("\n")  # a line cut short stays one damaged line, not glued to the next
        except OSError as exc:
            self._unlock()
            raise UpmixError(f"cannot write the batch journal here: {exc.strerror or exc}", outdir) from None

    def record(self, job: Job, status: str, **extra: Any) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": status, "input": os.path.abspath(job.input),
                 "output": os.path.abspath(job.output), "settings_hash": job.settings_hash(),
                 "input_checksum": job.input_checksum, **extra}
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.last[entry["output"]] = entry

    def finished(self, job: Job) -> bool:
        """Whether the job's last event is a success with the same settings and input (size,
        modification time, then SHA-256) and its output is still the file that was written."""
        entry = self.last.get(os.path.abspath(job.output))
        if not entry or entry.get("status") != "done" or entry.get("settings_hash") != job.settings_hash():
            return False
        try:
            st = job.output.stat()
        except OSError:
            return False
        return (st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")
                and entry.get("input_checksum") == job.input_checksum)

    def close(self) -> None:
        self._file.close()
        self._unlock()

    def _unlock(self) -> None:
        (self.path.parent / LOCK).unlink(missing_ok=True)  # while still holding it; see _lock_folder
        self._lock.close()


def _remove_leftovers(output: Path) -> None:
    for p in leftovers(output):
        p.unlink(missing_ok=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UpmixError) else f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def convert(job: Job, threads: int, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run one job in this process (`upmix.jobs.upmix.upmix_file`) with `threads` compute threads;
    returns the result: ``status`` done (with ``checksum``, ``size``, ``mtime_ns``, ``seconds``,
    ``realtime_factor``) or failed (with ``error``, one line)."""
    os.environ["UPMIX_THREADS"] = str(threads)
    start = time.perf_counter()
    try:
        from .jobs.upmix import upmix_file

        _remove_leftovers(job.output)
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UpmixError(f"cannot create the output folder: {exc.strerror or exc}", job.output.parent) from None
        report = upmix_file(job.input, job.output, job.options, progress=progress)
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


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends a process when its parent dies (Linux)."""


def _die_with_parent(parent: int) -> None:
    """Initializer of the pool's workers and the progress queue's manager: on Linux, have the
    kernel SIGKILL this process when the batch that started it dies, however it dies, so no
    worker goes on converting (and holding memory) for a batch that is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the batch died before that took effect
        os._exit(1)


class LocalEngine:
    """A process pool (spawned workers: forking after torch is imported can deadlock) whose
    workers die with the batch."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        import multiprocessing
        from multiprocessing.managers import SyncManager

        context = multiprocessing.get_context("spawn")
        self._manager = SyncManager(ctx=context)
        self._manager.start(_die_with_parent, (os.getpid(),))
        self.sink = self._manager.Queue()
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent,
                                         initargs=(os.getpid(),))
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

    def close(self, abort: bool = False) -> None:
        """Shut the pool and the manager down; `abort`: kill the running workers first, and
        return once they are gone (their jobs' temporary files are left to `_remove_leftovers`)."""
        if abort:
            workers = list((self._pool._processes or {}).values())  # no public handle before Python 3.14
            for worker in workers:
                worker.kill()
            for worker in workers:
                worker.join()
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
            raise UpmixError("{option} ray needs Ray: pip install 'upmix[ray]'", option="engine") from None
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

    def close(self, abort: bool = False) -> None:
        """Shut the progress queue down; `abort`: cancel the running tasks first (killing them)."""
        if abort:
            for ref in self._refs:
                self._ray.cancel(ref, force=True)
        self.sink.shutdown()


@dataclass
class BatchSummary:
    """What a batch did: jobs `done`, `skipped` (finished before) and `failed` (input, error)."""

    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
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
        raise UpmixError(f"{{option}} must be at least 1, not {workers}", option="workers")
    if engine not in ("local", "ray"):
        raise UpmixError(f"{{option}} must be local or ray, not {engine!r}", option="engine")
    start = time.perf_counter()
    journal = Journal(outdir)
    summary = BatchSummary(failed=[(r.input, r.error) for r in rejected], warnings=journal.warnings)
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
    threads = JOB_THREADS
    runner = LocalEngine(min(workers, len(todo))) if engine == "local" else RayEngine(address)
    running: set[int] = set()
    aborted = True
    try:
        waiting = list(todo)
        limit = min(workers, len(todo))
        while waiting or running:
            while waiting and len(running) < limit:
                index = waiting.pop(0)
                journal.record(jobs[index], "started", engine=runner.name)
                if progress:
                    progress.started(index, jobs[index])
                runner.submit(index, jobs[index], threads)
                running.add(index)
            for index, result in runner.poll(0.2):
                running.discard(index)
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
        aborted = False
    finally:  # interrupted (Ctrl-C, or SIGTERM made KeyboardInterrupt by the CLI): stop the running jobs now
        runner.close(abort=aborted)
        if aborted:
            for index in running:
                _remove_leftovers(jobs[index].output)
        journal.close()
    summary.seconds = time.perf_counter() - start
    return summary

