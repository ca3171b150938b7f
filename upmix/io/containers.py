"""Container details both reading and writing need: the WAVE_FORMAT_EXTENSIBLE codes, the RIFF size
limit, the FLAC channel-mask tag and FLAC metadata parsing."""

from __future__ import annotations

from typing import BinaryIO

WAVE_FORMAT_PCM, WAVE_FORMAT_FLOAT, WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE
"""WAV format tags: integer PCM, IEEE float, and the extensible header that carries a channel mask."""

KSDATAFORMAT_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
"""The last 14 bytes of a WAVE_FORMAT_EXTENSIBLE sub-format GUID, after the 2-byte format tag."""

RIFF_LIMIT = 0xFFFFFFFF
"""Largest RIFF size field (bytes); past it a WAV becomes RF64."""

FLAC_MASK_TAG = "WAVEFORMATEXTENSIBLE_CHANNEL_MASK"
"""The Vorbis comment that carries a FLAC file's channel mask."""


def flac_blocks(f: BinaryIO) -> tuple[list[tuple[int, bytes]], int]:
    """FLAC metadata blocks as (type, payload) and the offset where the audio frames start."""
    if f.read(4) != b"fLaC":
        raise ValueError("not a FLAC file")
    blocks = []
    while True:
        hdr = f.read(4)
        if len(hdr) < 4:
            raise ValueError("truncated FLAC metadata")
        last, btype, size = hdr[0] & 0x80, hdr[0] & 0x7F, int.from_bytes(hdr[1:], "big")
        blocks.append((btype, f.read(size)))
        if last:
            return blocks, f.tell()
