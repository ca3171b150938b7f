"""The structure of the code: the runtime never imports the training package, neither `upmix/` nor
`training/` has an import cycle, imports point down the layers of DESIGN.md, no private name crosses
modules, and no block of six code lines is repeated in `upmix/`."""

import ast
import json
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = ("upmix", "training")
EXAMPLE = "examples/string_quartet/quartet_stereo.flac"

# Runs upmix.cli.main with the given arguments and prints, at exit, the sorted names of the imported
# modules as a JSON line (atexit: the command's own sys.exit does not skip it)
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules))))
sys.argv = ["upmix", *sys.argv[1:]]
import upmix.cli
if len(sys.argv) > 1:
    upmix.cli.main()
"""


def imported_modules(*args: str, cwd: Path) -> list[str]:
    """The modules a process has imported when `upmix ARGS` (or only ``import upmix.cli``) ends."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES "))


def training_modules(names: list[str]) -> list[str]:
    return [n for n in names if n == "training" or n.startswith("training.")]


@pytest.mark.parametrize("args", [(), ("run", EXAMPLE, "-f", "7.1.4"),
                                  pytest.param(("run", EXAMPLE, "-f", "7.1.4", "--separator", "orchestra"),
                                               marks=pytest.mark.slow)],
                         ids=["import", "run", "run-orchestra"])
def test_the_runtime_imports_nothing_from_training(args, tmp_path):
    """``import upmix.cli`` and whole ``upmix run``s of the bundled example (the default separator and
    the orchestra model, whose weights the training exports) leave no `training` module loaded."""
    if args:
        args = (*args, "-o", str(tmp_path / "out.wav"))
    names = imported_modules(*args, cwd=ROOT)
    assert "upmix.cli" in names and training_modules(names) == []
    if args:
        assert (tmp_path / "out.wav").is_file()
        assert ("upmix.separation.orchestra" in names) == ("orchestra" in args)


def test_info_and_a_plain_render_do_not_import_torch(tmp_path):
    """`upmix info` and a render without a room or movement need no torch: importing it costs about
    1.5 s a command here, which the AmbiX decoder's eager import once added to every render."""
    scene = tmp_path / "scene.yaml"
    scene.write_text("objects:\n  - {stem: violin_1, position: [0, 2, 0]}\n")
    for args in [("info", EXAMPLE),
                 ("render", str(scene), "--stems", str(ROOT / "examples/string_quartet/stems"), "-f", "5.1",
                  "-o", str(tmp_path / "out.wav"), "-q")]:
        assert "torch" not in imported_modules(*args, cwd=ROOT), args[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(packages=PACKAGES) -> dict[str, set[str]]:
    """{module: the modules of `packages` it imports}, from every import statement of every module of
    the packages (those inside functions too), relative ones resolved; ``from P import N`` counts as
    importing the module ``P.N`` where there is one, else ``P``."""
    files = {module_name(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here if node.level else ""
                source = ".".join(x for x in (base, node.module) if x)
                targets |= {f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def test_the_import_graph_sees_relative_and_function_level_imports():
    """The walker finds what the cycle check relies on: relative imports, at the top and inside
    functions, and ``from P import NAME`` of a name that is not a module (an edge to ``P``)."""
    graph = import_graph()
    assert "upmix.separation.orchestra" in graph["upmix.separation"]  # `from .orchestra import` in a function
    assert "upmix.io" in graph["upmix.separation.base"]  # `from ..io import`
    assert "upmix.separation.model" in graph["upmix.separation.base"]  # inside a function
    assert "upmix" in graph["upmix.jobs.output"]  # `from .. import __version__`


def test_no_import_cycles():
    """Neither package, nor the two together, has an import cycle (there was one: data -> freepats ->
    sharing -> data)."""
    graph = import_graph()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


LAYERS = (
    ("interface", ("upmix.cli", "upmix.__main__")),
    ("batch", ("upmix.batch",)),
    ("jobs", ("upmix.jobs",)),
    ("seating", ("upmix.seating",)),
    ("separation", ("upmix.separation",)),
    ("stage", ("upmix.stage",)),
    ("mastering and analysis", ("upmix.master", "upmix.analysis")),
    ("render", ("upmix.render",)),
    ("scene", ("upmix.scene",)),
    ("io", ("upmix.io",)),
    ("base", ("upmix.dsp", "upmix.stft", "upmix.pipeline", "upmix.geometry", "upmix.layouts", "upmix.validate",
              "upmix.errors", "upmix.files", "upmix.cache", "allocator", "upmix.allocator", "upmix")),
)
"""The layers of `upmix/`, top first (the map of DESIGN.md): a module imports only from its own
layer and those below it."""


def layer_of(module: str) -> int:
    return next(i for i, (_, prefixes) in enumerate(LAYERS)
                if any(module == p or module.startswith(p + ".") for p in prefixes))


def test_imports_point_down_the_layers():
    """No arrow runs back up: the jobs never import the CLI or the batch, seating imports no job,
    separation imports no seating, the stage geometry nothing above render, render no scene
    seating or separation, io nothing above the base modules."""
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in import_graph(("upmix",)).items() for b in sorted(targets)
              if layer_of(b) < layer_of(a)]
    assert upward == []


def test_no_private_names_cross_modules():
    """No module of the packages imports another module's private (underscored) names: what one
    module needs of another is public there (``moving`` imported ``renderer._DelayedSource``)."""
    crossing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                    crossing += [f"{module_name(path)}: {a.name}" for a in node.names
                                 if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossing == []


def test_runtime_tests_never_import_training():
    """The runtime suite (tests/ outside tests/training/) imports neither `training` nor the training
    tests' helpers, so it runs where the training packages and their Debian banks are absent."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        assert not {n for n in names if n.split(".")[0] in ("training", "banks")}, path.name


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text with white space folded) of the lines of a module that carry code: not
    blank, not comments, not imports, not lone brackets."""
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = " ".join(line.split())
        if text and not text.startswith(("#", "import ", "from ")) and text.strip("()[]{}:,") != "":
            kept.append((number, text))
    return kept


def repeated_blocks(paths: list[Path]) -> list[str]:
    """Where six consecutive code lines (`code_lines`) stand again, in another file or further on
    in the same one: ``file:line repeats file``."""
    seen: dict[tuple[str, ...], tuple[Path, int]] = {}
    repeated = []
    for path in paths:
        lines = code_lines(path)
        for i in range(len(lines) - 5):
            block = tuple(text for _, text in lines[i:i + 6])
            first = seen.setdefault(block, (path, i))
            if first != (path, i) and (first[0] != path or i - first[1] >= 6):  # not an overlap of itself
                repeated.append(f"{path.name}:{lines[i][0]} repeats {first[0].name}")
    return repeated


def test_no_block_of_six_lines_is_repeated_in_upmix():
    """No six consecutive code lines of `upmix/` stand again anywhere in it: one concept, one home."""
    assert repeated_blocks(sorted((ROOT / "upmix").rglob("*.py"))) == []


def test_a_copied_block_is_found(tmp_path):
    body = "".join(f"    x{i} = f(x{i - 1})  # step {i}\n" for i in range(1, 8))
    (tmp_path / "a.py").write_text("import os\n\ndef a(x0):\n" + body + "    return x7\n")
    (tmp_path / "b.py").write_text("def b(x0):\n\n" + body + "    return 0\n")
    (tmp_path / "c.py").write_text("def c(x0):\n" + body[:body.index("x6 =")] + "    return 1\n")
    assert repeated_blocks([tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"]) == [
        "b.py:3 repeats a.py", "b.py:4 repeats a.py"]
