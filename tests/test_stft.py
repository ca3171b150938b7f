"""The STFT runs the same code on numpy (CPU) and torch (CUDA); the CPU path never imports torch.

The torch namespace is exercised here on the CPU, so the code a CUDA device runs is tested on
every machine (tests/test_gpu.py compares the two devices where there is one).
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from upmix.analysis import protocol_signal
from upmix.layouts import get_layout
from upmix.pipeline import ahead
from upmix.separation import MonoSeparator, SpatialSeparator
from upmix.stage import Stage, StageOptions
from upmix.stft import NVIDIA_DRIVER, StreamingISTFT, StreamingSTFT, array_module, smooth_bins, smooth_frames, to_numpy

RATE = 48000


def _round_trip(x: np.ndarray, xp, block: int, n_fft: int = 1024) -> np.ndarray:
    analysis, synthesis = StreamingSTFT(n_fft, x.shape[0], xp, "cpu"), StreamingISTFT(n_fft, x.shape[0], xp, "cpu")
    parts = [synthesis.push(analysis.push(xp.asarray(x[:, i:i + block]))) for i in range(0, x.shape[1], block)]
    parts.append(synthesis.push(analysis.flush()))
    return np.concatenate([to_numpy(p) for p in parts], axis=1)[:, analysis.latency:analysis.latency + x.shape[1]]


@pytest.mark.parametrize("block", [100, 512, 4096])
def test_synthesis_gives_the_input_back_in_any_blocks(rng, block):
    x = rng.standard_normal((2, 10000)).astype(np.float32)
    np.testing.assert_allclose(_round_trip(x, array_module("cpu"), block), x, atol=1e-5)


def test_numpy_and_torch_namespaces_agree(rng):
    torch_xp = array_module("cpu", torch=True)
    x = rng.standard_normal((2, 6000)).astype(np.float32)
    np.testing.assert_allclose(_round_trip(x, torch_xp, 700), _round_trip(x, array_module("cpu"), 700), atol=1e-6)
    frames = rng.standard_normal((4, 9, 33)).astype(np.float32)
    spectra = (frames + 1j * rng.standard_normal((4, 9, 33))).astype(np.complex64)
    for a in (frames, spectra):
        ours, state = smooth_frames(smooth_bins(a, 5), 0.8, None)
        theirs, torch_state = smooth_frames(smooth_bins(torch_xp.asarray(a), 5), 0.8, None)
        np.testing.assert_allclose(to_numpy(theirs), ours, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(torch_state), state, rtol=1e-5, atol=1e-6)


def test_smoothing_over_bins_averages_the_bins_there_are():
    x = np.arange(6, dtype=np.float32)[None]
    np.testing.assert_allclose(smooth_bins(x, 5), [[1.0, 1.5, 2.0, 3.0, 3.5, 4.0]])


@pytest.mark.parametrize("cls,channels", [(SpatialSeparator, 2), (MonoSeparator, 1)])
def test_separators_agree_on_numpy_and_torch(cls, channels):
    """The stage separators' torch path (the one CUDA runs) gives the numpy path's stems."""
    signal, _ = protocol_signal(RATE, burst_s=0.5, tone_s=0.5)
    stage = Stage(get_layout("7.1.4"), StageOptions(width=45))
    cpu = cls(stage, device="cpu").separate(signal[:channels], RATE)
    on_torch = cls(stage, device="cpu")
    on_torch.xp = array_module("cpu", torch=True)
    other = on_torch.separate(signal[:channels], RATE)
    assert other.keys() == cpu.keys()
    for k in cpu:
        np.testing.assert_allclose(other[k], cpu[k], atol=2e-4)


@pytest.mark.skipif(any(os.path.exists(p) for p in NVIDIA_DRIVER),
                    reason="with an NVIDIA driver, auto may pick CUDA and so import torch")
def test_upmix_run_imports_neither_torch_nor_scipy_signal(tmp_path):
    """Start-up: torch (1.5 s) and scipy.signal (0.8 s) cost more than ffmpeg needs to upmix a
    minute of audio; the default `upmix run` of a stereo file needs neither."""
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from pathlib import Path
        from upmix.io import write
        from upmix.jobs.options import RunOptions
        from upmix.jobs.upmix import upmix_file
        rng = np.random.default_rng(0)
        write("{tmp_path}/in.wav", 0.1 * rng.standard_normal((2, 48000)), 48000)
        upmix_file(Path("{tmp_path}/in.wav"), Path("{tmp_path}/out.wav"), RunOptions(format="5.1"))
        print(sorted(m for m in ("torch", "scipy.signal") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_ahead_gives_every_item_in_order():
    assert list(ahead(iter(range(50)), depth=2)) == list(range(50))


def test_ahead_raises_the_workers_error_here():
    def items():
        yield 1
        raise ValueError("bad block")

    with pytest.raises(ValueError, match="bad block"):
        list(ahead(items()))


def test_ahead_stops_its_worker_when_the_caller_stops():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    threads = threading.active_count()
    stream = ahead(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert len(made) <= 4  # the one handed over, two queued, one waiting to be
    assert threading.active_count() == threads
