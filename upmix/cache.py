"""A disk cache for arrays that are slow to compute and never change for the same input
(prepared HRTF sets, refined Ambisonic decoders).

Entries are ``.npz`` files in `cache_dir`, named by a digest of everything the result depends on.
A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """Where prepared data is kept between runs: $UPMIX_CACHE, else $XDG_CACHE_HOME/upmix or
    ~/.cache/upmix."""
    if os.environ.get("UPMIX_CACHE"):
        return Path(os.environ["UPMIX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "upmix"


def cached_arrays(kind: str, key: bytes, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays `compute()` returns for `key`, from the cache when an entry is there.

    Args:
        kind: a name for the entry's file (``hrtf``, ``decoder``).
        key: bytes that identify the result completely (inputs and the computation's version).
        compute: makes the arrays when the cache has none.
    """
    path = cache_dir() / f"{kind}-{hashlib.sha1(key).hexdigest()[:16]}.npz"
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, KeyError, ValueError):
        pass
    arrays = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    return arrays
