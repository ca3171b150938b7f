"""Hostile scene, walk and layout files (issue 25): YAML bombs, absurd numbers and huge values give
one short line naming the key path, exit status 2 and no output, quickly."""

import os
import subprocess
import sys

import pytest

from test_cli import RATE, assert_clean_failure
from upmix.io import probe, write
from upmix.scene import MAX_OBJECTS
from upmix.validate import load_yaml

TIMEOUT_S = 20
"""Time a failing command may take, start-up included (the machine running the tests may be busy)."""

BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""
"""A billion laughs: 10^8 items once the aliases are expanded."""

LAYOUT = "name: {name}\nspeakers:\n  - {{name: M+030, azimuth: 30}}\n  - {{name: M-030, azimuth: -30}}\n"


def run(*args, env=None):
    """`python -m upmix ARGS` with a time limit (a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "upmix", *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env={**os.environ, **(env or {})})


@pytest.fixture
def stems(tmp_path, rng):
    folder = tmp_path / "stems"
    folder.mkdir()
    write(folder / "a.wav", rng.standard_normal((1, RATE // 10)) * 0.1, RATE, "PCM_24")
    return folder


def render_fails(tmp_path, stems, scene_text, *fragments, args=(), env=None):
    """Render `scene_text`: one line with `fragments`, exit 2, nothing written next to the output."""
    scene = tmp_path / "scene.yaml"
    scene.write_text(scene_text)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = run("render", scene, "--stems", stems, "-o", out_dir / "o.wav", "-f", "5.1", *args, env=env)
    assert_clean_failure(proc, *fragments)
    assert list(out_dir.iterdir()) == []
    return proc.stderr.strip()


# -- item 5: YAML bombs and the size of a YAML file ------------------------------------------------

def test_alias_bomb_in_scene_name(tmp_path, stems):
    text = BOMB.replace("\n", "\n  ").replace("a: &a", "name:\n  a: &a", 1)
    render_fails(tmp_path, stems, text + "\nobjects:\n  - {stem: a, position: [0, 1, 0]}\n",
                 "scene.yaml", "more than 1,000,000 nodes")


def test_alias_bomb_in_layout_file(tmp_path, stems):
    layout = tmp_path / "bomb.yaml"
    layout.write_text(BOMB)
    render_fails(tmp_path, stems, "objects:\n  - {stem: a, position: [0, 1, 0]}\n", "bomb.yaml",
                 "more than 1,000,000 nodes", args=("-f", layout))


@pytest.mark.parametrize("name, fragment", [
    ("&n [*n]", "alias refers to the node that contains it"),
    ("[" * 100_000 + "]" * 100_000, "not valid YAML"),
    ("[" * 101 + "]" * 101, "nested deeper than 100 levels"),
], ids=["self-alias", "deep-nesting", "just-too-deep"])
def test_endless_and_deep_documents(tmp_path, stems, name, fragment):
    render_fails(tmp_path, stems, f"name: {name}\nobjects:\n  - {{stem: a, position: [0, 1, 0]}}\n",
                 "scene.yaml", fragment)


@pytest.mark.parametrize("depth, fragment", [
    (100_000, "not valid YAML"),  # with libyaml 0.2.5's own limit (1000 levels) its scanner speaks first
    (101, "nested deeper than 100 levels"),
], ids=["far-too-deep", "just-too-deep"])
def test_nesting_is_bounded_before_anything_recurses(tmp_path, depth, fragment):
    """The depth is read from the parser's flat event stream before the composer runs: the
    composer recurses in C, and the PyYAML 6.0.3 wheel (its libyaml has no nesting limit) crashed
    with SIGSEGV on a 100,000-deep document in CI, which a Python handler cannot catch."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * depth + "]" * depth + "\n")
    code = ("import sys\nfrom upmix.errors import UpmixError\nfrom upmix.validate import load_yaml\n"
            "try:\n    load_yaml(sys.argv[1])\nexcept UpmixError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(deep)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "deep.yaml" in proc.stdout and fragment in proc.stdout


def test_nesting_of_100_levels_is_read(tmp_path):
    fine = tmp_path / "fine.yaml"
    fine.write_text("[" * 100 + "]" * 100 + "\n")
    value = load_yaml(fine).value
    for _ in range(99):
        value = value[0]
    assert value == []


def test_oversized_yaml_file(tmp_path, stems):
    text = "objects:\n  - {stem: a, position: [0, 1, 0]}\n" + "# padding\n" * 120_000
    render_fails(tmp_path, stems, text, "scene.yaml", "too large", "1024 KiB")


@pytest.fixture
def user_layouts(tmp_path):
    """A UPMIX_LAYOUT_PATH folder with one good layout and one alias bomb."""
    folder = tmp_path / "user_layouts"
    folder.mkdir()
    (folder / "a_bomb.yaml").write_text(BOMB)
    (folder / "mine.yaml").write_text(LAYOUT.format(name="mine"))
    return {"UPMIX_LAYOUT_PATH": str(folder)}


@pytest.mark.parametrize("fmt", ["5.1", "mine"])
def test_bad_user_layout_skipped_when_not_needed(tmp_path, stems, user_layouts, fmt):
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: a, position: [0, 1, 0]}\n")
    proc = run("render", scene, "--stems", stems, "-o", tmp_path / "o.wav", "-f", fmt, env=user_layouts)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.wav").exists()


