"""Speaker layouts as data: names, aliases, masks, user files and validation."""

import numpy as np
import pytest

from upmix.errors import UpmixError
from upmix.layouts import get_layout, layout_for_mask, list_layouts, load_layout_file

MASKS = {"0+2+0": 0x3, "0+5+0": 0x60F, "2+5+0": 0x560F, "4+5+0": 0x2D60F, "0+7+0": 0x63F,
         "4+7+0": 0x2D63F, "4+9+0": 0x2D6FF, "9+10+3": 0x0}


@pytest.mark.parametrize("name,mask", MASKS.items())
def test_masks_and_channel_order(name, mask):
    layout = get_layout(name)
    assert layout.channel_mask == mask
    bits = [s.wav for s in layout.speakers if s.wav]
    if mask:
        assert len(bits) == layout.num_channels  # every channel carries a bit, in bit order
        assert bin(mask).count("1") == layout.num_channels


@pytest.mark.parametrize("alias,name", [("5.1", "0+5+0"), ("7.1", "0+7+0"), ("7.1.4", "4+7+0"),
                                        ("5.1.4", "4+5+0"), ("5.1.2", "2+5+0"), ("22.2", "9+10+3"),
                                        ("stereo", "0+2+0"), ("9.1.4", "4+9+0"), ("4+7+0", "4+7+0")])
def test_aliases(alias, name):
    assert get_layout(alias).name == name


def test_bs2051_channel_sets():
    assert get_layout("7.1.4").channel_names == ["M+030", "M-030", "M+000", "LFE1", "M+135", "M-135",
                                                  "M+090", "M-090", "U+045", "U-045", "U+135", "U-135"]
    assert get_layout("5.1").channel_names == ["M+030", "M-030", "M+000", "LFE1", "M+110", "M-110"]
    l22 = get_layout("22.2")
    assert l22.num_channels == 24 and list(l22.lfe_indices) == [3, 9]


def test_layout_for_mask():
    assert layout_for_mask(0x2D63F, 12).name == "4+7+0"
    assert layout_for_mask(0x60F, 6).name == "0+5+0"
    assert layout_for_mask(0x3F, 6) is None


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(UpmixError, match=r"unknown speaker layout '6\.9'.*7\.1\.4"):
        get_layout("6.9")


USER_LAYOUT = """\
name: my-5.1
aliases: [living-room]
speakers:
  - {name: M+030, azimuth: 28, elevation: 0, wav: FL}
  - {name: M-030, azimuth: -32, elevation: 0, wav: FR}
  - {name: M+000, azimuth: 0, elevation: 0, wav: FC}
  - {name: LFE1, lfe: true, wav: LFE}
  - {name: M+110, azimuth: 118, elevation: 5, wav: SL}
  - {name: M-110, azimuth: -121, elevation: 5, wav: SR}
"""


def test_user_layout_file_with_real_angles(tmp_path, monkeypatch):
    path = tmp_path / "my.yaml"
    path.write_text(USER_LAYOUT)
    layout = get_layout(str(path))
    assert layout.name == "my-5.1" and layout.channel_mask == 0x60F
    sl = layout.speakers[4]
    assert (sl.azimuth, sl.elevation, sl.nominal_azimuth, sl.nominal_elevation) == (118, 5, 110, 0)
    monkeypatch.setenv("UPMIX_LAYOUT_PATH", str(tmp_path))
    assert get_layout("living-room").name == "my-5.1"
    assert "my-5.1" in [lay.name for lay in list_layouts()]


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("azimuth: 28", "azimuth: 280"), r"speakers\[0\]\.azimuth: must be between -180 and 180"),
    (lambda t: t.replace("wav: FR", "wav: XX"), r"speakers\[1\]\.wav: must be one of"),
    (lambda t: t.replace("wav: SR", "wav: FC"), r"speakers\[5\]\.wav: .*increasing bit order"),
    (lambda t: t.replace("name: M-030", "name: M+030"), r"speakers\[1\]\.name: duplicate"),
    (lambda t: t.replace("elevation: 0, wav: FC", "elevation: 0, wav: FC, colour: red"),
     r"speakers\[2\]\.colour: unknown key"),
    (lambda t: t.replace("name: my-5.1\n", ""), r"name: is required"),
    (lambda t: t + "  - [1, 2]\n", r"speakers\[6\]: must be a mapping"),
])
def test_layout_validation_names_the_key(tmp_path, edit, message):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(USER_LAYOUT))
    with pytest.raises(UpmixError, match=message) as info:
        load_layout_file(path)
    assert str(path) in str(info.value)


def test_positions_are_unit_vectors():
    for layout in list_layouts():
        np.testing.assert_allclose(np.linalg.norm(layout.positions, axis=1), 1.0)
