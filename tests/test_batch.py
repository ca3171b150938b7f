"""`upmix batch`: folders and manifests, the journal and resuming, atomic outputs, bad files, Ray."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from upmix.batch import JOURNAL, Job, collect_jobs, file_checksum
from upmix.io import write
from upmix.jobs.options import RunOptions

RATE = 44100


def _music(rng, seconds: float, channels: int = 2) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    tone = 0.2 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
    x = np.stack([tone * g for g in (1.0, 0.5)[:channels]]) + 0.05 * rng.standard_normal((channels, n))
    return x.astype(np.float32)


def _folder(path: Path, rng, count: int, seconds: float = 0.5) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write(path / f"take{i:02d}.wav", _music(rng, seconds, 1 + i % 2), RATE)
    return path


def _journal(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / JOURNAL).read_text().splitlines()]


def _checksums(outdir: Path) -> dict[str, str]:
    return {str(p.relative_to(outdir)): file_checksum(p) for p in sorted(outdir.rglob("*.wav"))}


def test_a_folder_of_twenty_files_and_a_rerun_that_does_no_work(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 20)
    (src / "notes.txt").write_text("not an audio extension: ignored")
    out = tmp_path / "out"
    r = run_cli("batch", src, "-o", out, "--format", "5.1", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*.wav"))) == 20 and len(list(out.glob("*.json"))) == 20
    assert r.stderr.count(" -> ") == 20  # a line per file off a terminal (a live display on one)
    done = [e for e in _journal(out) if e["status"] == "done"]
    assert len(done) == 20
    assert all(file_checksum(Path(e["output"])) == e["checksum"] for e in done)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    r = run_cli("batch", src, "-o", out, "--format", "5.1", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "converted" in r.stderr and len(_journal(out)) == 40  # nothing started the second time
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.wav")} == stamps
    # other settings, a deleted output, a changed input: redone; the rest still skipped
    (out / "take03.wav").unlink()
    write(src / "take04.wav", _music(rng, 0.4), RATE)
    r = run_cli("batch", src, "-o", out, "--format", "5.1", "--jobs", "2", "-q")
    assert r.returncode == 0, r.stderr
    started = [Path(e["input"]).name for e in _journal(out)[40:] if e["status"] == "started"]
    assert sorted(started) == ["take03.wav", "take04.wav"]
    r = run_cli("batch", src / "take00.wav", "-o", out, "--format", "7.1.4", "-q")
    assert r.returncode == 0, r.stderr
    assert _journal(out)[-1]["status"] == "done" and len(_journal(out)) == 40 + 4 + 2


def _bad_inputs(folder: Path, rng) -> dict[str, str]:
    """Broken files with what the report must say about each."""
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "truncated.wav", _music(rng, 1.0), RATE)
    data = (folder / "truncated.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[:len(data) // 2])
    write(folder / "empty.wav", np.zeros((2, 0), np.float32), RATE)
    nans = _music(rng, 0.5)
    nans[:, 100:200] = np.nan
    write(folder / "nans.wav", nans, RATE, "FLOAT")
    (folder / "notaudio.flac").write_text("this is a text file with an audio extension\n" * 20)
    return {"truncated.wav": "truncated WAV", "empty.wav": "is empty", "nans.wav": "NaN",
            "notaudio.flac": "not a readable audio file"}


def test_bad_files_are_reported_and_the_others_converted(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 3)
    expected = _bad_inputs(src, rng)
    out = tmp_path / "out"
    out.mkdir()
    (out / "blocker").write_text("a file where a folder should be")
    manifest = tmp_path / "list.csv"
    manifest.write_text("input,output,format\n"
                        "in/take00.wav,dup.wav,5.1\n"
                        "in/take01.wav,dup.wav,5.1\n"  # the same output name again
                        "in/take02.wav,blocker/x.wav,5.1\n")
    r = run_cli("batch", src, manifest, "-o", out, "-f", "5.1", "-q")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    failed = [line for line in r.stderr.splitlines() if line.startswith("upmix: failed:")]
    assert len(failed) == 6, r.stderr
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in failed), (name, r.stderr)
    assert any("take01.wav" in line and "duplicate output name 'dup.wav'" in line for line in failed)
    assert any("take02.wav" in line and "cannot create the output folder" in line for line in failed)
    converted = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert converted == ["dup.wav", "take00.wav", "take01.wav", "take02.wav"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left
    journal = _journal(out)
    assert sum(e["status"] == "failed" for e in journal) == 5  # the duplicate never became a job
    assert sum(e["status"] == "done" for e in journal) == 4


def test_an_unusable_output_folder_is_one_clear_error(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    r = run_cli("batch", src, "-o", blocker / "out")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the batch journal" in lines[0] and "Traceback" not in r.stderr


def test_manifest_settings_and_errors(tmp_path, rng):
    _folder(tmp_path / "in", rng, 2, seconds=1.0)
    scene = tmp_path / "duo.yaml"
    scene.write_text("objects:\n  - {stem: a, position: {azimuth: 40, distance: 3}}\n"
                     "  - {stem: b, position: {azimuth: -40, distance: 3}}\n")
    manifest = tmp_path / "m.csv"
    manifest.write_text("input,output,scene,format,loudness,true_peak\n"
                        "in/take00.wav,a/first.wav,duo.yaml,5.1,-23,-1\n"
                        "in/take01.wav,second.wav,,7.1.4,,\n")
    out = tmp_path / "out"
    r = run_cli("batch", manifest, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    first = json.loads((out / "a" / "first.json").read_text())
    assert first["format"] == "0+5+0" and first["settings"]["scene"].endswith("duo.yaml")
    assert first["delivery"]["loudness_target_lufs"] == -23.0
    assert first["delivery"]["after"]["true_peak_dbtp"] <= -0.95
    assert json.loads((out / "second.json").read_text())["format"] == "4+7+0"
    bad = tmp_path / "bad.csv"
    bad.write_text("input,colour\nin/take00.wav,blue\n")
    r = run_cli("batch", bad, "-o", out)
    assert r.returncode == 2 and "unknown manifest column 'colour'" in r.stderr and str(bad) in r.stderr
    bad.write_text("input,loudness\nin/take00.wav,loud\n")
    r = run_cli("batch", bad, "-o", out)
    assert r.returncode == 2 and "row 2: loudness: 'loud' is not a valid number" in r.stderr
    r = run_cli("batch", tmp_path / "missing.wav", "-o", out)
    assert r.returncode == 2 and "missing.wav: not found" in r.stderr


def test_outputs_inside_an_input_folder_are_not_taken_as_inputs(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 2)
    (src / "out").mkdir()
    write(src / "out" / "take00.wav", _music(rng, 0.1), RATE)
    jobs, rejected = collect_jobs([src], src / "out")
    assert [j.input.name for j in jobs] == ["take00.wav", "take01.wav"] and not rejected
    assert Job(src / "take00.wav", src / "o.wav", RunOptions(format="5.1")).settings_hash() != \
        Job(src / "take00.wav", src / "o.wav", RunOptions(format="7.1.4")).settings_hash()


def test_a_killed_batch_resumes_to_the_same_outputs(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 6, seconds=4.0)
    reference = tmp_path / "reference"
    r = run_cli("batch", src, "-o", reference, "-f", "7.1.4", "-q")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "upmix", "batch", str(src), "-o", str(out), "-f", "7.1.4", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once a file is done and the next has started
        entries = _journal(out) if (out / JOURNAL).is_file() else []
        if any(e["status"] == "done" for e in entries) and entries[-1]["status"] == "started":
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {Path(e["output"]).name for e in _journal(out) if e["status"] == "done"}
    assert 1 <= len(finished) < 6
    partial = _checksums(out)
    want = _checksums(reference)
    assert set(partial) == finished  # no file under a final name but the finished ones
    assert all(partial[k] == want[k] for k in partial)
    before = len(_journal(out))
    r = run_cli("batch", src, "-o", out, "-f", "7.1.4", "-q")
    assert r.returncode == 0, r.stderr
    assert _checksums(out) == want
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # the killed job's temporary file is gone
    redone = {Path(e["output"]).name for e in _journal(out)[before:] if e["status"] == "started"}
    assert redone == set(want) - finished


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_engine_writes_the_same_bytes_as_the_local_one(tmp_path, rng):
    pytest.importorskip("ray")
    src = _folder(tmp_path / "in", rng, 4, seconds=1.0)
    local = tmp_path / "local"
    r = run_cli("batch", src, "-o", local, "-f", "7.1.4", "--jobs", "2", "-q")
    assert r.returncode == 0, r.stderr
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    # token authentication with a token of the test's own on both sides: whether ~/.ray holds one (left
    # by an earlier local cluster) then changes nothing
    ray_env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **ray_env}
    started = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        distributed = tmp_path / "ray"
        r = run_cli("batch", src, "-o", distributed, "-f", "7.1.4", "--jobs", "2", "--engine", "ray",
                    "--address", f"127.0.0.1:{port}", "-q", env=ray_env)
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
    assert _checksums(distributed) == _checksums(local) and len(_checksums(local)) == 4
    assert {e["engine"] for e in _journal(distributed) if e["status"] == "started"} == {"ray"}
