import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_cli(*args, cwd=None, env=None):
    """Run the installed `upmix` command line in a subprocess; returns CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "upmix", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})})


def require_ffmpeg():
    """Skip without ffmpeg, unless CI asks for it (UPMIX_REQUIRE_FFMPEG=1): then fail."""
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return
    if os.environ.get("UPMIX_REQUIRE_FFMPEG") == "1":
        pytest.fail("ffmpeg/ffprobe are required here (UPMIX_REQUIRE_FFMPEG=1) but not installed")
    pytest.skip("ffmpeg not installed")


def require_fluidsynth():
    """Skip without FluidSynth and the test SoundFonts, unless CI asks for them
    (UPMIX_REQUIRE_FLUIDSYNTH=1): then fail."""
    from upmix.errors import UpmixError
    from upmix.separation.data import find_soundfonts

    try:
        import fluidsynth  # noqa: F401

        find_soundfonts("test")
        return
    except (ImportError, OSError, UpmixError) as e:
        _require(False, f"FluidSynth or the test SoundFonts are missing ({e})", "UPMIX_REQUIRE_FLUIDSYNTH")


def _require(present: bool, reason: str, variable: str) -> None:
    """Skip with `reason` unless `present`; fail instead where CI asks for it (`variable`=1)."""
    if present:
        return
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} but {variable}=1")
    pytest.skip(reason)


def require_sonivox():
    """Skip without the Sonivox EAS library, unless CI asks for it (UPMIX_REQUIRE_SONIVOX=1): then fail."""
    from upmix.separation import sonivox

    _require(sonivox.available(), f"the Sonivox EAS library is missing ({sonivox.INSTALL})", "UPMIX_REQUIRE_SONIVOX")


def require_freepats():
    """Skip without TiMidity++ and the FreePats patches, unless CI asks for them
    (UPMIX_REQUIRE_FREEPATS=1): then fail."""
    from upmix.separation import freepats

    _require(freepats.available(), f"TiMidity++ or the FreePats patches are missing ({freepats.INSTALL})",
             "UPMIX_REQUIRE_FREEPATS")