def test_bad_user_layout_named_when_nothing_matches(tmp_path, stems, user_layouts):
    line = render_fails(tmp_path, stems, "objects:\n  - {stem: a, position: [0, 1, 0]}\n",
                        "unknown speaker layout 'nosuch'", "a_bomb.yaml", "mine", args=("-f", "nosuch"),
                        env=user_layouts)
    assert len(line) < 1000


def test_layouts_command_reports_a_bad_user_layout(user_layouts):
    assert_clean_failure(run("layouts", env=user_layouts), "a_bomb.yaml", "more than 1,000,000 nodes")


# -- item 7: absurd numbers ------------------------------------------------------------------------

ONE = "objects:\n  - {{stem: a, position: {pos}}}\n"
WALK = "objects:\n  - {{stem: a, position: [0, 1, 0]}}\nlistener:\n  path:\n{keys}"


def keys(*frames):
    return "".join(f"    - {{time: {t}, position: {p}}}\n" for t, p in frames)


ABSURD = {
    "position 1e308": (ONE.format(pos="[1.0e+308, 0, 0]"), "objects[0].position[0]", "between -1000 and 1000 m"),
    "position 1e9": (ONE.format(pos="[0, 1000000000, 0]"), "objects[0].position[1]", "1000 m"),
    "position 1e6": (ONE.format(pos="[0, 0, 1000000]"), "objects[0].position[2]", "1000 m"),
    "relative distance 1e6": (ONE.format(pos="{azimuth: 0, distance: 1000000}"), "objects[0].position.distance",
                              "at most 1000 m"),
    "relative position beyond the bound": (
        "listener: {position: [900, 0, 0]}\n" + ONE.format(pos="{azimuth: -90, distance: 500}"),
        "objects[0].position", "beyond 1000 m"),
    "room 1e308": ("listener: {position: [1, 1, 1]}\nroom: {dimensions: [1.0e+308, 10, 10], rt60: 1}\n"
                   + ONE.format(pos="[2, 2, 1]"), "room.dimensions", "at most 100 m"),
    "object path to 1e300": (
        "objects:\n  - stem: a\n    position: [0, 1, 0]\n    path:\n"
        "      - {time: 0, position: [0, 1, 0]}\n      - {time: 1, position: [0, 1.0e+300, 0]}\n",
        "objects[0].path[1].position[1]", "1000 m"),
    "listener 1e6 m in 1 ms": (WALK.format(keys=keys((0, "[0, 0, 0]"), (0.001, "[1000000, 0, 0]"))),
                               "listener.path[1].position[0]", "1000 m"),
    "listener 500 m in 1 ms": (WALK.format(keys=keys((0, "[0, 0, 0]"), (0.001, "[500, 0, 0]"))),
                               "listener.path[1].position", "5e+05 m/s", "at most 100 m/s"),
    "object too fast": (
        "objects:\n  - stem: a\n    position: [0, 1, 0]\n    path:\n"
        "      - {time: 0, position: [0, 1, 0]}\n      - {time: 1, position: [0, 500, 0]}\n",
        "objects[0].path[1].position", "499 m/s"),
    "keyframe time 1e300": (WALK.format(keys=keys((0, "[0, 0, 0]"), ("1.0e+300", "[1, 0, 0]"))),
                            "listener.path[1].time", "between 0 and 86400 s"),
    "reference distance 1e9": (ONE.format(pos="[0, 1, 0]") + "render: {reference_distance: 1000000000}\n",
                               "render.reference_distance", "at most 1000 m"),
    "10,000 objects": ("objects:\n" + "  - {stem: a, position: [0, 1, 0]}\n" * 10_000, "objects:",
                       f"at most {MAX_OBJECTS}"),
}


