"""Reading YAML data files with error messages that name the file and the key path.

`Node` wraps one value of a parsed document together with its key path (``objects[2].position``),
so every check can say exactly where the problem is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import UpmixError

_MISSING = object()


def load_yaml(path: str | Path) -> Node:
    """Parse a YAML file with ``yaml.safe_load`` and return its root node."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UpmixError("file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UpmixError(f"cannot read: {exc}", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UpmixError(f"not valid YAML{where}: {problem}", path) from None
    return Node(data, path, "")


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
                    raise Node(None, self.file, self._child(str(key))).error(
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
            if math.isinf(hi):
                bound = f"greater than {lo:g}{unit}" if lo_open else f"at least {lo:g}{unit}"
            else:
                bound = f"between {lo:g} and {hi:g}{unit}"
            raise self.error(f"must be {bound}, got {v:g}")
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
            raise self.error(f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"must be true or false, not {_kind(self.value)}")
        return self.value

    def vector(self, n: int = 3) -> tuple[float, ...]:
        """A list of `n` finite numbers."""
        if not isinstance(self.value, list) or len(self.value) != n:
            raise self.error(f"must be a list of {n} numbers, not {_kind(self.value)}")
        return tuple(node.number() for node in self.items())


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value:g}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
