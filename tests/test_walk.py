"""Walking through a scene: paths, level and direction as the listener moves, Doppler, no clicks,
and walking up to the flute in the orchestra."""

import textwrap

import numpy as np
import pytest
import scipy.signal
import soundfile

from conftest import ROOT, run_cli
from upmix.analysis import energy_vector_azimuth, out_of_tone_db
from upmix.errors import UpmixError
from upmix.geometry import SPEED_OF_SOUND, rotate_yaw
from upmix.io import read, write
from upmix.jobs.render import render_scene
from upmix.layouts import get_layout
from upmix.render.moving import Trajectory
from upmix.render.targets import get_target
from upmix.scene import Keyframe, load_path, load_scene

RATE = 48000
TONE = 1000.0


def sine(folder, name, seconds, freq=TONE, amplitude=0.25):
    """A tone with a 50 ms fade-in (so its start is no click of its own)."""
    t = np.arange(int(seconds * RATE)) / RATE
    fade = np.sin(np.pi / 2 * np.clip(t / 0.05, 0, 1)) ** 2
    write(folder / f"{name}.wav", (amplitude * fade * np.sin(2 * np.pi * freq * t))[None], RATE, "FLOAT")


def render(tmp_path, text, fmt, **kw):
    (tmp_path / "scene.yaml").write_text(textwrap.dedent(text))
    out = tmp_path / "out.wav"
    report = render_scene(tmp_path / "scene.yaml", out, stems_dir=tmp_path, format=fmt, bits="float", **kw)
    return read(out)[0].astype(float), report


def level_db(y):
    return 10 * np.log10((y ** 2).sum(axis=0).mean())


# -- paths --------------------------------------------------------------------------------------

def test_trajectory_passes_its_keyframes_rests_at_the_ends_and_pauses():
    keys = (Keyframe(0, (0, 0, 0), 0), Keyframe(2, (0, 0, 0), 0), Keyframe(5, (3, 6, 0), 90),
            Keyframe(8, (6, 6, 1), 90))
    tr = Trajectory(keys, (0, 0, 0))
    p, yaw = tr(np.array([-1.0, 0, 2, 5, 8, 9]))
    np.testing.assert_allclose(p, [[0, 0, 0], [0, 0, 0], [0, 0, 0], [3, 6, 0], [6, 6, 1], [6, 6, 1]], atol=1e-12)
    np.testing.assert_allclose(yaw, [0, 0, 0, 90, 90, 90])
    t = np.linspace(0, 8, 8001)
    p, yaw = tr(t)
    assert np.abs(p[t <= 2]).max() == 0  # the pause stays still
    # no overshoot: every coordinate stays between its keyframes
    assert p[:, 1].max() <= 6 + 1e-12 and p[:, 2].min() >= -1e-12 and yaw.max() <= 90 + 1e-12
    v = np.linalg.norm(np.diff(p, axis=0), axis=1) * 1000  # m/s
    assert v[0] < 1e-3 and v[-1] < 1e-2  # at rest at both ends
    assert np.abs(np.diff(v)).max() < 0.01  # no jump in speed


def test_yaw_turns_the_short_way_and_linear_paths_are_linear():
    tr = Trajectory((Keyframe(0, (0, 0, 0), 170), Keyframe(2, (0, 0, 0), -170)), (0, 0, 0))
    _, yaw = tr(np.linspace(0, 2, 201))
    assert np.ptp(yaw) == pytest.approx(20) and yaw[100] % 360 == pytest.approx(180)
    tr = Trajectory((Keyframe(0, (0, 0, 0), 0), Keyframe(4, (4, 0, 0), -40)), (0, 0, 0), interpolation="linear")
    p, yaw = tr(np.array([1.0, 3.0]))
    np.testing.assert_allclose(p[:, 0], [1, 3])
    np.testing.assert_allclose(yaw, [-10, -30])


# -- the walk test --------------------------------------------------------------------------------

