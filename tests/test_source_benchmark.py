"""The material-free parts of benchmarks/source_separation.py: DUET, the oracle masks, the pan-pot
conventions, matching and scoring. Tiny synthetic signals, no downloads."""

import importlib.util
import sys

import numpy as np
import pytest

from conftest import ROOT
from upmix.analysis import pan_gains, si_sdr, stereo_azimuth

RATE = 16000


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "source_separation.py"
    spec = importlib.util.spec_from_file_location("source_separation_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def tone(f0: float, seconds: float = 1.0, harmonics: int = 6) -> np.ndarray:
    """A harmonic tone with falling partials, float32."""
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1)).astype(np.float32) * 0.1


def two_tone_mix(bench, azimuths=(20.0, -12.0)):
    sources = np.stack([tone(220.0), tone(311.0)])
    refs = bench.azimuth_gains(np.array(azimuths))[:, :, None] * sources[:, None]
    return refs.sum(axis=0), refs


def test_azimuth_gains_follow_the_project_pan_law(bench):
    for p in (-1.0, -0.4, 0.0, 0.3, 1.0):
        az = stereo_azimuth(p)
        assert np.allclose(bench.azimuth_gains(np.array(az)), pan_gains(p), atol=1e-9)
        left, right = pan_gains(p)
        assert bench.gains_azimuth(np.array(left), np.array(right)) == pytest.approx(az, abs=1e-9)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_pan_positions_keep_their_distance(bench, count):
    rng = np.random.default_rng(count)
    for _ in range(20):
        az = np.sort(bench.pan_positions(rng, count))
        assert az[0] >= -30 - 1e-9 and az[-1] <= 30 + 1e-9
        assert np.all(np.diff(az) >= bench.MIN_GAP_DEG - 1e-9)


def test_duet_separates_two_panned_tones(bench):
    mix, refs = two_tone_mix(bench)
    estimates, azimuths = bench.duet(mix, 2, 0.0)
    order = np.argsort(-azimuths)  # leftmost first, as the sources are
    assert np.allclose(azimuths[order], [20.0, -12.0], atol=1.0)
    for est, ref in zip(estimates[order], refs):
        assert si_sdr(est, ref) > 10


def test_duet_finds_delays_of_a_spaced_pair(bench):
    """Two tones reaching the right channel 3 samples later / 4 samples earlier and at other levels."""
    sources = np.stack([tone(180.0), tone(253.0)])
    refs = np.stack([np.stack([s, gain * np.roll(s, shift)]) for s, gain, shift in
                     zip(sources, (0.9, 1.0), (3, -4))])
    estimates, _ = bench.duet(refs.sum(axis=0), 2, 8.0)
    scores = np.array([[si_sdr(e, r) for r in refs] for e in estimates])
    assert np.sort(scores.max(axis=0)).min() > 10
    assert scores.argmax(axis=1).tolist() in ([0, 1], [1, 0])


def test_ideal_ratio_masks_and_the_spare_rest(bench):
    mix, refs = two_tone_mix(bench)
    ideal = bench.ideal_ratio_masks(mix, refs)
    assert ideal.shape == refs.shape
    assert all(si_sdr(e, r) > 20 for e, r in zip(ideal, refs))
    # with the second source as an unscored rest, the first one's mask still leaves it out
    assert si_sdr(bench.ideal_ratio_masks(mix, refs[:1])[0], refs[0]) > 20


def test_scores_match_by_azimuth_and_count_misses(bench):
    mix, refs = two_tone_mix(bench)
    rec = bench.Recording(mix, refs, None, None, np.array([20.0, -12.0]), 0.0)
    scores = bench.Scores()
    # one stem only, found near the second source: the first is missed
    found = bench.Found(refs[1:] + 0.01 * refs[:1], np.array([-11.0]))
    bench.score(scores, found, rec, "azimuth", directions=True, count_known=False)
    assert scores.si_sdr[0] == bench.MISSED_DB and scores.si_sdr[1] > 30
    assert scores.direction == [pytest.approx(1.0)]
    assert scores.exact == [False]


def test_ambience_share_is_a_share_of_the_late_part(bench):
    mix, refs = two_tone_mix(bench)
    late = 0.02 * np.random.default_rng(0).standard_normal(mix.shape)
    full = mix + late
    rec = bench.Recording(full, refs, refs, late, np.array([20.0, -12.0]), 0.0)
    scores = bench.Scores()
    bench.score(scores, bench.Found(refs, np.array([20.0, -12.0]), ambience=late), rec, "azimuth", True, False)
    assert scores.ambience == [pytest.approx(1.0, abs=0.05)]
    assert scores.exact == [True]


def test_spatial_baseline_gives_stereo_stems_at_the_true_directions(bench):
    mix, refs = two_tone_mix(bench)
    estimates = bench.spatial_estimates(mix, np.array([20.0, -12.0]))
    assert estimates.shape == refs.shape
    assert all(si_sdr(e, r) > 10 for e, r in zip(estimates, refs))
