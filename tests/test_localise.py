"""Source localisation from level differences (`upmix.separation.localise`, issue 27, first part):
directions of pan-potted sources, hard pans, streaming, and the errors."""

import numpy as np
import pytest

from upmix.errors import UpmixError
from upmix.separation.localise import DirectionMap

RATE = 48000


def voice(rng, n):
    """A sparse harmonic part: quarter-second notes of 11 harmonics on random pitches, a quarter of them rests."""
    out, t, note = np.zeros(n), np.arange(n) / RATE, RATE // 4
    for i in range(0, n, note):
        if rng.random() < 0.25:
            continue
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        tt = t[i:i + note]
        out[i:i + note] = np.hanning(len(tt)) * sum(np.sin(2 * np.pi * f0 * k * tt + rng.random() * 6) / k
                                                    for k in range(1, 12))
    return out


def pan_pot(azimuths, seed=1, seconds=6.0):
    """Parts pan-potted (gains cos theta, sin theta) to stereo azimuths on a +-30 degree pair."""
    rng = np.random.default_rng(seed)
    n = int(RATE * seconds)
    out = np.zeros((2, n))
    for az in azimuths:
        theta = 0.5 * np.arccos(np.tan(np.radians(az)) / np.tan(np.radians(30)))
        part = voice(rng, n)
        out += np.stack([np.cos(theta) * part, np.sin(theta) * part])
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def localise(audio, block=65536, count=None):
    found = DirectionMap(RATE)
    for i in range(0, audio.shape[1], block):
        found.update(audio[:, i:i + block])
    return found, found.sources(count)


@pytest.mark.parametrize("azimuths", [[20, -10], [-30, 30, 0], [27, 11, -4, -19, -30]])
def test_every_source_is_found_where_it_was_panned(azimuths):
    _, sources = localise(pan_pot(azimuths))
    for az in azimuths:
        assert min(abs(s.azimuth - az) for s in sources) <= 0.5, (az, sources)
    assert [s.azimuth for s in sources] == sorted((s.azimuth for s in sources), reverse=True)
    assert sum(s.share for s in sources) == pytest.approx(1.0, abs=1e-3)
    assert all(0.0 < s.active <= 1.0 and s.spread < 5.0 for s in sources)


def test_forced_count_takes_the_real_sources():
    azimuths = [25, 5, -15]
    _, sources = localise(pan_pot(azimuths), count=3)
    assert [round(s.azimuth) for s in sources] == azimuths


def test_fed_in_blocks_equals_fed_whole():
    audio = pan_pot([12, -20], seconds=3.0)
    blocks, _ = localise(audio, block=5000)
    whole, _ = localise(audio, block=audio.shape[1])
    np.testing.assert_allclose(blocks.histogram(), whole.histogram(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(blocks.disc, whole.disc, rtol=1e-6, atol=1e-9)


def panned(azimuth, part):
    theta = 0.5 * np.arccos(np.tan(np.radians(azimuth)) / np.tan(np.radians(30)))
    return np.stack([np.cos(theta) * part, np.sin(theta) * part])


@pytest.mark.parametrize("seed", [3, 6])
def test_a_source_that_never_stands_out_is_found_by_the_chords_of_the_disc(seed):
    """Dense noise 12 dB under a sparse part dominates no row's histogram, so the votes find only
    the part; the bins they share lie on the chord between them in the pan disc, and extending
    the chords from the part lands on the noise."""
    rng = np.random.default_rng(seed)
    n = 6 * RATE
    part, noise = voice(rng, n), rng.standard_normal(n)
    mix = panned(15, part / part.std()) + panned(-12, noise / noise.std() * 10 ** (-12 / 20))
    found = DirectionMap(RATE)
    found.update((0.5 * mix / np.abs(mix).max()).astype(np.float32))
    assert len(found._voted(found.histogram())) == 1
    assert [round(s.azimuth) for s in found.sources()] == [15, -12]
    assert [round(s.azimuth) for s in found.sources(2)] == [15, -12]  # a forced count finds it the same way


@pytest.mark.parametrize("azimuth", [30, 20, 0])
def test_hiss_adds_no_source(azimuth):
    """Uncorrelated hiss 20 dB down lies around the middle of the pan disc: the chords from a
    source through it land at the far edge, but weigh too little to be a source."""
    rng = np.random.default_rng(4)
    part = voice(rng, 6 * RATE)
    mix = panned(azimuth, part) + rng.standard_normal((2, len(part))) * part.std() * 0.1
    found = DirectionMap(RATE)
    found.update((0.5 * mix / np.abs(mix).max()).astype(np.float32))
    assert [round(s.azimuth) for s in found.sources()] == [azimuth]


def test_a_part_that_stops_is_active_for_part_of_the_time():
    first_half = np.concatenate([pan_pot([20], seed=2, seconds=3.0), np.zeros((2, 3 * RATE), np.float32)], axis=1)
    _, sources = localise(first_half + pan_pot([-20], seed=3))
    by_side = {round(s.azimuth): s for s in sources}
    assert by_side[20].active < 0.6 < by_side[-20].active


def test_bad_inputs():
    mono = DirectionMap(RATE)
    with pytest.raises(UpmixError, match="needs a stereo recording"):
        mono.update(np.zeros((1, 4096), np.float32))
    silent = DirectionMap(RATE)
    silent.update(np.zeros((2, RATE), np.float32))
    with pytest.raises(UpmixError, match="no direct sound"):
        silent.sources()
    with pytest.raises(UpmixError, match="^sources asks for 9 sources"):
        localise(pan_pot([10, -10], seconds=2.0), count=9)


def test_a_forced_count_takes_broad_peaks_after_the_sharp_ones():
    """A reverberant recording smears some sources into broad hills: the automatic count leaves
    them out, a forced count takes them after every sharp peak."""
    found = DirectionMap(RATE)
    az = found.azimuths
    profile = (np.exp(-0.5 * ((az - 20) / 0.2) ** 2) + np.exp(-0.5 * ((az + 10) / 0.2) ** 2)
               + 0.5 * np.exp(-0.5 * ((az - 4) / 2.5) ** 2))
    found.rows = [profile]
    assert [round(s.azimuth) for s in found.sources()] == [20, -10]
    assert [round(s.azimuth) for s in found.sources(3)] == [20, 4, -10]
    with pytest.raises(UpmixError, match="at most 3"):
        found.sources(4)
