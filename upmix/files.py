"""Atomic file output: write beside the target under a temporary name, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UpmixError


def temporary_sibling(path: Path) -> Path:
    """Create an empty temporary file in `path`'s folder, with the permissions a new file gets
    under the current umask, and return its path. Raises UpmixError if the folder is unusable."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UpmixError(f"output folder {str(folder)!r} does not exist", path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise UpmixError(f"cannot write here: {exc.strerror}", path) from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    return Path(tmp)
