"""The one General MIDI program table: every view of it agrees with it."""

from training import freepats, generaluser, samples, synthetic
from training.data import FAMILIES
from training.programs import PROGRAMS, TABLE


def test_one_row_per_program_and_family_order():
    assert len({p.number for p in TABLE}) == len(TABLE)
    assert tuple(PROGRAMS) == FAMILIES


def test_stand_ins_are_programs_of_the_same_family():
    family = {p.number: p.family for p in TABLE}
    for bank in (freepats, generaluser):
        for program, stand_in in bank.STAND_INS.items():
            assert family[stand_in] == family[program], (bank.SET_NAME, program)
            assert stand_in not in bank.STAND_INS, (bank.SET_NAME, program)


def test_the_synths_views_cover_every_program():
    numbers = {p.number for p in TABLE}
    assert set(samples.INSTRUMENT_OF_PROGRAM) == set(synthetic.KIND_OF_PROGRAM) == numbers
