"""Hardening of the command line (issue 25): file names that look like rich markup are printed as
they are, SIGTERM cleans up like Ctrl-C, a damaged disk cache is rebuilt, --walk needs a scene."""

import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import run_cli
from test_cli import assert_clean_failure
from upmix.cache import cache_dir, cached_arrays
from upmix.io import read, write

RATE = 48000
MARKUP_NAMES = ["a[/]b.wav", "[b]bold.wav", ":x:.wav"]  # a closing tag, a style tag, an emoji code


def _named(folder, name):
    """`folder / name`, with the folder `a[` that ``a[/]b.wav`` lives in made."""
    path = folder / name
    path.parent.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_info_prints_a_name_with_markup_as_it_is(tmp_path, rng, name):
    src = _named(tmp_path, name)
    write(src, rng.standard_normal((2, RATE // 10)) * 0.1, RATE)
    proc = run_cli("info", src)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(src)
    assert "FL" in proc.stdout and "FR" in proc.stdout


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_run_prints_names_with_markup_as_they_are(tmp_path, rng, name):
    src = _named(tmp_path, name)
    out = src.with_name("out" + src.name)
    write(src, rng.standard_normal((2, RATE // 10)) * 0.1, RATE)
    proc = run_cli("run", src, "-o", out, "-f", "5.1")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (" in proc.stdout and f" and {out.with_suffix('.json')}; " in proc.stdout
    assert out.exists()


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_an_error_about_a_name_with_markup_is_one_line_naming_it(tmp_path, name):
    src = _named(tmp_path, name)
    src.write_bytes(b"not audio")
    assert_clean_failure(run_cli("info", src), str(src))
    out = _named(tmp_path, "out" + name)
    assert_clean_failure(run_cli("run", tmp_path / name.replace(".wav", "-missing.wav"), "-o", out),
                         name.replace(".wav", "-missing.wav"))
    assert not out.exists()


def test_batch_lines_print_names_with_markup_as_they_are(tmp_path):
    missing = _named(tmp_path, "a[/]b.wav")
    proc = run_cli("batch", missing, tmp_path / "[b]bold.wav", "-o", tmp_path / ":x:out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{missing}: not found" in proc.stderr and f"{tmp_path / '[b]bold.wav'}: not found" in proc.stderr
    assert ":x:out" in proc.stderr  # in the summary table's title, wrapped to the width


def test_walk_without_a_scene_is_an_error(tmp_path, rng):
    src = tmp_path / "in.wav"
    write(src, rng.standard_normal((2, RATE // 10)) * 0.1, RATE)
    walk = tmp_path / "walk.yaml"
    walk.write_text("- {time: 0, position: {x: 0, y: 0}}\n")
    out = tmp_path / "out.wav"
    assert_clean_failure(run_cli("run", src, "-o", out, "--walk", walk), str(walk), "--scene")
    assert not out.exists()


# SIGTERM: the jobs' cleanup runs as on Ctrl-C

@pytest.fixture(scope="module")
def long_input(tmp_path_factory):
    """60 s of stereo noise: several seconds of work, so a signal finds the job running."""
    path = tmp_path_factory.mktemp("long") / "in.wav"
    write(path, np.random.default_rng(5).standard_normal((2, 60 * RATE)).astype(np.float32) * 0.1, RATE)
    return path


def _terminated(args, ready, timeout=120.0):
    """Start `upmix args`, wait until `ready()`, send SIGTERM; returns (exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "upmix", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
            assert time.monotonic() < deadline, "never got ready"
            time.sleep(0.02)
        time.sleep(0.2)  # well inside the streaming loop
        assert proc.poll() is None, "finished before the signal"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def _has(folder, start="", end=""):
    return lambda: folder.is_dir() and any(p.name.startswith(start) and p.name.endswith(end)
                                           for p in folder.iterdir())


def _assert_terminated(rc, stderr):
    assert rc == 128 + signal.SIGTERM, stderr
    assert "upmix: terminated" in stderr and "Traceback" not in stderr


@pytest.mark.slow
def test_sigterm_during_run_leaves_nothing(tmp_path, long_input):
    rc, stderr = _terminated(["run", long_input, "-o", tmp_path / "out.wav", "-q"], _has(tmp_path, end=".part"))
    _assert_terminated(rc, stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["render", "deliver"])
def test_sigterm_during_a_delivered_run_leaves_nothing(tmp_path, long_input, phase):
    """In the first pass (to the hidden float intermediate) and the second (intermediate to output)."""
    ready = _has(tmp_path, "..out.wav.", ".part") if phase == "render" else _has(tmp_path, ".out.wav.", ".part")
    rc, stderr = _terminated(["run", long_input, "-o", tmp_path / "out.wav", "--loudness", "-23", "-q"], ready)
    _assert_terminated(rc, stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("existed", [False, True])
def test_sigterm_during_separate_leaves_nothing(tmp_path, long_input, existed):
    stems = tmp_path / "stems"
    if existed:
        stems.mkdir()
    rc, stderr = _terminated(["separate", long_input, "-o", stems, "--model", "spatial", "-q"],
                             _has(stems, end=".part"))
    _assert_terminated(rc, stderr)
    assert list(tmp_path.iterdir()) == ([stems] if existed else [])
    assert not existed or list(stems.iterdir()) == []


# a damaged disk cache is rebuilt

def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _nan(path):
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(path, **{name: np.full_like(a, np.nan) if a.dtype.kind == "f" else a for name, a in arrays.items()})


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def binauralized(tmp_path_factory):
    """A short stereo file binauralized with an empty cache: (input, output samples, the cache entry)."""
    folder = tmp_path_factory.mktemp("cache")
    src = folder / "in.wav"
    write(src, np.random.default_rng(7).standard_normal((2, RATE // 10)) * 0.1, RATE)
    proc = run_cli("binauralize", src, "-o", folder / "fresh.wav", "-q", env={"UPMIX_CACHE": str(folder / "c")})
    assert proc.returncode == 0, proc.stderr
    entries = list((folder / "c").iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("hrtf-")
    return src, read(folder / "fresh.wav")[0], entries[0]


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_truncate, _nan, _flip], ids=["truncated", "nan", "flipped-byte"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, binauralized, damage):
    src, fresh, entry = binauralized
    cache = tmp_path / "c"
    cache.mkdir()
    shutil.copy(entry, cache / entry.name)
    damage(cache / entry.name)
    out = tmp_path / "out.wav"
    proc = run_cli("binauralize", src, "-o", out, "-q", env={"UPMIX_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(read(out)[0], fresh)
    assert [p.name for p in cache.iterdir()] == [entry.name]
    with np.load(cache / entry.name) as rebuilt, np.load(entry) as good:
        assert rebuilt.files == good.files
        for name in good.files:
            np.testing.assert_array_equal(rebuilt[name], good[name])


def test_cache_entries_are_checked_and_written_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("UPMIX_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(4.0), "b": np.ones((2, 2), np.float32)}

    first = cached_arrays("test", b"k", compute, ("a", "b"))
    (entry,) = cache_dir().iterdir()
    assert cached_arrays("test", b"k", compute, ("a", "b"))["a"].tolist() == first["a"].tolist()
    assert len(calls) == 1
    np.savez(entry, a=np.arange(4.0))  # an array missing
    cached_arrays("test", b"k", compute, ("a", "b"))
    assert len(calls) == 2 and list(tmp_path.iterdir()) == [entry]

    def failing_savez(*args, **kwargs):
        raise OSError(28, "No space left on device")

    entry.unlink()
    monkeypatch.setattr(np, "savez", failing_savez)
    assert cached_arrays("test", b"k", compute, ("a", "b"))["b"].shape == (2, 2)
    assert list(tmp_path.iterdir()) == []  # no temporary file left
