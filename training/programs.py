"""The General MIDI programs the training excerpts play, in one table (`TABLE`), and where Debian
installs the banks that play them. A module of its own, below `data` and the banks' modules, which
all read it: `PROGRAMS` (`data`), `samples.INSTRUMENT_OF_PROGRAM`, `synthetic.KIND_OF_PROGRAM`,
`freepats.STAND_INS` and `generaluser.STAND_INS` are views of `TABLE`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Program:
    """A General MIDI program the excerpts play and how each synth plays it.

    Args:
        number: 0-based General MIDI program.
        name: its General MIDI name.
        family: the stem it belongs to (`data.FAMILIES`).
        low, high: the MIDI pitch range it sounds well in.
        sampled: the tonejs-instruments recording that plays it (`samples.SampleSynth`): the
            instrument itself where the set has it, else one of the same family and a similar range.
        kind: the modelled kind of instrument that plays it (`synthetic.FamilySynth`).
        freepats: the program of the same family that plays it through FreePats, which lacks it or
            must not play it (`freepats.SHARED`); None: itself.
        generaluser: the same for GeneralUser GS (`generaluser.SHARED`).
    """

    number: int
    name: str
    family: str
    low: int
    high: int
    sampled: str
    kind: str
    freepats: int | None = None
    generaluser: int | None = None


TABLE: tuple[Program, ...] = (
    Program(40, "Violin", "strings", 55, 100, "violin", "bowed"),
    Program(41, "Viola", "strings", 48, 88, "violin", "bowed", freepats=40),
    Program(42, "Cello", "strings", 36, 76, "cello", "bowed"),
    Program(43, "Contrabass", "strings", 28, 67, "contrabass", "bowed", freepats=42),
    Program(44, "Tremolo Strings", "strings", 36, 96, "violin", "tremolo"),
    Program(45, "Pizzicato Strings", "strings", 36, 91, "cello", "pizzicato"),
    Program(48, "String Ensemble 1", "strings", 36, 96, "violin", "ensemble"),
    Program(49, "String Ensemble 2", "strings", 36, 96, "cello", "ensemble", freepats=48),
    Program(68, "Oboe", "woodwinds", 58, 91, "clarinet", "reed"),
    Program(69, "English Horn", "woodwinds", 52, 81, "clarinet", "reed", freepats=68),
    Program(70, "Bassoon", "woodwinds", 34, 75, "bassoon", "reed"),
    Program(71, "Clarinet", "woodwinds", 50, 91, "clarinet", "clarinet"),
    Program(72, "Piccolo", "woodwinds", 74, 105, "flute", "flute"),
    Program(73, "Flute", "woodwinds", 60, 96, "flute", "flute", freepats=72, generaluser=72),
    Program(74, "Recorder", "woodwinds", 60, 96, "flute", "flute", freepats=72),
    Program(64, "Soprano Sax", "woodwinds", 56, 87, "saxophone", "sax"),
    Program(65, "Alto Sax", "woodwinds", 49, 81, "saxophone", "sax"),
    Program(66, "Tenor Sax", "woodwinds", 44, 76, "saxophone", "sax"),
    Program(67, "Baritone Sax", "woodwinds", 36, 69, "bassoon", "sax"),
    Program(56, "Trumpet", "brass", 54, 86, "trumpet", "brass"),
    Program(57, "Trombone", "brass", 40, 72, "trombone", "brass"),
    Program(58, "Tuba", "brass", 28, 58, "tuba", "brass", generaluser=57),
    Program(59, "Muted Trumpet", "brass", 54, 82, "trumpet", "muted"),
    Program(60, "French Horn", "brass", 41, 77, "french-horn", "brass"),
    Program(61, "Brass Section", "brass", 36, 84, "french-horn", "section"),
    Program(0, "Acoustic Grand Piano", "other", 21, 108, "piano", "piano"),
    Program(1, "Bright Acoustic Piano", "other", 21, 108, "piano", "piano"),
    Program(6, "Harpsichord", "other", 29, 89, "guitar-acoustic", "pluck", generaluser=0),
    Program(8, "Celesta", "other", 60, 108, "xylophone", "mallet", generaluser=13),
    Program(11, "Vibraphone", "other", 53, 89, "guitar-electric", "mallet", freepats=13),
    Program(12, "Marimba", "other", 45, 96, "harp", "mallet", freepats=13, generaluser=13),
    Program(13, "Xylophone", "other", 65, 108, "xylophone", "mallet"),
    Program(19, "Church Organ", "other", 24, 96, "organ", "organ"),
    Program(20, "Reed Organ", "other", 36, 96, "harmonium", "organ", freepats=19),
    Program(24, "Acoustic Guitar (nylon)", "other", 40, 83, "guitar-nylon", "pluck"),
    Program(46, "Orchestral Harp", "other", 24, 103, "harp", "pluck", freepats=24),
    Program(47, "Timpani", "other", 38, 57, "bass-electric", "timpani"),
    Program(52, "Choir Aahs", "other", 40, 84, "organ", "voice", freepats=53),
    Program(53, "Voice Oohs", "other", 40, 84, "harmonium", "voice", generaluser=52),
)
"""Every program the excerpts play, by family in the order the excerpts draw them (the order is part
of what a seed reproduces)."""

PROGRAMS: dict[str, tuple[tuple[int, int, int], ...]] = {
    family: tuple((p.number, p.low, p.high) for p in TABLE if p.family == family)
    for family in dict.fromkeys(p.family for p in TABLE)
}
"""(program, lowest, highest MIDI pitch) of each family's programs, from `TABLE`."""

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
"""Where Debian installs SoundFonts."""
