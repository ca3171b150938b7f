"""Audio I/O: formats, channel masks read back from the bytes, RF64, resampling, bad input."""

import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from conftest import require_ffmpeg
from upmix import dsp
from upmix.errors import UpmixError
from upmix.io import AudioWriter, BlockReader, probe, read, read_channel_mask, write, writing
from upmix.layouts import get_layout, list_layouts


def mask_from_bytes(path):
    """Independent check: the dwChannelMask of the 'fmt ' chunk, found by scanning the bytes."""
    raw = path.read_bytes()
    i = raw.index(b"fmt ")
    size, tag = struct.unpack("<IH", raw[i + 4:i + 10])
    assert tag == 0xFFFE and size == 40  # WAVE_FORMAT_EXTENSIBLE
    return struct.unpack("<I", raw[i + 28:i + 32])[0]


def noise(rng, channels, frames, level=0.1):
    return (rng.standard_normal((channels, frames)) * level).astype(np.float32)


@pytest.mark.parametrize("subtype,tol", [("PCM_16", 2.5 / 32768), ("PCM_24", 1.0 / 2 ** 23), ("FLOAT", 0.0)])
def test_wav_round_trip(tmp_path, rng, subtype, tol):
    x = noise(rng, 3, 10001)
    write(tmp_path / "x.wav", x, 44100, subtype)
    y, rate = read(tmp_path / "x.wav")
    assert rate == 44100 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= tol
    assert sf.info(str(tmp_path / "x.wav")).subtype == subtype


@pytest.mark.parametrize("layout", [lay.name for lay in list_layouts()])
def test_every_layout_mask_is_in_the_wav_bytes(tmp_path, layout):
    lay = get_layout(layout)
    path = tmp_path / "out.wav"
    write(path, np.zeros((lay.num_channels, 100)), 48000, "PCM_24", lay.channel_mask)
    assert mask_from_bytes(path) == lay.channel_mask
    assert read_channel_mask(path) == lay.channel_mask
    assert sf.info(str(path)).channels == lay.num_channels


