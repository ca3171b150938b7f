"""The five synths all play parts the way `Synth` says."""

import inspect

import numpy as np
import pytest

from training.data import PartSynth
from training.freepats import PatchSynth
from training.samples import SampleSynth
from training.sonivox import EasSynth
from training.synth import Synth
from training.synthetic import FamilySynth


@pytest.mark.parametrize("cls", [PartSynth, SampleSynth, FamilySynth, EasSynth, PatchSynth])
def test_every_synth_plays_as_the_protocol_says(cls):
    assert inspect.signature(cls.play) == inspect.signature(Synth.play)


def test_a_modelled_synth_is_a_synth():
    synth: Synth = FamilySynth(22050, seed=0)
    part = synth.play(np.array([0.0]), np.array([0.5]), np.array([60]), np.array([100]), 40, 22050)
    assert part.shape == (22050,) and synth.name and synth.sample_rate == 22050
