"""Speaker layouts as data: ITU-R BS.2051 layouts shipped as YAML, plus the user's own files.

A layout file (``layouts/speakers/*.yaml``) lists speakers in file channel order::

    name: 4+7+0
    aliases: ["7.1.4"]
    speakers:
      - {name: M+030, azimuth: 30, elevation: 0, wav: FL}
      - {name: LFE1, lfe: true, wav: LFE}

`azimuth`/`elevation` are the real speaker angles in degrees (azimuth anticlockwise from the front,
elevation up). Speakers named after BS.2051 (``M+110``, ``U-045``, ``T+000``, ``B+045``, ``M+SC``)
take their nominal angles from the name; other names may give ``nominal_azimuth`` and
``nominal_elevation`` and otherwise use the real angles. The nominal angles decide how the panner
triangulates the layout; the real ones where it puts the sound. `wav` is the WAVE_FORMAT_EXTENSIBLE
speaker bit; speakers with bits come first, in increasing bit order.

Built-in layouts live in the repository's top-level ``layouts/`` folder (package data
``upmix.presets`` when installed); users add their own by passing a file path as the format or by
putting files in a folder listed in the ``UPMIX_LAYOUT_PATH`` environment variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import UpmixError
from .geometry import cartesian
from .validate import Node, load_yaml, quote

WAV_SPEAKER_BITS: dict[str, int] = {
    "FL": 0x1, "FR": 0x2, "FC": 0x4, "LFE": 0x8, "BL": 0x10, "BR": 0x20, "FLC": 0x40, "FRC": 0x80,
    "BC": 0x100, "SL": 0x200, "SR": 0x400, "TC": 0x800, "TFL": 0x1000, "TFC": 0x2000,
    "TFR": 0x4000, "TBL": 0x8000, "TBC": 0x10000, "TBR": 0x20000,
}
"""WAVE_FORMAT_EXTENSIBLE dwChannelMask bits (Microsoft KSAUDIO_SPEAKER_* names, short form)."""

_LAYER_ELEVATION = {"M": 0.0, "U": 30.0, "UH": 45.0, "T": 90.0, "B": -30.0}
_BS2051_NAME = re.compile(r"^(M|UH|U|T|B)([+-])(\d{3}|SC)$")


@dataclass(frozen=True)
class Speaker:
    """One loudspeaker: angles in degrees (azimuth anticlockwise from front, elevation up)."""

    name: str
    azimuth: float = 0.0
    elevation: float = 0.0
    nominal_azimuth: float = 0.0
    nominal_elevation: float = 0.0
    is_lfe: bool = False
    wav: str | None = None


@dataclass(frozen=True)
class Layout:
    """A loudspeaker layout; `speakers` are in file channel order."""

    name: str
    speakers: tuple[Speaker, ...]
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    @property
    def channel_names(self) -> list[str]:
        return [s.name for s in self.speakers]

    @property
    def num_channels(self) -> int:
        return len(self.speakers)

    @cached_property
    def main_indices(self) -> np.ndarray:
        """Indices of the non-LFE channels."""
        return np.array([i for i, s in enumerate(self.speakers) if not s.is_lfe], dtype=int)

    @cached_property
    def lfe_indices(self) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.speakers) if s.is_lfe], dtype=int)

    @property
    def main_speakers(self) -> list[Speaker]:
        return [self.speakers[i] for i in self.main_indices]

    @cached_property
    def positions(self) -> np.ndarray:
        """Unit vectors of the real positions of the non-LFE speakers, shape (n_main, 3)."""
        sp = self.main_speakers
        return cartesian([s.azimuth for s in sp], [s.elevation for s in sp]).reshape(-1, 3)

    @cached_property
    def nominal_positions(self) -> np.ndarray:
        sp = self.main_speakers
        return cartesian([s.nominal_azimuth for s in sp],
                         [s.nominal_elevation for s in sp]).reshape(-1, 3)

    @property
    def channel_mask(self) -> int:
        """WAVE_FORMAT_EXTENSIBLE channel mask (0 where no speaker has a bit)."""
        mask = 0
        for s in self.speakers:
            if s.wav:
                mask |= WAV_SPEAKER_BITS[s.wav]
        return mask

    @property
    def wav_labels(self) -> list[str]:
        """Per-channel label for reports: the WAV speaker name where there is one, else the BS.2051 name."""
        return [s.wav or s.name for s in self.speakers]

    @property
    def display_name(self) -> str:
        return f"{self.name} ({', '.join(self.aliases)})" if self.aliases else self.name


def _nominal_from_name(name: str, azimuth: float) -> tuple[float, float] | None:
    m = _BS2051_NAME.match(name)
    if not m:
        return None
    layer, sign, angle = m.groups()
    if angle == "SC":
        # screen speakers: triangulate as if at 15 or 45 degrees, whichever side of 30 they are
        # (as ITU-R BS.2127 does), so both the nominal and the real triangulation stay valid
        az = 45.0 if abs(azimuth) > 30.0 else 15.0
    else:
        az = float(angle)
    az = -az if sign == "-" else az
    return az, _LAYER_ELEVATION[layer]


def parse_layout(root: Node) -> Layout:
    """Validate a parsed layout document and build the Layout."""
    root.mapping({"name", "aliases", "description", "speakers"})
    name = root.get("name").string()
    aliases = tuple(a.string() for a in root.get("aliases", []).items())
    description = root.get("description", "").value
    speakers: list[Speaker] = []
    seen: set[str] = set()
    bits: list[int] = []
    unassigned_seen = False
    for node in root.get("speakers").items(min_len=1):
        node.mapping({"name", "azimuth", "elevation", "nominal_azimuth", "nominal_elevation",
                      "lfe", "wav"})
        sname = node.get("name").string()
        if sname in seen:
            raise node.get("name").error(f"duplicate speaker name {quote(sname)}")
        seen.add(sname)
        is_lfe = node.get("lfe", False).boolean()
        wav = None
        if node.has("wav"):
            wav = node.get("wav").string(list(WAV_SPEAKER_BITS))
            bit = WAV_SPEAKER_BITS[wav]
            if unassigned_seen or (bits and bit <= bits[-1]):
                raise node.get("wav").error(
                    "speakers with WAV bits must come first, in increasing bit order "
                    f"({', '.join(WAV_SPEAKER_BITS)})")
            bits.append(bit)
        else:
            unassigned_seen = True
        if is_lfe:
            speakers.append(Speaker(name=sname, is_lfe=True, wav=wav))
            continue
        az = node.get("azimuth").number(-180, 180, unit="degrees")
        el = node.get("elevation", 0.0).number(-90, 90, unit="degrees")
        nominal = _nominal_from_name(sname, az) or (az, el)
        naz = node.get("nominal_azimuth", nominal[0]).number(-180, 180, unit="degrees")
        nel = node.get("nominal_elevation", nominal[1]).number(-90, 90, unit="degrees")
        speakers.append(Speaker(name=sname, azimuth=az, elevation=el, nominal_azimuth=naz,
                                nominal_elevation=nel, wav=wav))
    if not any(not s.is_lfe for s in speakers):
        raise root.get("speakers").error("needs at least one speaker that is not an LFE")
    return Layout(name=name, speakers=tuple(speakers), aliases=aliases,
                  description=str(description or ""), source=str(root.file))


def load_layout_file(path: str | Path) -> Layout:
    """Load and validate one layout YAML file."""
    return parse_layout(load_yaml(path))


def presets_dir() -> Path:
    """The folder of shipped presets (``layouts/`` in the repository)."""
    return Path(str(resources.files("upmix.presets")))


def _user_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("UPMIX_LAYOUT_PATH", "").split(os.pathsep) if p]


@lru_cache(maxsize=8)
def _builtin_layouts() -> tuple[Layout, ...]:
    return tuple(load_layout_file(p) for p in sorted((presets_dir() / "speakers").glob("*.yaml")))


def _user_files() -> list[Path]:
    return [p for d in _user_dirs() for p in sorted(d.glob("*.yaml"))]


def list_layouts() -> list[Layout]:
    """Built-in layouts followed by the user's (from ``UPMIX_LAYOUT_PATH``); a bad user file is an
    error naming it."""
    return list(_builtin_layouts()) + [load_layout_file(p) for p in _user_files()]


def _matches(layout: Layout, key: str) -> bool:
    return key == layout.name.lower() or key in (a.lower() for a in layout.aliases)


def get_layout(spec: str) -> Layout:
    """A layout by name (``4+7+0``), alias (``7.1.4``, case-insensitive) or YAML file path.

    Built-in names resolve without reading the user's files; other names look through the files
    on ``UPMIX_LAYOUT_PATH``, skipping bad ones unless no layout matches (then the error names them).
    """
    if spec.endswith((".yaml", ".yml")) or os.sep in spec:
        return load_layout_file(spec)
    key = spec.strip().lower()
    for layout in _builtin_layouts():
        if _matches(layout, key):
            return layout
    user: list[Layout] = []
    bad: list[UpmixError] = []
    for path in _user_files():
        try:
            layout = load_layout_file(path)
        except UpmixError as exc:
            bad.append(exc)
            continue
        if _matches(layout, key):
            return layout
        user.append(layout)
    known = ", ".join(f"{lay.name} ({'/'.join(lay.aliases)})" if lay.aliases else lay.name
                      for lay in (*_builtin_layouts(), *user))
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    skipped = f" (skipped a bad user layout file{more}: {bad[0]})" if bad else ""
    raise UpmixError(f"unknown speaker layout {quote(spec)}{skipped}; known: {known}, or a layout .yaml file")


def layout_for_mask(mask: int, num_channels: int) -> Layout | None:
    """The built-in layout whose channel mask and count match, if any."""
    for layout in _builtin_layouts():
        if mask and layout.channel_mask == mask and layout.num_channels == num_channels:
            return layout
    return None


def mask_labels(mask: int, num_channels: int) -> list[str]:
    """Channel labels implied by a WAV channel mask: speaker bits in order, then ``CH<n>``."""
    labels = [name for name, bit in WAV_SPEAKER_BITS.items() if mask & bit][:num_channels]
    return labels + [f"CH{i + 1}" for i in range(len(labels), num_channels)]
