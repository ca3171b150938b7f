"""The shipped orchestra model on held-out music rendered by the training data pipeline."""

import numpy as np
import pytest

from banks import require_fluidsynth
from upmix.separation.orchestra import OrchestraSeparator


def test_shipped_model_separates_held_out_music():
    """Held-out chorales (test split) played by the SoundFonts kept out of training: the shipped
    model's stems are closer to the true families than the mixture is by more than 1 dB (mean
    SI-SDR improvement; what each set of weights measured here: docs/experiments.md;
    `benchmarks/separation_quality.py` measures it on the whole test split)."""
    require_fluidsynth()
    pytest.importorskip("music21")
    from music21 import corpus

    from training.data import (
        FAMILIES,
        Augment,
        ExcerptMaker,
        Work,
        _parse,
        find_soundfonts,
        si_sdr_improvements,
        split_of,
    )

    paths = sorted(str(p) for p in corpus.getCorePaths() if "/bach/bwv" in str(p) and str(p).endswith(".mxl"))
    paths = [p for p in paths if split_of(p.split("/corpus/", 1)[-1]) == "test"][:6]
    works = [Work(i, tuple(parts)) for p in paths for i, parts in _parse(p)]
    sep = OrchestraSeparator(device="cpu")
    gains = []
    for font in find_soundfonts("test"):
        maker = ExcerptMaker(works, [font], 6.0, Augment.none(), seed=11)
        for _ in range(6):
            mix, stems, _ = maker.make()
            est = sep.separate(mix, 22050)
            gains += si_sdr_improvements([est[f] for f in FAMILIES], mix, stems).values()
    print(f"mean SI-SDR improvement on {len(gains)} stems: {np.mean(gains):.2f} dB")
    assert np.mean(gains) > 1.0, np.mean(gains)
