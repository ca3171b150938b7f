"""Reading and probing any audio input, in blocks.

Reading goes through python-soundfile (WAV, RF64, FLAC, OGG, MP3, AIFF, ...) and falls back to the
``ffmpeg`` binary for anything else. Channel masks are read from the file's bytes (WAV
WAVE_FORMAT_EXTENSIBLE header, FLAC ``WAVEFORMATEXTENSIBLE_CHANNEL_MASK`` tag).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from ..dsp import StreamResampler
from ..errors import UpmixError
from .containers import FLAC_MASK_TAG, WAVE_FORMAT_EXTENSIBLE, flac_blocks

DEFAULT_BLOCK = 65536
"""Frames per block when streaming."""

_SOUNDFILE_EXTENSIONS = {".wav", ".wave", ".rf64", ".w64", ".flac", ".ogg", ".oga", ".opus",
                         ".mp3", ".aif", ".aiff", ".aifc", ".caf", ".au", ".snd"}

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 384000
"""Sample rates (Hz) accepted in input files: the range the CLI's --sample-rate accepts, since a
file's own rate can become the output rate."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds. `frames` is exact for files soundfile reads, estimated through ffmpeg."""

    path: str
    container: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    channel_mask: int | None = None
    via_ffmpeg: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


# ------------------------------------------------------------------------------------------------
# container parsing: channel masks and truncation


def _riff_chunks(f: BinaryIO) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, payload offset, payload size) for each chunk of a RIFF/RF64 WAVE file."""
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return
    rf64_data_size = None
    pos = 12
    while True:
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if cid == b"ds64":
            ds = f.read(24)
            if len(ds) == 24:
                rf64_data_size = struct.unpack("<Q", ds[8:16])[0]
        if cid == b"data" and size == 0xFFFFFFFF and rf64_data_size is not None:
            size = rf64_data_size
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def wav_header(path: str | Path) -> dict | None:
    """Parse a WAV/RF64 header: format tag, channels, bits, channel mask, data offset/size, file size.

    Returns None for files that are not RIFF/RF64 WAVE.
    """
    with open(path, "rb") as f:
        info: dict = {"file_size": os.fstat(f.fileno()).st_size}
        for cid, off, size in _riff_chunks(f):
            if cid == b"fmt ":
                f.seek(off)
                fmt = f.read(min(size, 40))
                if len(fmt) >= 16:
                    tag, ch, sr, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
                    info.update(format_tag=tag, channels=ch, sample_rate=sr, block_align=align,
                                bits=bits, channel_mask=None)
                    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 40:
                        info["channel_mask"] = struct.unpack("<I", fmt[20:24])[0]
                        info["format_tag"] = struct.unpack("<H", fmt[24:26])[0]
            elif cid == b"data":
                info.update(data_offset=off, data_size=size)
                break
        return info if "format_tag" in info else None


def _vorbis_comments(payload: bytes) -> list[str]:
    n = struct.unpack("<I", payload[:4])[0]
    pos = 4 + n
    count = struct.unpack("<I", payload[pos:pos + 4])[0]
    pos += 4
    out = []
    for _ in range(count):
        m = struct.unpack("<I", payload[pos:pos + 4])[0]
        out.append(payload[pos + 4:pos + 4 + m].decode("utf-8", "replace"))
        pos += 4 + m
    return out


def read_channel_mask(path: str | Path) -> int | None:
    """The channel mask stored in a WAV (WAVE_FORMAT_EXTENSIBLE) or FLAC file, read from its bytes.

    None when the file has none (plain PCM WAV, untagged FLAC, other containers).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
            f.seek(0)
            if magic == b"fLaC":
                blocks, _ = flac_blocks(f)
                for btype, payload in blocks:
                    if btype == 4:
                        for c in _vorbis_comments(payload):
                            key, _, value = c.partition("=")
                            if key.upper() == FLAC_MASK_TAG:
                                return int(value, 0)
                return None
    except (OSError, ValueError, struct.error):
        return None
    header = wav_header(path) if magic in (b"RIFF", b"RF64") else None
    return header.get("channel_mask") if header else None


def _check_wav_complete(path: Path) -> None:
    header = wav_header(path)
    if not header or "data_size" not in header:
        return
    size = header["data_size"]
    present = header["file_size"] - header["data_offset"]
    if size in (0, 0xFFFFFFFF):  # streamed WAV with its length never filled in: take what is there
        return
    if size > present:
        raise UpmixError(f"truncated WAV: the header declares {size} bytes of audio but only "
                         f"{present} are present", path)


# ------------------------------------------------------------------------------------------------
# reading


@contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Discard what C code writes straight to file descriptor 2 meanwhile (libmpg123, inside
    libsndfile, prints "Note:" and "Warning:" lines for damaged MPEG data); the problem is then
    reported as one UpmixError line instead."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to silence
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _ffmpeg_binaries() -> tuple[str, str] | None:
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    return (ffmpeg, ffprobe) if ffmpeg and ffprobe else None


def _ffprobe(path: Path, ffprobe: str) -> AudioInfo:
    cmd = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=channels,sample_rate,codec_name,duration:format=format_name,duration",
           "-of", "json", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    streams = json.loads(proc.stdout or "{}").get("streams") if proc.returncode == 0 else None
    if not streams:
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no audio stream"
        raise UpmixError(f"not a readable audio file (ffmpeg: {why})", path)
    st = streams[0]
    fmt = json.loads(proc.stdout).get("format", {})
    sr = int(st["sample_rate"])
    duration = float(st.get("duration") or fmt.get("duration") or 0.0)
    return AudioInfo(path=str(path), container=str(fmt.get("format_name", "?")).upper(),
                     subtype=str(st.get("codec_name", "?")), sample_rate=sr,
                     channels=int(st["channels"]), frames=int(round(duration * sr)), via_ffmpeg=True)


