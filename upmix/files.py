"""Safe file output: write beside the target under a temporary name, then rename; never over an input."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
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


REWRITE_SUFFIX = ".tagged"
"""Suffix of a second temporary file made from a `temporary_sibling` (a writer's rewrite of it)."""


def temporaries(path: Path, name: str | None = None) -> list[Path]:
    """The temporary siblings (`temporary_sibling`, and their `REWRITE_SUFFIX` rewrites) of
    `path` that a killed writer left, or of every file in its folder whose name matches the
    regular expression `name`. Names are matched whole, so other files' are never taken."""
    name = re.escape(path.name) if name is None else name
    pattern = re.compile(rf"\.(?:{name})\.[a-z0-9_]+(?:\.part|{re.escape(REWRITE_SUFFIX)})")
    folder = path.parent
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(".*") if pattern.fullmatch(p.name))


class OutputExists(UpmixError):
    """An output is already there and the caller did not allow replacing it."""


def refuse_overwriting(outputs: Iterable[Path], inputs: Mapping[str, str | Path | None],
                       overwrite: bool = True) -> None:
    """Raise UpmixError, naming the output and the input, when a job's output is one of its inputs
    (``{what: path}``; None is skipped): the same path once links are resolved, or a hard link to
    the same file. Without `overwrite`, raise OutputExists for an output that already exists.
    Call it before anything is written."""
    outputs = list(map(Path, outputs))
    given = [(what, Path(path)) for what, path in inputs.items() if path is not None]
    for out in outputs:
        for what, path in given:
            if out.resolve() == path.resolve() or (out.exists() and path.exists() and os.path.samefile(out, path)):
                raise UpmixError(f"would overwrite the {what} ({path})", out)
    for out in outputs:
        if not overwrite and (out.exists() or out.is_symlink()):
            raise OutputExists("already exists", out)
