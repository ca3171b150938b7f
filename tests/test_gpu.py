"""CPU and CUDA give the same separation and walk-through rendering (skipped without a CUDA device)."""

import numpy as np
import pytest
import torch

from upmix.analysis import protocol_signal, sdr
from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.layouts import get_layout
from upmix.separation import MonoSeparator, SpatialSeparator
from upmix.stage import Stage, StageOptions

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("cls,channels", [(SpatialSeparator, 2), (MonoSeparator, 1)])
def test_cpu_and_cuda_agree(cls, channels):
    signal, _ = protocol_signal(48000, burst_s=1.0, tone_s=1.0)
    stage = Stage(get_layout("7.1.4"), StageOptions(width=45))
    cpu = cls(stage, device="cpu").separate(signal[:channels], 48000)
    gpu = cls(stage, device="cuda").separate(signal[:channels], 48000)
    assert cpu.keys() == gpu.keys()
    for k in cpu:
        np.testing.assert_allclose(gpu[k], cpu[k], atol=2e-4)


@pytest.mark.parametrize("fmt", ["binaural", "7.1.4"])
def test_walk_renders_alike_on_cpu_and_cuda(tmp_path, fmt):
    rng = np.random.default_rng(0)
    write(tmp_path / "a.wav", 0.1 * rng.standard_normal((1, 3 * 48000)), 48000, "FLOAT")
    (tmp_path / "s.yaml").write_text(
        "objects:\n  - {stem: a, position: [3, 6, 1.5], path: [{time: 0, position: [3, 6, 1.5]}, "
        "{time: 3, position: [5, 6, 1.5]}]}\nlistener:\n  path: [{time: 0, position: [2, 1, 1.5], yaw: 0}, "
        "{time: 3, position: [4, 4, 1.5], yaw: 40}]\nroom: {dimensions: [8, 9, 3], rt60: 0.5}\n")
    out = {}
    for device in ("cpu", "cuda"):
        render_scene(tmp_path / "s.yaml", tmp_path / f"{device}.wav", stems_dir=tmp_path, format=fmt,
                     bits="float", device=device)
        out[device] = read(tmp_path / f"{device}.wav")[0]
    np.testing.assert_allclose(out["cuda"], out["cpu"], atol=1e-4)


def test_orchestra_model_on_cuda_matches_cpu():
    """bfloat16 autocast on the GPU: the stems differ from the CPU's by less than -30 dB of the
    input, and still add up to it."""
    from upmix.separation.orchestra import OrchestraSeparator

    rng = np.random.default_rng(0)
    t = np.arange(12 * 44100) / 44100
    x = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)]) * 0.2
    x = (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)
    cpu = OrchestraSeparator(device="cpu").separate(x, 44100)
    gpu = OrchestraSeparator(device="cuda").separate(x, 44100)
    total = sum(gpu.values())
    assert sdr(total, x) >= 60
    for k in cpu:
        assert np.sum((gpu[k] - cpu[k]) ** 2) < 1e-3 * np.sum(x ** 2), k


@pytest.mark.parametrize("mono", [False, True])
def test_sources_separator_on_cuda_matches_cpu(mono):
    """The sources separator's Wiener filter on the GPU: the same performers, the same stems."""
    from upmix.separation.sources import SourceSeparator

    rng = np.random.default_rng(1)
    t = np.arange(4 * 48000) / 48000
    parts = [np.sin(2 * np.pi * f * t) * (rng.random(len(t)) > 0.5).astype(float) for f in (220, 330, 495)]
    gains = [(0.95, 0.31), (0.71, 0.71), (0.2, 0.98)]
    x = sum(np.outer(g, p) for g, p in zip(gains, parts)).astype(np.float32) * 0.2
    cpu_sep, gpu_sep = SourceSeparator(device="cpu", mono=mono), SourceSeparator(device="cuda", mono=mono)
    cpu, gpu = cpu_sep.separate(x, 48000), gpu_sep.separate(x, 48000)
    assert [s.azimuth for s in gpu_sep.sources] == [s.azimuth for s in cpu_sep.sources]
    assert cpu.keys() == gpu.keys()
    for k in cpu:
        np.testing.assert_allclose(gpu[k], cpu[k], atol=2e-4)
