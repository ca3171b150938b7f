"""The General MIDI programs the training excerpts play, and where Debian installs the banks that
play them (a module of its own, below `data` and the banks' modules, which all read it)."""

from __future__ import annotations

from pathlib import Path

PROGRAMS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "strings": ((40, 55, 100), (41, 48, 88), (42, 36, 76), (43, 28, 67), (44, 36, 96), (45, 36, 91),
                (48, 36, 96), (49, 36, 96)),
    "woodwinds": ((68, 58, 91), (69, 52, 81), (70, 34, 75), (71, 50, 91), (72, 74, 105), (73, 60, 96),
                  (74, 60, 96), (64, 56, 87), (65, 49, 81), (66, 44, 76), (67, 36, 69)),
    "brass": ((56, 54, 86), (57, 40, 72), (58, 28, 58), (59, 54, 82), (60, 41, 77), (61, 36, 84)),
    "other": ((0, 21, 108), (1, 21, 108), (6, 29, 89), (8, 60, 108), (11, 53, 89), (12, 45, 96),
              (13, 65, 108), (19, 24, 96), (20, 36, 96), (24, 40, 83), (46, 24, 103), (47, 38, 57),
              (52, 40, 84), (53, 40, 84)),
}
"""General MIDI programs (0-based) of each family with the MIDI pitch range they sound well in:
(program, lowest, highest)."""

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
"""Where Debian installs SoundFonts."""