@pytest.mark.parametrize("case", ABSURD)
def test_absurd_numbers_fail_cleanly(tmp_path, stems, case):
    text, *fragments = ABSURD[case]
    render_fails(tmp_path, stems, text, "scene.yaml", *fragments)


@pytest.mark.parametrize("walk, fragments", [
    (keys((0, "[0, 0, 0]"), (1, "[0, 0, 1000000]")), ("path[1].position[2]", "1000 m")),
    (keys((0, "[0, 0, 0]"), (0.001, "[500, 0, 0]")), ("path[1].position", "at most 100 m/s")),
    (keys((0, "[0, 0, 0]"), ("1.0e+300", "[1, 0, 0]")), ("path[1].time", "86400 s")),
])
def test_walk_file_gets_the_same_bounds(tmp_path, stems, walk, fragments):
    walk_file = tmp_path / "walk.yaml"
    walk_file.write_text("path:\n" + walk)
    render_fails(tmp_path, stems, ONE.format(pos="[0, 1, 0]"), "walk.yaml", *fragments,
                 args=("--walk", walk_file))


def test_bounds_admit_the_extremes(tmp_path, stems):
    """A source and listener at opposite corners of the 2 km cube render (about 10 s of delay)."""
    scene = tmp_path / "scene.yaml"
    scene.write_text("listener: {position: [-1000, -1000, -1000]}\n" + ONE.format(pos="[1000, 1000, 1000]"))
    out = tmp_path / "o.wav"
    proc = run("render", scene, "--stems", stems, "-o", out, "-f", "0+2+0")
    assert proc.returncode == 0, proc.stderr
    assert probe(out).frames == pytest.approx(RATE // 10 + 2000 * 3 ** 0.5 / 343 * RATE, abs=2)


# -- item 13: messages stay one short line ---------------------------------------------------------

def _text_file(n_lines):
    return "".join(f"user{i}:x:{i}:{i}:Some User {i}:/home/user{i}:/bin/sh\n" for i in range(n_lines))


SHORT = 300
"""Longest error line allowed, characters, besides the scene's path."""


@pytest.mark.parametrize("text, extra", [
    (_text_file(200), 0),  # a 10 kB text file of many lines (as /etc/passwd)
    ("'" + "x" * 5000 + "'\n", 0),  # a YAML string of 5000 characters
    ('"' + "line\\n" * 1000 + '"\n', 0),  # a string of many lines
    ("objects:\n  - {stem: '" + "s p" * 2000 + "', position: [0, 1, 0]}\n", 0),
    ("objects:\n  - stem: a\n    position: [0, 1, 0]\n    ? " + "k" * 5000 + "\n    : 1\n", 0),  # a long key
    ("objects:\n  - {stem: a, position: [0, 1, 0], \"a\\nb" + "\\n" * 500 + "\": 1}\n", 0),
    ("objects:\n  - {stem: a, position: [0, 1, 0]}\noutput: {bits: '" + "9" * 5000 + "'}\n", 0),
    # this message lists the known layouts as well
    ("objects:\n  - {stem: a, position: [0, 1, 0]}\noutput: {format: '" + "f" * 5000 + "'}\n", 200),
])
def test_messages_quote_values_briefly(tmp_path, stems, text, extra):
    line = render_fails(tmp_path, stems, text, "scene.yaml")
    assert len(line) - len(str(tmp_path)) < SHORT + extra, line
