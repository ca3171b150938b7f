"""A disk cache for arrays that are slow to compute and never change for the same input
(prepared HRTF sets, refined Ambisonic decoders).

Entries are ``.npz`` files in `cache_dir`, named by a digest of everything the result depends on,
holding the arrays and a SHA-256 digest of their contents. An entry that cannot be read, lacks an
array, holds a non-finite value or does not match its digest is computed again and replaced. A
cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .errors import UpmixError
from .files import temporary_sibling

_DIGEST = "__sha256__"
"""The name of the entry's array that holds the digest of the others (`_digest`)."""


def cache_dir() -> Path:
    """Where prepared data is kept between runs: $UPMIX_CACHE, else $XDG_CACHE_HOME/upmix or
    ~/.cache/upmix."""
    if os.environ.get("UPMIX_CACHE"):
        return Path(os.environ["UPMIX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "upmix"


def _digest(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """SHA-256 (32 uint8) of the arrays' names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), np.uint8)


def _load(path: Path, names: frozenset[str]) -> dict[str, np.ndarray] | None:
    """The entry's arrays, or None when it is missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if set(data.files) != names | {_DIGEST}:
                return None
            arrays = {name: data[name] for name in names}
            stored = data[_DIGEST]
    except Exception:  # a damaged zip raises BadZipFile, EOFError, zlib.error, ValueError, OSError, ...
        return None
    if not np.array_equal(stored, _digest(arrays)) or not all(_finite(a) for a in arrays.values()):
        return None
    return arrays


def _finite(a: np.ndarray) -> bool:
    return not np.issubdtype(a.dtype, np.inexact) or bool(np.isfinite(a).all())


def _store(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the entry atomically (a temporary file unique to this call, then rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(path)
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays, **{_DIGEST: _digest(arrays)})
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except (OSError, UpmixError):
        pass  # a cache that cannot be written is not used


def cached_arrays(kind: str, key: bytes, compute: Callable[[], dict[str, np.ndarray]],
                  names: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays `compute()` returns for `key`, from the cache when a sound entry is there.

    Args:
        kind: a name for the entry's file (``hrtf``, ``decoder``).
        key: bytes that identify the result completely (inputs and the computation's version).
        compute: makes the arrays when the cache has none (or a damaged entry).
        names: the names of the arrays `compute` returns; an entry must hold exactly these.
    """
    path = cache_dir() / f"{kind}-{hashlib.sha1(key).hexdigest()[:16]}.npz"
    names = frozenset(names)
    arrays = _load(path, names)
    if arrays is not None:
        return arrays
    arrays = compute()
    if set(arrays) != names:
        raise ValueError(f"compute() returned {sorted(arrays)}, not {sorted(names)}")
    if all(_finite(a) for a in arrays.values()):
        _store(path, arrays)
    return arrays
