"""Scene files: presets, coordinate forms, and validation errors that name the key path."""

import textwrap

import numpy as np
import pytest

from upmix.errors import UpmixError
from upmix.geometry import relative_direction
from upmix.layouts import presets_dir
from upmix.scene import SURFACES, load_scene

PRESETS = ["orchestra", "string_quartet", "band", "film"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name):
    scene = load_scene(presets_dir() / "scenes" / f"{name}.yaml")
    assert scene.objects and scene.output.format
    if scene.room is not None:
        assert scene.room.contains(scene.listener.position)
        assert all(scene.room.contains(o.position) for o in scene.objects)


def test_orchestra_seating_is_realistic():
    scene = load_scene(presets_dir() / "scenes" / "orchestra.yaml")
    pos = {o.stem: np.array(o.position) for o in scene.objects}
    families = {"strings": ["violins_1", "violins_2", "violas", "cellos", "basses"],
                "woodwinds": ["flutes", "oboes", "clarinets", "bassoons"],
                "brass": ["horns", "trumpets", "trombones", "tuba"], "percussion": ["timpani", "percussion"]}
    assert set(sum(families.values(), [])) <= set(pos)
    depth = {f: np.mean([pos[s][1] for s in names]) for f, names in families.items()}
    assert depth["strings"] < depth["woodwinds"] < depth["brass"] < depth["percussion"]
    assert pos["violins_1"][0] < pos["flutes"][0] < pos["cellos"][0]  # firsts left, cellos right
    stage = np.array(list(pos.values()))
    assert np.ptp(stage[:, 0]) < 20 and np.ptp(stage[:, 1]) < 12  # fits a concert stage
    az, _, dist = relative_direction(pos["violins_1"], scene.listener.position, scene.listener.yaw)
    assert az > 0 and 10 < dist < 25


