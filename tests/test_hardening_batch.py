"""`upmix batch` hardening (issue 25): outputs kept in OUTDIR and off the inputs, one batch per
folder, damaged journals, workers that die with the batch, leftovers, input checksums, threads."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from test_batch import RATE, _checksums, _folder, _journal, _music
from upmix.batch import JOURNAL, LOCK, collect_jobs, file_checksum
from upmix.io import write
from upmix.jobs.output import leftovers


def _failed(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("upmix: failed:")]


def test_manifest_outputs_outside_the_folder_or_onto_an_input_are_rejected(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 2, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "kept.wav"  # an input that lies in the output folder
    write(kept, _music(rng, 0.2), RATE)
    os.link(src / "take01.wav", out / "linked.wav")  # the same file as an input under another name
    before = {p: file_checksum(p) for p in (kept, src / "take00.wav", src / "take01.wav")}
    manifest = tmp_path / "m.csv"
    manifest.write_text("input,output\n"
                        "in/take00.wav,../escaped.wav\n"
                        "in/take00.wav,../../far.wav\n"
                        f"in/take00.wav,{tmp_path / 'absolute.wav'}\n"
                        "in/take00.wav,kept.wav\n"
                        "in/take00.wav,linked.wav\n"
                        f"{kept},../in/take01.wav\n"
                        "in/take00.wav,upmix-journal.jsonl\n"
                        "in/take01.wav,fine.wav\n")
    jobs, rejected = collect_jobs([manifest, kept], out)
    assert [j.output.name for j in jobs] == ["fine.wav"]
    reasons = [r.error for r in rejected]
    assert len(reasons) == 8, reasons  # the seven rows and kept.wav itself (its output is its input)
    assert sum("is outside the output folder" in e for e in reasons) == 4
    assert sum("an input of this batch" in e for e in reasons) == 3
    assert any("would overwrite the batch's upmix-journal.jsonl" in e for e in reasons)
    r = run_cli("batch", manifest, kept, "-o", out, "-f", "5.1", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(_failed(r.stderr)) == 8, r.stderr
    assert (out / "fine.wav").is_file() and (out / "fine.json").is_file()
    assert not any((tmp_path / n).exists() for n in ("escaped.wav", "escaped.json", "absolute.wav", "absolute.json"))
    assert not (tmp_path.parent / "far.wav").exists() and not (tmp_path.parent / "far.json").exists()
    assert {p: file_checksum(p) for p in before} == before  # no input was overwritten
    assert not (out / "upmix-journal.json").exists() and not (out / "kept.json").exists()


def test_folder_outputs_never_land_on_an_input(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    loose = out / "take00.wav"
    write(loose, _music(rng, 0.2), RATE)
    jobs, rejected = collect_jobs([src, loose], out)  # in/take00.wav would write out/take00.wav
    assert not jobs
    assert all("an input of this batch" in r.error for r in rejected) and len(rejected) == 2


def test_a_locked_output_folder_is_one_line_naming_the_holder(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    with (out / LOCK).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        r = run_cli("batch", src, "-o", out, "-q")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "PID 4242" in lines[0], r.stderr
    assert not list(out.glob("*.wav")) and not (out / JOURNAL).exists()


def test_a_stale_lock_file_does_not_block(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK).write_text(f"{dead.pid}\n")
    r = run_cli("batch", src, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    assert (out / "take00.wav").is_file() and not (out / LOCK).exists()


@pytest.mark.slow
def test_two_batches_started_together_into_one_folder(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 4, seconds=4.0)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "upmix", "batch", str(src), "-o", str(out), "-f", "7.1.4", "-j", "2", "-q"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted(((p.wait(timeout=300), p.stderr.read(), p.pid) for p in procs), key=lambda x: x[0])
    for p in procs:
        p.stderr.close()
        p.stdout.close()
    (ok, _, winner), (refused, message, _) = results
    assert (ok, refused) == (0, 2), results
    lines = message.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and f"PID {winner}" in lines[0], message
    done = [e for e in _journal(out) if e["status"] == "done"]
    assert len(done) == 4 and len(_journal(out)) == 8  # the refused batch wrote nothing
    assert all(file_checksum(Path(e["output"])) == e["checksum"] for e in done)
    assert len(_checksums(out)) == 4 and not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert not (out / LOCK).exists()


def test_damaged_journal_lines_are_skipped_with_one_warning(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    lines = [b"42", b"[]", b"null", b'"text"', json.dumps({"status": "done", "output": 5}).encode(),
             json.dumps({"status": "done", "output": ["x"]}).encode(),
             json.dumps({"status": 1, "output": "x"}).encode(),
             b"\xff\xfe{not utf-8}", b"[" * 100000, b'{"status": "done", "output": "cut']
    (out / JOURNAL).write_bytes(b"\n".join(lines))
    r = run_cli("batch", src, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings == [f"upmix: warning: {out / JOURNAL}: skipped {len(lines)} damaged lines"], r.stderr
    assert (out / "take00.wav").is_file()
    tail = (out / JOURNAL).read_bytes().split(b"\n")[len(lines):]
    assert [json.loads(t)["status"] for t in tail if t] == ["started", "done"]  # not glued to the cut line


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc's parent links."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_workers_and_leaves_no_temporary_files(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        write(src / f"long{i}.wav", 0.1 * rng.standard_normal((2, 40 * RATE)).astype(np.float32), RATE)
    out = tmp_path / "out"
    log = (tmp_path / "stderr").open("w")  # a file: surviving workers would hold a pipe open
    proc = subprocess.Popen([sys.executable, "-m", "upmix", "batch", str(src), "-o", str(out), "-f", "7.1.4",
                             "-j", "2", "--loudness", "-23", "-q"], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 180
    children: set[int] = set()
    while time.monotonic() < deadline:  # both jobs writing their temporary files
        children |= _descendants(proc.pid)
        if len([p for p in out.glob(".*") if p.is_file()]) >= 2 and len(children) >= 3:
            break
        assert proc.poll() is None, (tmp_path / "stderr").read_text()
        time.sleep(0.1)
    else:
        pytest.fail("the jobs did not start")
    children |= _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=15)
    log.close()
    message = (tmp_path / "stderr").read_text()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)]  # no worker, manager or tracker goes on
    assert status == 143 and "upmix: terminated (SIGTERM)" in message, message
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not list(out.glob("*.wav")) and not (out / LOCK).exists()


def test_leftovers_of_this_job_and_nothing_else(tmp_path):
    mine = ["..x.wav.123.render.wav.abc.part", ".x.wav.123.render.wav", ".x.wav.k2j_9abc.part",
            ".x.wav.k2j_9abc.tagged", ".x.json.abcdefgh.part"]
    others = [".x.wav.b.wav.abcdefgh.part", "..x.wav.b.wav.123.render.wav.abc.part", "x.wav.123.render.wav",
              ".x.wav.notes.txt", ".y.wav.abcdefgh.part", ".x.wav.123.render.wav.456.render.wav"]
    for name in mine + others:
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in leftovers(tmp_path / "x.wav")) == sorted(mine)
    assert [p.name for p in leftovers(tmp_path / "x[1].wav")] == []


def test_a_rerun_removes_the_temporary_files_of_a_killed_delivered_job(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    out.mkdir()
    planted = [out / "..take00.wav.123.render.wav.abc.part", out / ".take00.wav.123.render.wav"]
    for p in planted:
        p.write_text("left by a killed job")
    r = run_cli("batch", src, "-o", out, "--loudness", "-23", "-q")
    assert r.returncode == 0, r.stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_an_input_rewritten_with_the_same_size_and_time_is_redone(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 1, seconds=0.2)
    out = tmp_path / "out"
    r = run_cli("batch", src, "-o", out, "-f", "5.1", "-q")
    assert r.returncode == 0, r.stderr
    take = src / "take00.wav"
    st = take.stat()
    data = bytearray(take.read_bytes())
    data[-100:] = bytes(100)  # other samples, the same size
    take.write_bytes(bytes(data))
    os.utime(take, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = run_cli("batch", src, "-o", out, "-f", "5.1", "-q")
    assert r.returncode == 0, r.stderr
    assert [e["status"] for e in _journal(out)] == ["started", "done", "started", "done"]
    r = run_cli("batch", src, "-o", out, "-f", "5.1", "-q")
    assert r.returncode == 0 and len(_journal(out)) == 4  # unchanged now: skipped


@pytest.mark.slow
def test_jobs_1_and_jobs_2_write_the_same_bytes(tmp_path, rng):
    src = _folder(tmp_path / "in", rng, 2, seconds=4.0)  # a stereo take: the spatial separator, on torch
    outputs = {}
    for jobs in ("1", "2"):
        r = run_cli("batch", src, "-o", tmp_path / jobs, "-f", "7.1.4", "-j", jobs, "-q")
        assert r.returncode == 0, r.stderr
        outputs[jobs] = _checksums(tmp_path / jobs)
    assert outputs["1"] == outputs["2"] and len(outputs["1"]) == 2