def probe(path: str | Path) -> AudioInfo:
    """Describe an audio file, or raise UpmixError saying why it cannot be read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UpmixError("file not found", path) from None
    except OSError as exc:
        raise UpmixError(f"cannot read it: {exc.strerror or exc}", path) from None
    if stat.S_ISDIR(mode):
        raise UpmixError("is a folder, not an audio file", path)
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
        raise UpmixError("is not a regular file (a pipe, socket or device); give an audio file", path)
    if not os.access(path, os.R_OK):
        raise UpmixError("permission denied", path)
    try:
        with _c_stderr_silenced():
            i = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        tools = _ffmpeg_binaries()
        if tools is None:
            if path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
                reason = str(exc).split(":", 1)[-1].strip().rstrip(".")
                raise UpmixError(f"not a readable audio file ({reason})", path) from None
            raise UpmixError(f"cannot read {path.suffix or 'this'} files without ffmpeg; install "
                             "ffmpeg (Debian: apt-get install ffmpeg)", path) from None
        info = _ffprobe(path, tools[1])
    else:
        if i.format in ("WAV", "WAVEX", "RF64"):
            _check_wav_complete(path)
        info = AudioInfo(path=str(path), container=i.format, subtype=i.subtype,
                         sample_rate=int(i.samplerate), channels=int(i.channels),
                         frames=int(i.frames), channel_mask=read_channel_mask(path))
    if info.channels < 1 or info.sample_rate < 1:
        raise UpmixError("not a readable audio file (no audio channels found)", path)
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise UpmixError(f"sample rate {info.sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz", path)
    if info.frames == 0 and not info.via_ffmpeg:
        raise UpmixError("is empty (0 samples)", path)
    return info


def _soundfile_blocks(path: Path, block: int, quiet: bool) -> Iterator[np.ndarray]:
    """Blocks read by libsndfile; `quiet` silences what its decoder prints (MP3: libmpg123)."""
    silenced = _c_stderr_silenced if quiet else nullcontext
    with silenced():
        f = sf.SoundFile(str(path))
    with f:
        while True:
            try:
                with silenced():
                    data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                reason = str(exc).split(":", 1)[-1].strip().rstrip(".")
                raise UpmixError(f"damaged or truncated: decoding failed after {f.tell()} frames "
                                 f"({reason})", path) from None
            if len(data) == 0:
                return
            yield data.T


def _ffmpeg_blocks(path: Path, channels: int, block: int) -> Iterator[np.ndarray]:
    ffmpeg = _ffmpeg_binaries()[0]
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        nbytes = 4 * channels * block
        while True:
            raw = proc.stdout.read(nbytes)
            if not raw:
                break
            usable = len(raw) - len(raw) % (4 * channels)
            yield np.frombuffer(raw[:usable], dtype="<f4").reshape(-1, channels).T.copy()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise UpmixError(f"ffmpeg could not decode it: {err.splitlines()[-1] if err else 'error'}",
                             path)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


class BlockReader:
    """Stream a file as float32 blocks shaped (channels, frames), checked and optionally resampled.

    Args:
        path: the audio file.
        block: frames per block (the last block may be shorter; resampling may vary the size a little).
        sample_rate: resample to this rate (Hz) if it differs from the file's.
        max_channels: reject files with more channels than this.

    Raises UpmixError for unreadable, empty or truncated files, too many channels, and NaN or
    infinite samples (when the block holding them is read).
    """

    def __init__(self, path: str | Path, block: int = DEFAULT_BLOCK, sample_rate: int | None = None,
                 max_channels: int = 64) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        if self.info.channels > max_channels:
            raise UpmixError(f"has {self.info.channels} channels; at most {max_channels} are "
                             "supported here", self.path)
        self.block = block
        self.sample_rate = sample_rate or self.info.sample_rate
        self._resampler = (StreamResampler(self.info.sample_rate, self.sample_rate)
                           if self.sample_rate != self.info.sample_rate else None)

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def frames(self) -> int:
        """Length in frames at the output rate (estimated for files decoded through ffmpeg)."""
        return math.ceil(self.info.frames * self.sample_rate / self.info.sample_rate)

    def __iter__(self) -> Iterator[np.ndarray]:
        source = (_ffmpeg_blocks(self.path, self.channels, self.block) if self.info.via_ffmpeg
                  else _soundfile_blocks(self.path, self.block, self.info.container == "MP3"))
        read = 0
        for data in source:
            if not np.isfinite(data).all():
                bad = int(np.argmax(~np.isfinite(data).all(axis=0)))
                raise UpmixError(f"contains NaN or infinite samples (first at "
                                 f"{(read + bad) / self.info.sample_rate:.3f} s)", self.path)
            read += data.shape[1]
            if self._resampler is not None:
                data = self._resampler.process(data)
            if data.shape[1]:
                yield data
        if read == 0:
            raise UpmixError("is empty (no samples could be decoded)", self.path)
        if not self.info.via_ffmpeg and read < self.info.frames:
            raise UpmixError(f"truncated: the header declares {self.info.frames} frames but only "
                             f"{read} could be decoded", self.path)
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail.shape[1]:
                yield tail


def read(path: str | Path, sample_rate: int | None = None, max_channels: int = 64
         ) -> tuple[np.ndarray, int]:
    """Read a whole file: (float32 array (channels, frames), sample rate in Hz)."""
    reader = BlockReader(path, sample_rate=sample_rate, max_channels=max_channels)
    blocks = list(reader)
    return np.concatenate(blocks, axis=1), reader.sample_rate