def write(tmp_path, text, name="scene.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_polar_positions_are_relative_to_the_listener(tmp_path):
    path = write(tmp_path, """
        objects:
          - {stem: a, position: {azimuth: 30, elevation: 0, distance: 2}}
        listener: {position: [5, 5, 1], yaw: 90}
    """)
    scene = load_scene(path)
    az, el, dist = relative_direction(scene.objects[0].position, (5, 5, 1), 90)
    np.testing.assert_allclose([az, el, dist], [30, 0, 2], atol=1e-9)
    # facing +x... yaw 90 is facing -x (anticlockwise from +y): 30 degrees left of that
    np.testing.assert_allclose(scene.objects[0].position, [5 - 2 * np.cos(np.radians(30)),
                                                           5 - 2 * np.sin(np.radians(30)), 1], atol=1e-9)


def test_full_scene(tmp_path):
    path = write(tmp_path, """
        name: test
        objects:
          - {stem: a, position: [1, 2, 1], gain_db: -6, width: 20, diffuse: true}
          - {file: sub/b.wav, position: [3, 2, 1], name: bee}
        listener:
          position: [2, 1, 1.2]
          path:
            - {time: 0, position: [2, 1, 1.2]}
            - {time: 5, position: [2, 3, 1.2], yaw: 20}
            - {time: 6, position: [2, 3.5, 1.2]}
        room: {dimensions: [4, 5, 3], materials: {walls: brickwork, floor: 0.3, ceiling: plasterboard}}
        output: {format: 5.1, sample_rate: 44100, bits: 16}
    """)
    s = load_scene(path)
    assert s.objects[0].diffuse == 1.0 and s.objects[0].gain_db == -6 and s.objects[0].width == 20
    assert s.objects[1].file == tmp_path / "sub" / "b.wav" and s.objects[1].name == "bee"
    assert [k.yaw for k in s.listener.path] == [0, 20, 20]
    assert s.room.materials["floor"] == 0.3 and s.room.materials["left"] == "brickwork"
    assert set(s.room.materials) == set(SURFACES)
    assert (s.output.format, s.output.sample_rate, s.output.bits) == ("5.1", 44100, "16")


BASE = """
objects:
  - {stem: a, position: [1, 1, 1]}
  - {stem: b, position: [2, 2, 1]}
  - {stem: c, position: [3, 3, 1]}
listener: {position: [2, 1, 1.2], yaw: 0}
room: {dimensions: [10, 8, 4], rt60: 0.8}
"""


@pytest.mark.parametrize("old,new,message", [
    ("[3, 3, 1]", "[30, 3, 1]", r"objects\[2\]\.position: \(30, 3, 1\) is outside the room"),
    ("[3, 3, 1]", "[3, 3]", r"objects\[2\]\.position: must be a list of 3 numbers"),
    ("[3, 3, 1]", "{azimuth: 0, distance: 40}", r"objects\[2\]\.position: puts the object at .* outside the room"),
    ("[3, 3, 1]", "{azimuth: 0, distance: -1}", r"objects\[2\]\.position\.distance: must be greater than 0"),
    ("[3, 3, 1]", "{azimut: 0}", r"objects\[2\]\.position\.azimut: unknown key"),
    ("stem: b,", "stem: b, file: x.wav,", r"objects\[1\]: needs exactly one of 'stem'"),
    ("stem: b,", "stem: ../b,", r"objects\[1\]\.stem: '\.\./b' is not a stem name"),
    ("{stem: a, position: [1, 1, 1]}", "{stem: a, position: [1, 1, 1], gain_db: loud}",
     r"objects\[0\]\.gain_db: must be a number, not the string 'loud'"),
    ("{stem: a, position: [1, 1, 1]}", "{stem: a, position: [1, 1, 1], width: 400}",
     r"objects\[0\]\.width: must be between 0 and 360 degrees, got 400"),
    ("{stem: a, position: [1, 1, 1]}", "{stem: a, position: [1, 1, 1], diffuse: 2}",
     r"objects\[0\]\.diffuse: must be between 0 and 1"),
    ("{stem: a, position: [1, 1, 1]}", "{stem: a}", r"objects\[0\]\.position: is required"),
    ("{stem: a, position: [1, 1, 1]}", "{stem: a, positon: [1, 1, 1]}", r"objects\[0\]\.positon: unknown key"),
    ("rt60: 0.8", "rt60: 0.01", r"room\.rt60: 0\.01 s is too short for a room this size"),
    ("rt60: 0.8", "rt60: 0.8, materials: wood_16mm", r"room: needs exactly one of 'rt60'"),
    ("rt60: 0.8", "materials: unobtainium", r"room\.materials: unknown material 'unobtainium'"),
    ("rt60: 0.8", "materials: {floor: 0.2}", r"room\.materials\.left: is required"),
    ("[10, 8, 4]", "[10, 0, 4]", r"room\.dimensions: every dimension must be greater than 0"),
    ("yaw: 0}", "yaw: 0, path: [{time: 1, position: [1, 1, 1]}, {time: 1, position: [2, 2, 1]}]}",
     r"listener\.path\[1\]\.time: must be later than the previous keyframe's 1 s"),
    ("yaw: 0}", "yaw: 0, path: [{time: 0, position: [1, 1, 9]}]}",
     r"listener\.path\[0\]\.position: .* outside the room"),
    ("[2, 1, 1.2]", "[2, -1, 1.2]", r"listener\.position: \(2, -1, 1\.2\) is outside the room"),
    ("listener: {position: [2, 1, 1.2], yaw: 0}", "", r"listener: is required when the scene has a room"),
    ("room:", "output: {bits: 12}\nroom:", r"output\.bits: must be one of 16, 24, float"),
    ("room:", "colour: red\nroom:", r"colour: unknown key"),
])
def test_errors_name_file_and_key(tmp_path, old, new, message):
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(UpmixError, match=message) as info:
        load_scene(path)
    assert str(info.value).startswith(f"{path}: ")


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "objects:\n  - {stem: a, position: [1, 2, 3]\n")
    with pytest.raises(UpmixError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_scene(path)


def test_no_objects(tmp_path):
    with pytest.raises(UpmixError, match="objects: must have at least 1 item"):
        load_scene(write(tmp_path, "objects: []\n"))
    with pytest.raises(UpmixError, match="objects: is required"):
        load_scene(write(tmp_path, "listener: {position: [0, 0, 0]}\n"))
