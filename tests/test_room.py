"""Rooms: reverberation time per octave band, early reflections from the right wall at the right
time, a diffuse tail that joins the early part, decorrelated channels and the ears' coherence."""

import numpy as np
import pytest
import scipy.signal

from upmix.analysis import reverberation_time
from upmix.geometry import SPEED_OF_SOUND, cartesian
from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.layouts import get_layout
from upmix.render.binaural import default_hrtf_path, get_hrtf, lag, load_sofa
from upmix.render.room import EARLY_TIME_S, ImageSet, acoustics, early_responses, images
from upmix.render.targets import get_target
from upmix.scene import SURFACES, Room

RATE = 48000
SOURCE, LISTENER = (8.0, 7.5, 3.0), (3.0, 7.5, 3.0)
DIRECT = 5.0 / SPEED_OF_SOUND * RATE  # samples
LEFT_WALL = 11.0 / SPEED_OF_SOUND * RATE  # the image behind x = 0 is at (-8, 7.5, 3): 11 m, due left


@pytest.fixture(scope="module")
def impulse_responses(tmp_path_factory):
    """The 20 x 15 x 10 m, RT60 1.5 s room's response to a click, on 4+7+0 and binaural."""
    d = tmp_path_factory.mktemp("room")
    x = np.zeros((1, RATE))
    x[0, 0] = 1.0
    write(d / "click.wav", x, RATE, "FLOAT")
    (d / "room.yaml").write_text(f"objects:\n  - {{stem: click, position: {list(SOURCE)}}}\n"
                                 f"listener: {{position: {list(LISTENER)}}}\n"
                                 "room: {dimensions: [20, 15, 10], rt60: 1.5}\n")
    out = {}
    for fmt in ("4+7+0", "binaural"):
        render_scene(d / "room.yaml", d / f"{fmt}.wav", stems_dir=d, format=fmt, bits="float")
        out[fmt] = read(d / f"{fmt}.wav")[0].astype(float)
    return out


def t30(y: np.ndarray, centre: float) -> float:
    return reverberation_time(y, RATE, centre)


@pytest.mark.parametrize("fmt", ["4+7+0", "binaural"])
@pytest.mark.parametrize("band", [250, 500, 1000, 2000, 4000])
def test_t30_matches_rt60_per_octave_band(impulse_responses, fmt, band):
    assert t30(impulse_responses[fmt], band) == pytest.approx(1.5, rel=0.10)


