"""CPU and CUDA give the same separation (skipped without a CUDA device)."""

import numpy as np
import pytest
import torch

from upmix.analysis import protocol_signal
from upmix.layouts import get_layout
from upmix.placement import Stage, StageOptions
from upmix.separation import MonoSeparator, SpatialSeparator

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
