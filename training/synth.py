"""`Synth`: what the excerpt maker asks of each of the five players (`data.PartSynth`,
`samples.SampleSynth`, `synthetic.FamilySynth`, `sonivox.EasSynth`, `freepats.PatchSynth`)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Synth(Protocol):
    """Plays a part's note list with one bank (a SoundFont, a sample set, modelled instruments, ...).

    Attributes:
        sample_rate: of the parts it plays, Hz.
        name: the bank's name in excerpt descriptions (a SoundFont's file name or a set's `SET_NAME`).
    """

    sample_rate: int
    name: str

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32: notes at `onsets` for `durations` seconds, MIDI `pitches`,
        velocities 1-127, General MIDI `program` (0-based)."""
        ...
