"""Reading any audio input and writing multichannel files with the right channel mask, in blocks.

Audio arrays are float32 shaped ``(channels, frames)`` at nominal full scale +-1.0; the sample rate
travels beside them. `reading` probes and decodes inputs, `writing` writes WAV/RF64/FLAC outputs
atomically, and `containers` holds the format details both share.
"""

from .reading import (
    DEFAULT_BLOCK,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    AudioInfo,
    BlockReader,
    probe,
    read,
    read_channel_mask,
    wav_header,
)
from .writing import AudioWriter, BitDepth, default_channel_mask, write

__all__ = [
    "DEFAULT_BLOCK",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "BitDepth",
    "AudioInfo",
    "AudioWriter",
    "BlockReader",
    "default_channel_mask",
    "probe",
    "read",
    "read_channel_mask",
    "wav_header",
    "write",
]
