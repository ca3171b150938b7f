"""Hardening of input and output (issue 25): very short inputs, impossible sample rates, files that
are not regular files, messages that stay one line, and full disks."""

import ctypes
import errno
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from test_cli import assert_clean_failure
from upmix.errors import UpmixError
from upmix.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, probe, read, wav_header, write, writing

RATE = 48000
SHORT = [1, 10, 100, 1000]


def cli(*args, timeout=60, **kw):
    """`run_cli` with a time limit, so that a command that blocks fails instead of hanging."""
    return subprocess.run([sys.executable, "-m", "upmix", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def short_file(folder, frames, channels, rng):
    path = folder / f"{'mono' if channels == 1 else 'stereo'}_{frames}.wav"
    write(path, 0.1 * rng.standard_normal((channels, frames)), RATE, "FLOAT")
    return path


# ------------------------------------------------------------------------------------------------
# item 6: inputs of 1000 samples or fewer


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", SHORT + [65537])  # 65537: a last block of one sample after a full one
def test_run_takes_short_inputs(tmp_path, rng, frames, channels):
    from upmix.jobs.options import RunOptions
    from upmix.jobs.upmix import upmix_file

    src = short_file(tmp_path, frames, channels, rng)
    out = tmp_path / "out.wav"
    report = upmix_file(src, out, RunOptions(format="5.1", bits="float"))
    assert report["frames"] == frames and probe(out).frames == frames
    assert report["input"]["treated_as"] == ("mono" if channels == 1 else "stereo")


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", SHORT)
def test_separate_mono_takes_short_inputs(tmp_path, rng, frames, channels):
    from upmix.jobs.separate import separate_file

    src = short_file(tmp_path, frames, channels, rng)
    report = separate_file(src, tmp_path / "stems", model="mono", bits="float")
    assert report["stems"]
    for stem in report["stems"]:
        assert probe(tmp_path / "stems" / stem["file"]).frames == frames
    assert report["mix_snr_db"] > 100


@pytest.mark.slow
def test_short_inputs_on_the_command_line(tmp_path, rng):
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = [short_file(inputs, n, c, rng) for n in SHORT for c in (1, 2)]
    proc = cli("batch", inputs, "-o", tmp_path / "out", "-f", "5.1", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for f in files:
        assert probe(tmp_path / "out" / f.name).frames == probe(f).frames
    proc = cli("run", files[0], "-o", tmp_path / "run.wav", "-f", "5.1", timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = cli("separate", files[0], "-o", tmp_path / "stems", "--model", "mono", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "stems" / "separation.json").read_text())["stems"]


# ------------------------------------------------------------------------------------------------
# item 8: sample rates outside MIN_SAMPLE_RATE..MAX_SAMPLE_RATE


def with_rate(path, rate):
    """A 16-bit mono WAV whose header claims `rate` (patched by hand: libsndfile would not write it)."""
    write(path, np.zeros((1, 100)), RATE, "PCM_16")
    data = bytearray(path.read_bytes())
    header = wav_header(path)
    fmt = data.index(b"fmt ") + 8
    assert header["sample_rate"] == RATE
    data[fmt + 4:fmt + 12] = struct.pack("<II", rate, rate * 2)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate", [1, 1000, 7999, 384001, 10_000_000])
def test_sample_rate_out_of_range(tmp_path, rate):
    path = with_rate(tmp_path / "odd.wav", rate)
    with pytest.raises(UpmixError, match=f"sample rate {rate} Hz is outside") as caught:
        probe(path)
    assert caught.value.path == str(path)


def test_sample_rate_limits_are_accepted(tmp_path):
    for rate in (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE):
        assert probe(with_rate(tmp_path / f"r{rate}.wav", rate)).sample_rate == rate


@pytest.mark.parametrize("rate", [0, 1, 10_000_000])
def test_sample_rate_out_of_range_on_the_command_line(tmp_path, rate):
    path = with_rate(tmp_path / "odd.wav", rate)
    assert_clean_failure(cli("info", path), str(path))
    if rate == 1:
        out = tmp_path / "out.wav"
        assert_clean_failure(cli("run", path, "-o", out), str(path))
        assert not out.exists()


# ------------------------------------------------------------------------------------------------
# item 9: FIFOs and devices


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", ["info", "run"])
def test_not_a_regular_file(tmp_path, kind, command):
    if kind == "fifo":
        path = tmp_path / "pipe.wav"
        os.mkfifo(path)
    else:
        path = "/dev/zero"
    args = [command, path] + (["-o", tmp_path / "out.wav"] if command == "run" else [])
    assert_clean_failure(cli(*args, timeout=30), str(path), "not a regular file")
    assert not (tmp_path / "out.wav").exists()


# ------------------------------------------------------------------------------------------------
# item 13: one line for damaged MP3s and unreadable files


@pytest.fixture
def mp3s(tmp_path, rng):
    good = tmp_path / "good.mp3"
    try:
        sf.write(good, 0.1 * rng.standard_normal((RATE, 2)), RATE, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip("this libsndfile cannot write MP3")
    data = good.read_bytes()
    (tmp_path / "truncated.mp3").write_bytes(data[:len(data) // 3])
    (tmp_path / "text.mp3").write_text("not audio at all\n" * 40)
    (tmp_path / "noise.mp3").write_bytes(rng.bytes(5000))
    return tmp_path


@pytest.mark.parametrize("name", ["truncated", "text", "noise"])
def test_damaged_mp3_is_one_line(mp3s, name):
    path = mp3s / f"{name}.mp3"
    assert_clean_failure(cli("info", path), str(path))
    if name == "truncated":  # decoding starts, then fails
        out = mp3s / "out.wav"
        assert_clean_failure(cli("run", path, "-o", out, "-f", "5.1"), str(path))
        assert not out.exists()


def test_good_mp3_still_reads(mp3s):
    data, rate = read(mp3s / "good.mp3")
    assert rate == RATE and data.shape[0] == 2 and data.shape[1] > RATE // 2


_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def _without_file_permission_override():
    """In the child before exec: drop root's power to read any file (capability bounding set), so
    that a mode-000 file is unreadable as it is for everybody else."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_one_line(tmp_path, rng):
    path = short_file(tmp_path, 1000, 2, rng)
    path.chmod(0)
    preexec = _without_file_permission_override if os.geteuid() == 0 else None
    try:
        check = subprocess.run([sys.executable, "-c", f"open({str(path)!r}, 'rb')"], capture_output=True,
                               preexec_fn=preexec)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop the permission to read any file here ({exc})")
    if check.returncode == 0:
        pytest.skip("mode-000 files stay readable here")
    for args in (["info", path], ["run", path, "-o", tmp_path / "out.wav"],
                 ["separate", path, "-o", tmp_path / "stems", "--model", "mono"]):
        proc = cli(*args, preexec_fn=preexec)
        assert_clean_failure(proc)
        assert proc.stderr.strip() == f"upmix: error: {path}: permission denied"
    assert not (tmp_path / "out.wav").exists() and not (tmp_path / "stems").exists()


# ------------------------------------------------------------------------------------------------
# item 15: a full disk leaves no output behind and names the file


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory):
    """Small inputs for every job that writes audio and a report."""
    from upmix.geometry import cartesian
    from upmix.render.ambisonics import encode

    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(5)
    x = 0.1 * rng.standard_normal(RATE // 4)
    write(folder / "mono.wav", x[None], RATE, "FLOAT")
    write(folder / "a.wav", x[None], RATE, "FLOAT")
    (folder / "scene.yaml").write_text("objects:\n  - {stem: a, position: {azimuth: 30, distance: 2}}\n")
    (folder / "walk.yaml").write_text("path:\n  - {time: 0, position: [0, 0, 0]}\n"
                                      "  - {time: 0.25, position: [0.5, 0, 0]}\n")
    write(folder / "5.1.wav", np.tile(x, (6, 1)), RATE, "FLOAT", 0x60F)
    write(folder / "ambix.wav", (encode(1, cartesian(110, 0)[None])[0][:, None] * x).astype(np.float32),
                RATE, "FLOAT", 0)
    return folder


def _jobs():
    from upmix.jobs.binauralize import binauralize
    from upmix.jobs.options import RunOptions
    from upmix.jobs.render import render_ambix, render_scene
    from upmix.jobs.separate import separate_file
    from upmix.jobs.upmix import upmix_file

    return {
        "run": lambda i, out: upmix_file(i / "mono.wav", out / "x.wav", RunOptions(format="5.1", bits="float")),
        "run-delivered": lambda i, out: upmix_file(i / "mono.wav", out / "x.wav",
                                                   RunOptions(format="5.1", loudness=-23.0)),
        "render": lambda i, out: render_scene(i / "scene.yaml", out / "x.wav", stems_dir=i, format="5.1"),
        "walk": lambda i, out: render_scene(i / "scene.yaml", out / "x.wav", stems_dir=i, format="5.1",
                                            walk=i / "walk.yaml", require_path=True),
        "binauralize": lambda i, out: binauralize(i / "5.1.wav", out / "x.wav"),
        "separate": lambda i, out: separate_file(i / "mono.wav", out / "stems", model="mono"),
        "ambix": lambda i, out: render_ambix(i / "ambix.wav", out / "x.wav", format="5.1"),
    }


JOBS = list(_jobs())


def _disk_full(*args):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), *args)


@pytest.mark.parametrize("job", JOBS)
def test_full_disk_while_writing_the_report(tmp_path, job_inputs, job, monkeypatch):
    write_text = pathlib.Path.write_text

    def failing(self, *args, **kw):
        if ".json." in self.name and self.name.endswith(".part"):
            raise _disk_full()
        return write_text(self, *args, **kw)

    monkeypatch.setattr(pathlib.Path, "write_text", failing)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UpmixError, match="No space left on device") as caught:
        _jobs()[job](job_inputs, out)
    report = "separation.json" if job == "separate" else "x.json"
    assert caught.value.path.endswith(report)
    assert sorted(out.iterdir()) == []


class _FullFile:
    """A file open for writing on a disk that fills after `room` bytes."""

    def __init__(self, file, room):
        self._file, self._room = file, room

    def write(self, data):
        if len(data) > self._room:
            raise _disk_full()
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.mark.parametrize("job", JOBS)
def test_full_disk_while_writing_the_audio(tmp_path, job_inputs, job, monkeypatch):
    import builtins

    def opening(file, mode="r", *args, **kw):
        f = builtins.open(file, mode, *args, **kw)
        return _FullFile(f, 20000) if mode == "wb" else f

    monkeypatch.setattr(writing, "open", opening, raising=False)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UpmixError, match="cannot write it: No space left on device") as caught:
        _jobs()[job](job_inputs, out)
    assert pathlib.Path(caught.value.path).parent in (out, out / "stems")
    assert sorted(out.iterdir()) == []


def test_a_real_full_disk(tmp_path, job_inputs):
    """A 64 KiB tmpfs (only where this user may mount one) holds no 5.1 output of 0.25 s."""
    from upmix.jobs.options import RunOptions
    from upmix.jobs.upmix import upmix_file

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with pytest.raises(UpmixError, match="No space left on device") as caught:
            upmix_file(job_inputs / "mono.wav", disk / "x.wav", RunOptions(format="5.1", bits="float"))
        assert caught.value.path == str(disk / "x.wav")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)