@pytest.mark.parametrize("layout", ["0+2+0", "0+5+0", "0+7+0", "2+5+0"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_flac_carries_the_mask(tmp_path, rng, layout, subtype):
    lay = get_layout(layout)
    x = noise(rng, lay.num_channels, 5000)
    path = tmp_path / "out.flac"
    write(path, x, 48000, subtype, lay.channel_mask)
    raw = path.read_bytes()
    assert f"WAVEFORMATEXTENSIBLE_CHANNEL_MASK=0x{lay.channel_mask:04X}".encode() in raw
    assert read_channel_mask(path) == lay.channel_mask
    y, _ = read(path)
    assert np.max(np.abs(y - x)) < (3 / 32768 if subtype == "PCM_16" else 1e-6)


def test_flac_limits(tmp_path):
    with pytest.raises(UpmixError, match="at most 8 channels"):
        AudioWriter(tmp_path / "x.flac", 48000, 12)
    with pytest.raises(UpmixError, match="float"):
        AudioWriter(tmp_path / "x.flac", 48000, 2, "FLOAT")
    assert list(tmp_path.iterdir()) == []


def test_rf64_past_the_riff_limit(tmp_path, rng, monkeypatch):
    """Past 4 GiB the writer switches to RF64 with a ds64 chunk; shown with a lowered limit."""
    monkeypatch.setattr(writing, "RIFF_LIMIT", 4000)
    x = noise(rng, 12, 1000)
    path = tmp_path / "big.wav"
    write(path, x, 48000, "PCM_24", 0x2D63F)
    raw = path.read_bytes()
    assert raw[:4] == b"RF64" and raw[12:16] == b"ds64"
    riff, data, frames = struct.unpack("<QQQ", raw[20:44])
    assert (riff, data, frames) == (len(raw) - 8, 12 * 3 * 1000, 1000)
    assert mask_from_bytes(path) == 0x2D63F
    y, _ = sf.read(str(path), dtype="float32", always_2d=True)
    assert sf.info(str(path)).format == "RF64"
    assert np.max(np.abs(y.T - x)) <= 1 / 2 ** 23
    small = tmp_path / "small.wav"
    monkeypatch.setattr(writing, "RIFF_LIMIT", 0xFFFFFFFF)
    write(small, x, 48000, "PCM_24", 0x2D63F)
    assert small.read_bytes()[:4] == b"RIFF"


def test_odd_data_size_is_padded(tmp_path):
    path = tmp_path / "odd.wav"
    write(path, np.zeros((1, 101)), 48000, "PCM_24")
    assert path.stat().st_size % 2 == 0
    assert sf.info(str(path)).frames == 101


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with AudioWriter(path, 48000, 2) as w:
            w.write(np.zeros((2, 1000)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_16_bit_clipping_is_counted(tmp_path):
    w = write(tmp_path / "c.wav", np.array([[0.5, 1.5, -2.0, 0.1]]), 48000, "PCM_16")
    assert w.clipped == 2


@pytest.mark.parametrize("rates", [(44100, 48000), (48000, 44100), (22050, 48000), (96000, 48000)])
def test_stream_resampler_equals_whole_signal(rng, rates):
    x = rng.standard_normal((2, 50011))
    whole = dsp.resample(x, *rates)
    r = dsp.StreamResampler(*rates)
    parts, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(1, 9000))
        parts.append(r.process(x[:, pos:pos + n]))
        pos += n
    parts.append(r.flush())
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape == (2, -(-50011 * rates[1] // rates[0]))
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("freq", [1000, 15000])
@pytest.mark.parametrize("rates", [(44100, 48000), (48000, 44100)])
def test_resampling_is_clean(freq, rates):
    """Sines resampled match the ideal sine at the new rate to better than -90 dB."""
    t_in = np.arange(rates[0]) / rates[0]
    y = dsp.resample(np.sin(2 * np.pi * freq * t_in)[None], *rates)[0]
    t_out = np.arange(len(y)) / rates[1]
    mid = slice(2000, -2000)
    err = y[mid] - np.sin(2 * np.pi * freq * t_out)[mid]
    assert 10 * np.log10(np.mean(err ** 2) / 0.5) < -90


def test_block_reader_resamples_and_reports_length(tmp_path, rng):
    x = noise(rng, 2, 44100)
    write(tmp_path / "x.wav", x, 44100, "FLOAT")
    reader = BlockReader(tmp_path / "x.wav", block=4096, sample_rate=48000)
    y = np.concatenate(list(reader), axis=1)
    assert y.shape == (2, 48000) == (2, reader.frames)


@pytest.mark.parametrize("fmt,subtype", [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_reads_compressed_formats(tmp_path, fmt, subtype):
    t = np.arange(48000) / 48000
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), np.stack([x, x], 1), 48000, format=fmt, subtype=subtype)
    y, rate = read(path)
    assert rate == 48000 and y.shape[0] == 2
    assert abs(np.sqrt(np.mean(y ** 2)) - 0.3 / np.sqrt(2)) < 0.02


def test_reads_other_formats_through_ffmpeg(tmp_path):
    require_ffmpeg()
    src = tmp_path / "x.wav"
    write(src, 0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)[None], 48000, "PCM_16")
    m4a = tmp_path / "x.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    info = probe(m4a)
    assert info.via_ffmpeg and info.channels == 1 and info.sample_rate == 48000
    y, rate = read(m4a, sample_rate=44100)
    assert rate == 44100 and abs(y.shape[1] - 44100) < 2000
    assert abs(np.sqrt(np.mean(y ** 2)) - 0.3 / np.sqrt(2)) < 0.02


def test_clear_error_without_ffmpeg(tmp_path, monkeypatch):
    path = tmp_path / "x.m4a"
    path.write_bytes(b"\0\0\0\x20ftypM4A " + b"\0" * 200)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UpmixError, match=r"x\.m4a: cannot read \.m4a files without ffmpeg; install ffmpeg"):
        probe(path)


def test_bad_inputs(tmp_path, rng):
    good = tmp_path / "good.wav"
    write(good, noise(rng, 2, 48000), 48000, "PCM_24")
    raw = good.read_bytes()
    (tmp_path / "trunc.wav").write_bytes(raw[:len(raw) // 2])
    (tmp_path / "empty.wav").write_bytes(raw[:raw.index(b"data") + 8])
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    nan = noise(rng, 1, 48000)
    nan[0, 30000] = np.nan
    write(tmp_path / "nan.wav", nan, 48000, "FLOAT")
    cases = {"trunc.wav": "truncated WAV", "empty.wav": "empty", "text.wav": "not a readable audio file",
             "nan.wav": r"NaN or infinite samples \(first at 0\.625 s\)", "missing.wav": "file not found"}
    for name, message in cases.items():
        with pytest.raises(UpmixError, match=message) as info:
            read(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name) + ": ")
    with pytest.raises(UpmixError, match="3 channels; at most 2"):
        write(tmp_path / "three.wav", np.zeros((3, 10)), 48000)
        BlockReader(tmp_path / "three.wav", max_channels=2)
    with pytest.raises(UpmixError, match="folder"):
        probe(tmp_path)


def test_truncated_flac_is_an_error(tmp_path, rng):
    path = tmp_path / "x.flac"
    write(path, noise(rng, 2, 96000), 48000, "PCM_24")
    raw = path.read_bytes()
    (tmp_path / "cut.flac").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(UpmixError, match="truncated"):
        read(tmp_path / "cut.flac")


def test_output_gets_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        write(tmp_path / "p.wav", np.zeros((2, 10)), 48000)
    finally:
        os.umask(umask)
    assert (tmp_path / "p.wav").stat().st_mode & 0o777 == 0o644