def test_materials_set_the_decay_per_band(tmp_path):
    """A room of pyroomacoustics materials (concrete, a curtain, carpet, plasterboard) decays at the
    rate its per-band absorption gives: faster at high frequencies, where carpet and curtain absorb."""
    x = np.zeros((1, RATE // 2))
    x[0, 0] = 1.0
    write(tmp_path / "click.wav", x, RATE, "FLOAT")
    (tmp_path / "room.yaml").write_text(
        "objects:\n  - {stem: click, position: [5.5, 4.0, 1.5]}\nlistener: {position: [2.5, 2.0, 1.2]}\n"
        "room:\n  dimensions: [8, 6, 3.5]\n  materials: {walls: rough_concrete, back: curtains_cotton_0.5, "
        "floor: carpet_cotton, ceiling: plasterboard}\n")
    render_scene(tmp_path / "room.yaml", tmp_path / "o.wav", stems_dir=tmp_path, format="4+7+0", bits="float")
    y = read(tmp_path / "o.wav")[0].astype(float)
    mats = {"left": "rough_concrete", "right": "rough_concrete", "front": "rough_concrete",
            "back": "curtains_cotton_0.5", "floor": "carpet_cotton", "ceiling": "plasterboard"}
    ac = acoustics(Room(dimensions=(8.0, 6.0, 3.5), materials=mats))
    # from 500 Hz up neighbouring bands differ little, so an octave-band T30 reads the band's own
    # RT60; at 250 Hz the carpet's steep slope (1.3 s at 125 Hz, 0.8 s at 250 Hz) biases any
    # octave-band measurement upwards, so there only the ordering is checked
    for k, centre in enumerate(ac.bands):
        if 500 <= centre <= 4000:
            assert t30(y, centre) == pytest.approx(ac.rt60[k], rel=0.15), centre
    assert t30(y, 250) > 1.5 * t30(y, 1000)
    assert ac.rt60[1] > 1.5 * ac.rt60[3]


def test_left_wall_reflection_on_speakers(impulse_responses):
    y = impulse_responses["4+7+0"]
    energy = (y ** 2).sum(axis=0)
    assert abs(np.argmax(energy[:int(DIRECT) + 100]) - DIRECT) <= 1
    window = slice(int(LEFT_WALL) - 100, int(LEFT_WALL) + 100)  # the next arrival is 200 samples later
    peak = window.start + np.argmax(energy[window])
    assert abs(peak - LEFT_WALL) <= 1
    layout = get_layout("4+7+0")
    e = (y[layout.main_indices, peak - 24:peak + 25] ** 2).sum(axis=1)
    vector = e @ layout.positions
    cos = vector @ cartesian(90, 0) / np.linalg.norm(vector)
    assert np.degrees(np.arccos(min(cos, 1.0))) < 10


def test_left_wall_reflection_on_headphones(impulse_responses):
    """The reflection reaches the ears when sound from its image does (head centre within 1 sample)
    with the interaural time difference of the HRTF from due left."""
    y = impulse_responses["binaural"]
    hrtf = get_hrtf(None, RATE)
    w0, w1 = int(LEFT_WALL) - 120, int(LEFT_WALL) + 120
    segment = y[:, w0:w1] * np.hanning(w1 - w0)
    onsets = [w0 + np.argmax(np.abs(ear) > 0.5 * np.abs(ear).max()) for ear in segment]
    reference = hrtf.hrirs(cartesian(90, 0)[None])[0]  # (2, taps), head centre at `latency` samples
    ref_onsets = [np.argmax(np.abs(ear) > 0.5 * np.abs(ear).max()) - hrtf.latency for ear in reference]
    assert abs(np.mean(onsets) - np.mean(ref_onsets) - LEFT_WALL) <= 1.0
    itd = lag(segment[0], segment[1])
    assert itd == pytest.approx(lag(reference[0], reference[1]), abs=1.0)
    assert itd < -20  # the left ear leads by more than 0.4 ms


def test_a_reflection_carries_its_direction_and_wall_damping_to_the_ears():
    """The left-wall image alone through `early_responses`: per octave band, its ear signals are the
    HRTF from due left times the wall's damping and the distance and air losses."""
    ac = acoustics(Room(dimensions=(20.0, 15.0, 10.0), materials={s: "brickwork" if s == "left" else 0.5
                                                                  for s in SURFACES}))
    imgs = images(ac, np.array(SOURCE))
    keep = np.flatnonzero(np.all(np.isclose(imgs.positions, [-8.0, 7.5, 3.0]), axis=1)
                          | (imgs.orders == 0))
    one = ImageSet(*(getattr(imgs, f)[keep] for f in ("positions", "orders", "damping", "offsets", "signs")))
    target = get_target("binaural")
    h, _ = early_responses(target, ac, [one], np.array([SOURCE]), np.array(LISTENER), 0.0, RATE,
                           include_direct=False)
    ears = h[0].astype(float)
    reference = target.prepared(RATE).hrirs(cartesian(90, 0)[None])[0]
    wall = imgs.damping[keep][imgs.orders[keep] == 1][0]  # amplitude per band
    assert wall[3] == pytest.approx(np.sqrt(1 - 0.02), abs=0.01)  # brickwork absorbs 2 % at 1 kHz
    for k, centre in enumerate(ac.bands[:6]):
        if centre < 500:
            continue  # the HRIR's 256 taps resolve nothing narrower
        sos = scipy.signal.butter(3, [centre / np.sqrt(2), centre * np.sqrt(2)], "bandpass", fs=RATE,
                                  output="sos")
        got, want = (10 * np.log10((scipy.signal.sosfilt(sos, np.pad(s, ((0, 0), (0, 4096))), axis=-1) ** 2
                                    ).sum(axis=-1)) for s in (ears, reference))
        loss = 20 * np.log10(wall[k] / 11.0) - 10 * np.log10(np.e) * ac.air[k] * 11.0
        np.testing.assert_allclose(got - want, loss, atol=0.5, err_msg=f"{centre} Hz")


def test_tail_joins_the_early_part_without_a_jump(impulse_responses):
    for y in impulse_responses.values():
        energy = (y ** 2).sum(axis=0)
        win = int(0.01 * RATE)
        start = int(DIRECT) + int(0.03 * RATE)
        levels = 10 * np.log10(energy[start:start + 40 * win].reshape(40, win).mean(axis=1))
        t = (start + (np.arange(40) + 0.5) * win - DIRECT) / RATE
        late = t > EARLY_TIME_S + 0.02
        fit = np.polyval(np.polyfit(t[late], levels[late], 1), t)
        around = (t > EARLY_TIME_S - 0.06) & (t < EARLY_TIME_S + 0.06)
        assert np.abs(levels - fit)[around].max() < 3.0
        assert np.abs(np.diff(levels))[around[1:]].max() < 3.0


def test_tail_is_decorrelated_on_speakers_and_has_the_ears_coherence(impulse_responses):
    late = slice(int(0.3 * RATE), int(1.2 * RATE))
    y = impulse_responses["4+7+0"][get_layout("4+7+0").main_indices, late]
    c = np.corrcoef(y)
    assert np.abs(c[~np.eye(len(c), dtype=bool)]).max() < 0.1
    # the ears: per octave band, the interaural coherence of a diffuse field at the KEMAR head, as
    # the SOFA file's own HRIRs (all measured directions) give it
    ears = impulse_responses["binaural"][:, late]
    f, cross = scipy.signal.csd(ears[0], ears[1], fs=RATE, nperseg=4096)
    power = [scipy.signal.welch(e, RATE, nperseg=4096)[1] for e in ears]
    kemar = load_sofa(default_hrtf_path())
    spec = np.fft.rfft(kemar.hrirs, 1024)
    fk = np.fft.rfftfreq(1024, 1 / kemar.sample_rate)
    for centre in (125, 250, 500, 1000, 2000, 4000, 8000):
        sel, selk = ((x >= centre / np.sqrt(2)) & (x < centre * np.sqrt(2)) for x in (f, fk))
        got = cross[sel].real.sum() / np.sqrt(power[0][sel].sum() * power[1][sel].sum())
        want = (spec[:, 0, selk] * np.conj(spec[:, 1, selk])).real.sum() / np.sqrt(
            (np.abs(spec[:, 0, selk]) ** 2).sum() * (np.abs(spec[:, 1, selk]) ** 2).sum())
        assert got == pytest.approx(want, abs=0.15), centre
    assert want < 0.1  # (and the field is incoherent at high frequencies)