WALK = (ROOT / "tests/data/scenes/walk_to_tone.yaml").read_text()
ROOM = "room: {dimensions: [10, 14, 4], rt60: 0.6}\n"


@pytest.mark.parametrize("fmt", ["4+7+0", "binaural"])
@pytest.mark.parametrize("room", [False, True], ids=["free-field", "room"])
def test_walking_towards_a_tone(tmp_path, fmt, room):
    """From 10 m to 1 m: the direct sound rises by 20 dB, and no block boundary clicks."""
    sine(tmp_path, "tone", 9.0)
    text = WALK + (ROOM if room else "")
    y, _ = render(tmp_path, text, fmt)
    for doppler in ((True, False) if not room else (True,)):
        if not doppler:
            y, _ = render(tmp_path, text, fmt, doppler=False)
        start, end = y[:, int(0.5 * RATE):RATE], y[:, int(7.8 * RATE):int(8.8 * RATE)]
        if not room:  # free field: the level is the direct path's
            assert level_db(end) - level_db(start) == pytest.approx(20.0, abs=1.0)
        # no sample steps further than the tone itself does: a sinusoid of amplitude A (its Hilbert
        # envelope) steps at most 2 A sin(pi f / rate), f Doppler-shifted at walking speed (at most
        # 1.5 x the mean 1.5 m/s of this path); in a room, where direct sound and reflections
        # interfere, against the loudest the tone gets in that channel, in free field at every sample
        x = y[:, int(0.2 * RATE):int(8.8 * RATE)]
        envelope = np.abs(scipy.signal.hilbert(x, axis=1))[:, 1:]
        envelope[:, :RATE // 10] = envelope[:, -RATE // 10:] = 0  # the Hilbert transform's edges
        step = 2 * np.sin(np.pi * TONE * (1 + 2.25 / SPEED_OF_SOUND) / RATE)
        jumps = np.abs(np.diff(x, axis=1))
        assert np.all(jumps.max(axis=1) <= step * envelope.max(axis=1) * 1.01)
        if not room:
            heard = envelope > 1e-3 * envelope.max()
            assert (jumps[heard] / (step * envelope[heard])).max() < 1.01
            steady = np.abs(np.diff(end, axis=1)).max()  # and never more than the steady tone at 1 m
            assert jumps.max() <= steady * (1 + 2.25 / SPEED_OF_SOUND) * 1.01
        # nothing broadband anywhere, block boundaries included: outside the tone, < -60 dB
        # (from 0.2 s on: the tone's own start is a click of the stem, not of the renderer)
        assert out_of_tone_db(y[:, int(0.2 * RATE):int(8.8 * RATE)], RATE, TONE) < -60, doppler


def test_doppler_follows_the_speed_and_can_be_turned_off(tmp_path):
    sine(tmp_path, "tone", 7.0)
    text = """
    objects:
      - {stem: tone, position: [0, 20, 0]}
    listener:
      interpolation: linear
      path: [{time: 0, position: [0, 0, 0]}, {time: 6, position: [0, 18, 0]}]
    """
    for doppler, expected in ((True, TONE * (1 + 3.0 / SPEED_OF_SOUND)), (False, TONE)):
        y, _ = render(tmp_path, text, "0+5+0", doppler=doppler)
        x = y[2, 2 * RATE:5 * RATE]  # the centre speaker, at a steady 3 m/s
        phase = np.unwrap(np.angle(scipy.signal.hilbert(x)))[RATE // 10:-RATE // 10]
        freq = np.polyfit(np.arange(len(phase)) / RATE, phase, 1)[0] / (2 * np.pi)
        assert freq == pytest.approx(expected, abs=0.05)


def test_direction_follows_the_walk_and_the_turn(tmp_path):
    """Walking past a source at 4+7+0, then turning left: the energy vector follows the source's
    direction as seen from the moving, turning head."""
    rng = np.random.default_rng(3)
    write(tmp_path / "noise.wav", 0.1 * rng.standard_normal((1, 10 * RATE)), RATE, "FLOAT")
    text = """
    objects:
      - {stem: noise, position: [3, 10, 0]}
    listener:
      interpolation: linear
      path:
        - {time: 0, position: [0, 0, 0], yaw: 0}
        - {time: 6, position: [0, 18, 0], yaw: 0}
        - {time: 9, position: [0, 18, 0], yaw: 90}
    render: {propagation_delay: false}
    """
    y, _ = render(tmp_path, text, "4+7+0")
    layout = get_layout("4+7+0")
    scene = load_scene(tmp_path / "scene.yaml")
    tr = Trajectory(scene.listener.path, scene.listener.position, interpolation="linear")
    target = get_target("4+7+0")
    for t in np.arange(0.25, 9, 0.5):
        pos, yaw = tr(np.array([t]))
        rel = rotate_yaw(np.array([3, 10, 0]) - pos[0], -yaw[0])
        # what the panner gives a still source there (the panner's own energy-vector error included)
        expected = energy_vector_azimuth(target.gains(rel[None])[0] ** 2, layout)
        got = energy_vector_azimuth((y[:, int((t - 0.05) * RATE):int((t + 0.05) * RATE)] ** 2).sum(axis=1), layout)
        assert abs((got - expected + 180) % 360 - 180) < 3, t
        geometric = np.degrees(np.arctan2(-rel[0], rel[1]))
        assert abs((got - geometric + 180) % 360 - 180) < 15, t


def test_a_moving_source_uses_the_same_mechanism(tmp_path):
    sine(tmp_path, "tone", 9.0)
    text = """
    objects:
      - stem: tone
        position: [0, 10, 0]
        path: [{time: 1, position: [0, 10, 0]}, {time: 7, position: [0, 1, 0]}]
    """
    y, report = render(tmp_path, text, "binaural")
    assert level_db(y[:, int(7.8 * RATE):int(8.8 * RATE)]) - level_db(y[:, RATE // 2:RATE]) == pytest.approx(
        20.0, abs=1.0)
    assert report["moving"] and report["objects"][0]["moves"]


# -- the orchestra ------------------------------------------------------------------------------

def test_walking_up_to_the_flute(tmp_path):
    """Every section of the orchestra preset plays its own tone; walking from the stalls onto the
    stage in front of the flutes, the flutes' share of what is heard keeps rising."""
    scene = load_scene(ROOT / "layouts/scenes/orchestra.yaml")
    stems = [o.stem for o in scene.objects]
    freqs = {s: 300.0 + 150.0 * k for k, s in enumerate(stems)}
    for s in stems:
        sine(tmp_path, s, 10.0, freqs[s], 0.05)
    (tmp_path / "walk.yaml").write_text(
        "path:\n  - {time: 0, position: [16.0, 20.0, 1.2]}\n  - {time: 1, position: [16.0, 20.0, 1.2]}\n"
        "  - {time: 6, position: [15.6, 31.0, 1.2]}\n  - {time: 9, position: [15.0, 37.4, 2.2]}\n")
    out = tmp_path / "walk.wav"
    report = render_scene(ROOT / "layouts/scenes/orchestra.yaml", out, stems_dir=tmp_path, format="7.1.4",
                          bits="float", walk=tmp_path / "walk.yaml")
    assert report["moving"] and report["room"] is not None
    y = read(out)[0].astype(float)
    shares = []
    for start in np.arange(0.0, 10.0, 1.0):
        seg = y[:, int(start * RATE):int((start + 1) * RATE)] * np.hanning(RATE)
        spec = (np.abs(np.fft.rfft(seg, axis=1)) ** 2).sum(axis=0)  # 1 Hz bins
        tones = {s: spec[int(f) - 20:int(f) + 21].sum() for s, f in freqs.items()}
        shares.append(tones["flutes"] / sum(tones.values()))
        last = tones
    shares = 10 * np.log10(shares)
    # from one of sixteen (-12 dB) to the loudest section, over the hall's reverberation of all sixteen
    assert shares[0] == pytest.approx(-12.0, abs=1.5)
    assert shares[-1] - shares[0] > 6
    assert max(last, key=last.get) == "flutes"
    assert np.all(np.diff(shares) > -1.0)  # rising all the way (within the hall's fluctuation)


# -- scene files and the command line --------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    ("path: [{time: 0, position: [1, 1, 1]}, {time: 0, position: [2, 1, 1]}]",
     r"path\[1\]\.time: must be later than the previous keyframe's 0 s"),
    ("path: [{time: 0, position: [1, 1]}]", r"path\[0\]\.position: must be a list of 3 numbers"),
    ("path: [{time: 0, position: [1, 1, 1], pitch: 3}]", r"path\[0\]\.pitch: unknown key"),
    ("walk: []", r"walk: unknown key"),
    ("path: []", r"path: must have at least 1 item"),
    ("path: [{time: -1, position: [1, 1, 1]}]", r"path\[0\]\.time: must be"),
])
def test_walk_files_are_validated(tmp_path, text, message):
    (tmp_path / "walk.yaml").write_text(text + "\n")
    with pytest.raises(UpmixError, match=message) as info:
        load_path(tmp_path / "walk.yaml")
    assert str(info.value).startswith(str(tmp_path / "walk.yaml"))


