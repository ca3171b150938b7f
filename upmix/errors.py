"""The error type for bad input: the CLI prints it as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path

OPTION = "{option}"
"""Where a message names the setting it is about (`UpmixError.option`)."""


class UpmixError(Exception):
    """A problem with something the user gave us (a file, an option, a scene).

    Args:
        message: what is wrong, in one line; a setting it is about is written as the literal text
            ``{option}`` (replaced, never formatted: messages may hold user text with braces).
        path: the file it concerns, if any; it is printed first.
        option: the library's key of that setting (a parameter name such as ``width`` or
            ``true_peak``): ``str(exc)`` names it so, a front end by its own name (`text`).
    """

    def __init__(self, message: str, path: str | Path | None = None, *, option: str | None = None) -> None:
        self.option = option
        self.path = None if path is None else str(path)
        self._template = message
        self.message = self._named(option)
        super().__init__(self.message)

    def _named(self, name: str | None) -> str:
        return self._template if self.option is None else self._template.replace(OPTION, name or self.option)

    def about(self, path: str | Path) -> UpmixError:
        """This error naming `path`, unless it already names a file (its option kept)."""
        return self if self.path is not None else UpmixError(self._template, path, option=self.option)

    def text(self, option_name: str | None = None) -> str:
        """The error as one line, path first, the option called `option_name` (e.g. a CLI's
        ``--width``) instead of its key; with None as `str(exc)`."""
        message = self._named(option_name)
        return f"{self.path}: {message}" if self.path else message

    def __str__(self) -> str:
        return self.text()
