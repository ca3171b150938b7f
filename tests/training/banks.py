"""What the training tests need installed: each helper skips without its Debian packages, unless CI
asks for them (``UPMIX_REQUIRE_*=1``, set by ``.ci/run``): then it fails.

A module of its own, not a ``conftest.py``: the tests import their helpers by module name (``from
conftest import ...``), and a second ``conftest`` module would shadow the one in ``tests/``."""

import os

import pytest


def require_fluidsynth():
    """Skip without FluidSynth and the test SoundFonts, unless CI asks for them
    (UPMIX_REQUIRE_FLUIDSYNTH=1): then fail."""
    from training.data import find_soundfonts
    from upmix.errors import UpmixError

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
    from training import sonivox

    _require(sonivox.available(), f"the Sonivox EAS library is missing ({sonivox.INSTALL})", "UPMIX_REQUIRE_SONIVOX")


def require_freepats():
    """Skip without TiMidity++ and the FreePats patches, unless CI asks for them
    (UPMIX_REQUIRE_FREEPATS=1): then fail."""
    from training import freepats

    _require(freepats.available(), f"TiMidity++ or the FreePats patches are missing ({freepats.INSTALL})",
             "UPMIX_REQUIRE_FREEPATS")
