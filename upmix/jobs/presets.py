"""Product presets: the defaults of `upmix run` for a kind of programme (music, film)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UpmixError
from ..io import BitDepth
from ..stage import StageOptions


@dataclass(frozen=True)
class Preset:
    """Defaults of `upmix run` for a kind of programme; options given on the command line win.

    Attributes:
        name: ``music`` or ``film``.
        stage: placement settings.
        lfe: feed the LFE; `lfe_from_ambience` limits it to the ambience (effects) stems' bass.
        lfe_from_ambience: see `lfe`.
        sample_rate: output rate in Hz (None: the input's).
        bits: output sample format.
    """

    name: str
    stage: StageOptions
    lfe: bool = False
    lfe_from_ambience: bool = False
    sample_rate: int | None = None
    bits: BitDepth = BitDepth.PCM_24

    def options(self, width: float | None = None, center: float | None = None,
                ambience_front: float | None = None, fold_back: bool | None = None) -> StageOptions:
        """The preset's placement settings with those given (not None) instead. A share of the
        ambience kept in front is an error where the ambience folds back (its split is then fixed)."""
        given = {"width": width, "center": center, "ambience_front": ambience_front, "fold_back": fold_back}
        stage = replace(self.stage, **{k: v for k, v in given.items() if v is not None})
        if ambience_front is not None and stage.fold_back:
            raise UpmixError("{option} needs the ambience's fold-back off: where the ambience folds back to the "
                             "stereo, the fold-down fixes its front share", option="ambience_front")
        return stage


PRESETS = {
    "music": Preset("music", StageOptions()),
    # film: dialogue (centre-panned direct sound) to the centre speaker, the music's stereo stage
    # widened to +-60 degrees across the front and wide speakers, all ambience and effects to the
    # surrounds and heights (so no fold-back), the LFE from the effects' bass; 48 kHz / 24-bit delivery
    "film": Preset("film", StageOptions(width=60.0, center=1.0, ambience_front=0.0, fold_back=False), lfe=True,
                   lfe_from_ambience=True, sample_rate=48000),
}
"""The presets of ``upmix run --preset``."""


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UpmixError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}") from None
