"""The error type for bad input: the CLI prints it as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class UpmixError(Exception):
    """A problem with something the user gave us (a file, an option, a scene).

    Args:
        message: what is wrong, in one line.
        path: the file it concerns, if any; it is printed first.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