def test_walk_positions_are_checked_against_the_room(tmp_path):
    (tmp_path / "walk.yaml").write_text("path: [{time: 0, position: [1, 1, 1]}, {time: 2, position: [1, 50, 1]}]\n")
    scene = load_scene(ROOT / "layouts/scenes/orchestra.yaml")
    with pytest.raises(UpmixError, match=r"path\[1\]\.position: \(1, 50, 1\) is outside the room"):
        load_path(tmp_path / "walk.yaml", scene.room)


def test_object_paths_are_validated(tmp_path):
    (tmp_path / "s.yaml").write_text("objects:\n  - {stem: a, position: [0, 1, 0], "
                                     "path: [{time: 0, position: [0, 1, 0], yaw: 3}]}\n")
    with pytest.raises(UpmixError, match=r"objects\[0\]\.path\[0\]\.yaw: unknown key"):
        load_scene(tmp_path / "s.yaml")


def test_walk_command(tmp_path):
    sine(tmp_path, "tone", 2.0)
    (tmp_path / "scene.yaml").write_text("objects:\n  - {stem: tone, position: [2, 6, 1.5]}\n"
                                         "listener: {position: [2, 1, 1.5]}\n"
                                         "room: {dimensions: [4, 8, 3], rt60: 0.4}\n")
    (tmp_path / "walk.yaml").write_text("path: [{time: 0, position: [2, 1, 1.5]}, {time: 2, position: [2, 5, 1.5]}]\n")
    out = tmp_path / "w.wav"
    proc = run_cli("walk", tmp_path / "scene.yaml", "--stems", tmp_path, "-o", out)
    assert proc.returncode == 2 and "no listener path" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    proc = run_cli("walk", tmp_path / "scene.yaml", "--stems", tmp_path, "--walk", tmp_path / "walk.yaml",
                   "-o", out, "-f", "binaural")
    assert proc.returncode == 0, proc.stderr
    info = soundfile.info(out)
    assert info.channels == 2 and info.frames > 2 * RATE
    proc = run_cli("walk", tmp_path / "scene.yaml", "--stems", tmp_path, "--walk", tmp_path / "nope.yaml", "-o", out)
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr


def test_the_walkthrough_example_loads():
    scene = load_scene(ROOT / "layouts/scenes/orchestra.yaml")
    keys = load_path(ROOT / "examples/walkthrough/walk.yaml", scene.room)
    assert keys[0].position[1] < 5 and keys[-1].position[1] > 32  # from the back of the hall onto the stage
    flutes = next(o for o in scene.objects if o.stem == "flutes")
    assert np.linalg.norm(np.subtract(keys[-1].position, flutes.position)) < 1.5

