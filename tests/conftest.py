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
