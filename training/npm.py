"""Package tarballs from the npm registry, the one download site the training sound sets use."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from upmix.errors import UpmixError


def tarball_url(package: str, version: str) -> str:
    """The address of a package version's tarball on registry.npmjs.org."""
    return f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz"


def download(url: str, folder: Path) -> bytes:
    """The bytes at `url`; a failure is one `UpmixError` naming the address and `folder`, the
    destination it was fetched for."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as e:
        raise UpmixError(f"cannot download {url} ({e})", folder) from None
