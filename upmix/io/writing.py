"""Writing multichannel files with the right channel mask, in blocks.

Writing produces WAV (switching to RF64 past 4 GiB) with a WAVE_FORMAT_EXTENSIBLE header written
here, because libsndfile cannot set the channel mask, or FLAC with a
``WAVEFORMATEXTENSIBLE_CHANNEL_MASK`` tag. Files are written to a temporary name in the target
folder and renamed when complete, so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import struct
from contextlib import suppress
from enum import StrEnum
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import UpmixError
from ..files import REWRITE_SUFFIX, temporary_sibling
from .containers import (
    FLAC_MASK_TAG,
    KSDATAFORMAT_GUID_TAIL,
    RIFF_LIMIT,
    WAVE_FORMAT_EXTENSIBLE,
    WAVE_FORMAT_FLOAT,
    WAVE_FORMAT_PCM,
    flac_blocks,
)
from .reading import DEFAULT_BLOCK


class BitDepth(StrEnum):
    """Output sample format: 16- or 24-bit PCM (TPDF-dithered) or 32-bit float."""

    PCM_16 = "16"
    PCM_24 = "24"
    FLOAT = "float"

    @property
    def subtype(self) -> str:
        """The soundfile subtype it is written as."""
        return {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}[self.value]

    @classmethod
    def parse(cls, text: str) -> BitDepth:
        """The bit depth called `text` (16, 24 or float); UpmixError otherwise."""
        try:
            return cls(str(text))
        except ValueError:
            raise UpmixError(f"{{option}} must be 16, 24 or float, not {text!r}", option="bits") from None


def _pack24(q: np.ndarray) -> bytes:
    """Little-endian 24-bit bytes of int32 samples (the low three bytes of each, in order)."""
    v = np.ascontiguousarray(q).reshape(-1)
    packed = np.empty((len(v), 3), dtype=np.uint8)
    packed[:, 0], packed[:, 1], packed[:, 2] = v, v >> 8, v >> 16  # the casts keep the low byte
    return packed.tobytes()


def default_channel_mask(channels: int) -> int:
    """Mask for files with no layout: mono = FC, stereo = FL+FR, otherwise 0 (unassigned)."""
    return {1: 0x4, 2: 0x3}.get(channels, 0)


def _wav_fmt(channels: int, rate: int, subtype: str, mask: int) -> bytes:
    bits = {"PCM_16": 16, "PCM_24": 24, "FLOAT": 32}[subtype]
    align = channels * bits // 8
    tag = WAVE_FORMAT_FLOAT if subtype == "FLOAT" else WAVE_FORMAT_PCM
    return struct.pack("<HHIIHHHHI", WAVE_FORMAT_EXTENSIBLE, channels, rate, rate * align, align,
                       bits, 22, bits, mask) + struct.pack("<H", tag) + KSDATAFORMAT_GUID_TAIL


class AudioWriter:
    """Write a WAV (RF64 past 4 GiB) or FLAC file block by block, atomically.

    Args:
        path: output file; its extension (.wav or .flac) picks the container.
        sample_rate: Hz.
        channels: channel count.
        subtype: "PCM_16" (TPDF-dithered), "PCM_24" or "FLOAT" (WAV only).
        channel_mask: WAVE_FORMAT_EXTENSIBLE mask; default `default_channel_mask(channels)`.

    Use as a context manager: the file appears under its name only when the block exits without an
    exception; otherwise the temporary file is removed. `clipped` counts samples beyond full scale
    in integer formats. A failed write (a full disk) raises UpmixError naming the output file.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, subtype: str = "PCM_24",
                 channel_mask: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.subtype = subtype
        self.channel_mask = default_channel_mask(channels) if channel_mask is None else channel_mask
        self.frames = 0
        self.clipped = 0
        ext = self.path.suffix.lower()
        if ext not in (".wav", ".flac"):
            raise UpmixError("unsupported output format; write .wav or .flac", self.path)
        if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
            raise UpmixError(f"unsupported sample format {subtype!r}", self.path)
        self.flac = ext == ".flac"
        if self.flac and channels > 8:
            raise UpmixError(f"FLAC holds at most 8 channels and this output has {channels}; "
                             "write a .wav instead", self.path)
        if self.flac and subtype == "FLOAT":
            raise UpmixError("FLAC cannot hold 32-bit float samples; use 16 or 24 bits, or a .wav",
                             self.path)
        self._tmp = temporary_sibling(self.path)
        self._rng = np.random.default_rng(0x5EED)
        if self.flac:
            try:
                self._sf = sf.SoundFile(str(self._tmp), "w", self.sample_rate, self.channels,
                                        subtype=subtype, format="FLAC")
            except (sf.LibsndfileError, RuntimeError) as exc:
                self._tmp.unlink(missing_ok=True)
                raise UpmixError(f"cannot write FLAC: {exc}", self.path) from None
        else:
            fmt = _wav_fmt(self.channels, self.sample_rate, subtype, self.channel_mask)
            # JUNK reserves room for the ds64 chunk in case the file outgrows RIFF (EBU Tech 3306)
            self._header = (b"RIFF" + b"\0" * 4 + b"WAVE" + b"JUNK" + struct.pack("<I", 28) +
                            b"\0" * 28 + b"fmt " + struct.pack("<I", len(fmt)) + fmt +
                            b"data" + b"\0" * 4)
            try:
                self._file = open(self._tmp, "wb")
                self._file.write(self._header)
            except OSError as exc:
                self.abort()
                raise self._write_error(exc) from None
        self._data_bytes = 0

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        """Interleaved integer samples (frames, channels) for PCM subtypes."""
        bits = 16 if self.subtype == "PCM_16" else 24
        scale = np.float32(2 ** (bits - 1))
        y = x.T * scale  # float32 holds every 24-bit integer exactly
        if bits == 16:  # TPDF dither of +-1 LSB
            y += (self._rng.random(y.shape, np.float32) - self._rng.random(y.shape, np.float32))
        y = np.rint(y)
        self.clipped += int(np.count_nonzero((y > scale - 1) | (y < -scale)))
        return np.clip(y, -scale, scale - 1).astype(np.int32)

    def write(self, block: np.ndarray) -> np.ndarray:
        """Append a (channels, frames) block; returns it as stored (float32, full scale 1: in
        integer formats dithered, rounded and clipped)."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, n) audio, got {block.shape}")
        n = block.shape[1]
        if n == 0:
            return block
        if self.subtype == "FLOAT":
            data = block.T.astype("<f4").tobytes()
            stored = block
        else:
            q = self._quantise(block)
            stored = q.T.astype(np.float32) / np.float32(2 ** (15 if self.subtype == "PCM_16" else 23))
            if self.flac:
                try:  # libsndfile takes int32 at full 32-bit scale
                    self._sf.write(q << (16 if self.subtype == "PCM_16" else 8))
                except (OSError, sf.LibsndfileError) as exc:
                    raise self._write_error(exc) from None
                self.frames += n
                return stored
            data = q.astype("<i2").tobytes() if self.subtype == "PCM_16" else _pack24(q)
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._write_error(exc) from None
        self._data_bytes += len(data)
        self.frames += n
        return stored

    def close(self) -> None:
        """Finish the header and move the file to its final name."""
        try:
            if self.flac:
                self._sf.close()
                self._tag_flac()
            else:
                self._finish_wav()
            os.replace(self._tmp, self.path)
        except (OSError, sf.LibsndfileError) as exc:
            self.abort()
            raise self._write_error(exc) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Remove the temporary file; nothing appears under the final name."""
        for handle in ("_sf", "_file"):
            h = getattr(self, handle, None)
            if h is not None and not h.closed:
                with suppress(OSError, sf.LibsndfileError):  # unflushed data of a file being discarded
                    h.close()
        self._tmp.unlink(missing_ok=True)

    def _write_error(self, exc: Exception) -> UpmixError:
        """The one-line error for a failed write (a full disk, a lost device)."""
        reason = getattr(exc, "strerror", None) or str(exc).split(":", 1)[-1].strip()
        return UpmixError(f"cannot write it: {reason}", self.path)

    def _finish_wav(self) -> None:
        f = self._file
        if self._data_bytes & 1:
            f.write(b"\0")
        end = f.tell()
        riff_size = end - 8
        if riff_size > RIFF_LIMIT:
            f.seek(0)
            f.write(b"RF64" + struct.pack("<I", 0xFFFFFFFF))
            f.seek(12)
            frames = self._data_bytes // (self.channels * {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}[self.subtype])
            f.write(b"ds64" + struct.pack("<IQQQI", 28, riff_size, self._data_bytes, frames, 0))
            f.seek(len(self._header) - 4)
            f.write(struct.pack("<I", 0xFFFFFFFF))
        else:
            f.seek(4)
            f.write(struct.pack("<I", riff_size))
            f.seek(len(self._header) - 4)
            f.write(struct.pack("<I", self._data_bytes))
        f.close()

    def _tag_flac(self) -> None:
        """Rewrite the FLAC metadata with a Vorbis comment carrying the channel mask."""
        with open(self._tmp, "rb") as src:
            blocks, audio_at = flac_blocks(src)
            vendor = b"upmix"
            tag = f"{FLAC_MASK_TAG}=0x{self.channel_mask:04X}".encode()
            comment = (struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 1) +
                       struct.pack("<I", len(tag)) + tag)
            keep = [b for b in blocks if b[0] not in (1, 4)] + [(4, comment)]
            final = self._tmp.with_suffix(REWRITE_SUFFIX)
            try:
                with open(final, "wb") as dst:
                    dst.write(b"fLaC")
                    for k, (btype, payload) in enumerate(keep):
                        last = 0x80 if k == len(keep) - 1 else 0
                        dst.write(bytes([last | btype]) + len(payload).to_bytes(3, "big") + payload)
                    src.seek(audio_at)
                    shutil.copyfileobj(src, dst, 1 << 20)
            except BaseException:
                final.unlink(missing_ok=True)
                raise
        os.replace(final, self._tmp)


def write(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24",
          channel_mask: int | None = None) -> AudioWriter:
    """Write a whole (channels, frames) array; returns the closed writer (for `clipped`)."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    with AudioWriter(path, sample_rate, audio.shape[0], subtype, channel_mask) as w:
        for start in range(0, audio.shape[1], DEFAULT_BLOCK):
            w.write(audio[:, start:start + DEFAULT_BLOCK])
    return w
