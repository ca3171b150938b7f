"""The material-free parts of benchmarks/upmix_real.py: the speaker groups, the leakage fit, the
room-response split and the scores. Small synthetic signals, no downloads."""

import importlib.util
import sys

import numpy as np
import pytest
import scipy.signal

from conftest import ROOT
from upmix.layouts import get_layout


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("upmix_real_bench", ROOT / "benchmarks" / "upmix_real.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.path.remove(str(ROOT / "benchmarks"))


def test_speaker_groups_and_the_surround_pair(bench):
    layout = get_layout("7.1.4")
    names = [s.name for s in layout.speakers]
    groups = {k: {names[i] for i in v} for k, v in bench.groups(layout).items()}
    assert groups == {"front": {"M+030", "M-030", "M+000"}, "surround": {"M+090", "M-090", "M+135", "M-135"},
                      "height": {"U+045", "U-045", "U+135", "U-135"}, "LFE": {"LFE1"}}
    assert [names[i] for i in bench.surround_pair(layout)] == ["M+090", "M-090"]
    assert bench.surround_pair(get_layout("0+2+0")) is None


def test_the_fit_finds_what_of_the_direct_sound_reaches_a_channel(bench):
    rng = np.random.default_rng(1)
    direct = rng.standard_normal((2, 480000))
    other = rng.standard_normal(480000)
    filtered = scipy.signal.lfilter([0.5, 0.3, -0.2], [1.0], direct[0]) + 0.25 * direct[1]
    share = np.sum(filtered ** 2) / np.sum((filtered + other) ** 2)
    assert bench.explained_share((filtered + other)[None], direct) == pytest.approx(share, rel=0.05)
    assert bench.explained_share(other[None], direct) < 0.01  # 2 / 470 frames by chance


def test_a_response_splits_at_its_direct_sound(bench):
    h = np.zeros((2, 48000))
    h[0, 1000], h[1, 1100], h[:, 1000 + 2400] = 1.0, 0.8, 0.3  # the late part starts 50 ms after 1000
    before, after = bench.split_response(h, bench.LATE_S, bench.LATE_S)
    np.testing.assert_array_equal(before + after, h)
    assert np.flatnonzero(after[0]).tolist() == [3400] and np.flatnonzero(before[1]).tolist() == [1100]


def test_scores_of_an_upmix_that_folds_back(bench):
    """Direct sound on the front pair, the late part on the surrounds at -3 dB fold: the fold-down
    is the input less the surrounds' missing 3 dB, the shares and the leak are what was put there."""
    rng = np.random.default_rng(2)
    layout = get_layout("5.1")
    names = [s.name for s in layout.speakers]
    direct, late = rng.standard_normal((2, 480000)), 0.3 * rng.standard_normal((2, 480000))
    y = np.zeros((6, 480000))
    y[names.index("M+030")], y[names.index("M-030")] = direct
    y[names.index("M+110")], y[names.index("M-110")] = late / np.sqrt(0.5)
    row = bench.score(y, layout, direct + late, bench.Truth(direct, late))
    assert row["fold_snr_db"] > 100
    assert row["surround_share"] == pytest.approx(2 * 0.09 / (1 + 2 * 0.09), rel=0.05)
    assert row["surround_vs_late_db"] == pytest.approx(10 * np.log10(row["surround_share"] / (0.09 / 1.09)),
                                                       abs=0.2)
    assert row["direct_leak_db"] < -20  # the fit's chance floor
    assert row["surround_coherence"] < 0.05
