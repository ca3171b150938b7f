"""Reading YAML data files with error messages that name the file and the key path.

`Node` wraps one value of a parsed document together with its key path (``objects[2].position``),
so every check can say exactly where the problem is.

`load_yaml` is the one place every YAML file is read. It bounds what a file may cost: at most
`MAX_YAML_BYTES` (1 MiB) of text, at most `MAX_YAML_DEPTH` (100) levels of nesting, checked on the
parser's flat event stream before anything recursive runs (libyaml's composer recurses in C, so a
deep document could overflow the C stack, a crash no Python handler catches), and at most
`MAX_YAML_NODES` (1,000,000) nodes once every alias is counted as the whole subtree it repeats, so
an alias bomb ("billion laughs") is refused before anything walks it. Values quoted in messages are
cut to `MAX_QUOTE` characters (`quote`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import UpmixError

MAX_YAML_BYTES = 1 << 20
"""Largest YAML file read, in bytes (1 MiB); scenes, walks and layouts are a few kB."""

MAX_YAML_NODES = 1_000_000
"""Most nodes a YAML document may hold, each alias counted as the full subtree it repeats: more
than a `MAX_YAML_BYTES` file can spell out without aliases."""

MAX_YAML_DEPTH = 100
"""Deepest nesting of sequences and mappings a YAML document may have; a scene needs about 6."""

MAX_QUOTE = 60
"""Longest value, in characters, that a message quotes; a longer one is cut and says its length."""

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
_MISSING = object()


def quote(value: Any) -> str:
    """`value` as it reads in a message: its repr on one line, a string cut to `MAX_QUOTE`
    characters (``'abc'... (5000 characters)``)."""
    if isinstance(value, str) and len(value) > MAX_QUOTE:
        return f"{value[:MAX_QUOTE]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= MAX_QUOTE + 2 else f"{text[:MAX_QUOTE]}..."


def load_yaml(path: str | Path) -> Node:
    """Parse a YAML file with a safe loader and return its root node; files over `MAX_YAML_BYTES`
    and documents over `MAX_YAML_NODES` (aliases expanded) are errors."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise UpmixError(f"too large for a YAML data file (over {MAX_YAML_BYTES // 1024} KiB)", path)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UpmixError("file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UpmixError(f"cannot read: {_clip(str(exc))}", path) from None
    loader = _LOADER(text)
    try:
        _check_depth(text, path)
        root = loader.get_single_node()
        if root is not None:
            _check_size(root, path)
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UpmixError(f"not valid YAML{where}: {_clip(problem)}", path) from None
    except RecursionError:
        raise UpmixError("not valid YAML: nested too deeply", path) from None
    finally:
        loader.dispose()
    return Node(data, path, "")


def _check_depth(text: str, path: Path) -> None:
    """Refuse a document nested deeper than `MAX_YAML_DEPTH`, reading the parser's events (flat,
    no recursion) and stopping at the first level too deep."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                mark = event.start_mark
                raise UpmixError(f"not valid YAML (line {mark.line + 1}, column {mark.column + 1}): "
                                 f"nested deeper than {MAX_YAML_DEPTH} levels", path)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse a composed document that expands to more than `MAX_YAML_NODES` nodes, or that an
    alias makes infinite (an anchor used inside itself)."""
    sizes: dict[int, int] = {}  # id(node) -> expanded size (a shared node is counted once per use)
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise UpmixError("an alias refers to the node that contains it (an endless document)", path)
        open_.add(key)
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise UpmixError(f"aliases expand this document to more than {MAX_YAML_NODES:,} nodes "
                                 "(an alias bomb?)", path)
        open_.discard(key)
        sizes[key] = total
        return total

    size(root)


def _clip(text: str, limit: int = 2 * MAX_QUOTE) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}..."


class Node:
    """A value in a parsed YAML document, with its file and key path."""

    def __init__(self, value: Any, file: Path, path: str) -> None:
        self.value = value
        self.file = file
        self.path = path

    def error(self, message: str) -> UpmixError:
        """An error naming this node's file and key path."""
        where = f"{self.path}: " if self.path else ""
        return UpmixError(f"{where}{message}", self.file)

    def _child(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    # ---- structure -------------------------------------------------------------------------
    def mapping(self, allowed: set[str] | None = None) -> Node:
        """Check that this is a mapping (and has only `allowed` keys); return self."""
        if not isinstance(self.value, dict):
            raise self.error(f"must be a mapping, not {_kind(self.value)}")
        if allowed is not None:
            for key in self.value:
                if key not in allowed:
                    name = str(key)
                    if len(name) > MAX_QUOTE or not name.isprintable():
                        name = quote(key)
                    raise Node(None, self.file, self._child(name)).error(
                        f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return self

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value and self.value[key] is not None

    def get(self, key: str, default: Any = _MISSING) -> Node:
        """Child node `key`; a missing key is an error unless `default` is given."""
        self.mapping()
        if key in self.value and self.value[key] is not None:
            return Node(self.value[key], self.file, self._child(key))
        if default is _MISSING:
            raise Node(None, self.file, self._child(key)).error("is required")
        return Node(default, self.file, self._child(key))

    def items(self, min_len: int = 0) -> Iterator[Node]:
        """Child nodes of a list (at least `min_len` of them)."""
        if not isinstance(self.value, list):
            raise self.error(f"must be a list, not {_kind(self.value)}")
        if len(self.value) < min_len:
            raise self.error(f"must have at least {min_len} item{'s' if min_len != 1 else ''}")
        return (Node(v, self.file, self._child(i)) for i, v in enumerate(self.value))

    # ---- scalars ---------------------------------------------------------------------------
    def number(self, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
               unit: str = "") -> float:
        """A finite real number in [lo, hi] (or (lo, hi] with `lo_open`)."""
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.error(f"must be a number, not {_kind(v)}")
        unit = f" {unit}" if unit else ""
        if v < lo or v > hi or (lo_open and v == lo):
            if lo_open:
                bound = f"greater than {lo:g}" + ("" if math.isinf(hi) else f" and at most {hi:g}")
            elif math.isinf(hi):
                bound = f"at least {lo:g}"
            else:
                bound = f"at most {hi:g}" if math.isinf(lo) else f"between {lo:g} and {hi:g}"
            raise self.error(f"must be {bound}{unit}, got {v:g}")
        return float(v)

    def integer(self, lo: int = -(2 ** 63), hi: int = 2 ** 63) -> int:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"must be an integer, not {_kind(v)}")
        if not lo <= v <= hi:
            raise self.error(f"must be between {lo} and {hi}, got {v}")
        return v

    def string(self, choices: list[str] | None = None) -> str:
        v = self.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)  # YAML reads 7.1 as a float; accept it as the text it was
        if not isinstance(v, str) or not v.strip():
            raise self.error(f"must be a non-empty string, not {_kind(self.value)}")
        if choices is not None and v not in choices:
            raise self.error(f"must be one of {', '.join(choices)}, got {quote(v)}")
        return v

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"must be true or false, not {_kind(self.value)}")
        return self.value

    def vector(self, n: int = 3, lo: float = -math.inf, hi: float = math.inf, unit: str = "") -> tuple[float, ...]:
        """A list of `n` finite numbers, each in [lo, hi]."""
        if not isinstance(self.value, list) or len(self.value) != n:
            raise self.error(f"must be a list of {n} numbers, not {_kind(self.value)}")
        return tuple(node.number(lo, hi, unit=unit) for node in self.items())


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value:g}"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
