"""Parts played by the Sonivox EAS synthesiser's General MIDI wave table.

Sonivox EAS (Sonic Network; Apache-2.0; the MIDI synthesiser of Android) carries its own General
MIDI wave table, compiled into the library rather than stored as a SoundFont, so FluidSynth cannot
play it and it shares no samples with the SoundFonts of `data.SOUNDFONTS`. Debian packages it as
``libsonivox3``; no Python binding is packaged (PyPI has none), so `EasSynth` calls the library
with ctypes. The library renders at its own fixed configuration (22.05 kHz, stereo, blocks of 128
sample frames), which is the separator's training rate. Its reverb and chorus are bypassed, so the
parts add up to the mix exactly.
"""

from __future__ import annotations

import ctypes

import numpy as np

from upmix.errors import UpmixError

SET_NAME = "sonivox-eas"
"""The name an `EasSynth` gives excerpt descriptions, and its entry in `data.SOUNDFONTS`."""

LIBRARY = "libsonivox.so.3"
INSTALL = "apt-get install libsonivox3"

_MODULE_REVERB, _MODULE_CHORUS, _PARAM_BYPASS = 2, 3, 0  # eas.h: E_FX_MODULES; eas_reverb.h, eas_chorus.h


class _Config(ctypes.Structure):
    """eas.h's S_EAS_LIB_CONFIG (EAS_I32 and EAS_U32 are C longs)."""

    _fields_ = [("libVersion", ctypes.c_ulong), ("checkedVersion", ctypes.c_uint), ("maxVoices", ctypes.c_long),
                ("numChannels", ctypes.c_long), ("sampleRate", ctypes.c_long), ("mixBufferSize", ctypes.c_long),
                ("filterEnabled", ctypes.c_uint), ("buildTimeStamp", ctypes.c_ulong), ("buildGUID", ctypes.c_char_p)]


def _load() -> ctypes.CDLL:
    """The library with the signatures `EasSynth` uses; an `UpmixError` naming the install when absent."""
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError:
        raise UpmixError(f"the Sonivox EAS library is not installed ({INSTALL})", LIBRARY) from None
    handle, long_ = ctypes.c_void_p, ctypes.c_long
    lib.EAS_Config.restype = ctypes.POINTER(_Config)
    lib.EAS_Config.argtypes = []
    signatures = {"EAS_Init": [ctypes.POINTER(handle)], "EAS_Shutdown": [handle],
                  "EAS_SetParameter": [handle, long_, long_, long_],
                  "EAS_OpenMIDIStream": [handle, ctypes.POINTER(handle), handle],
                  "EAS_CloseMIDIStream": [handle, handle],
                  "EAS_WriteMIDIStream": [handle, handle, ctypes.c_char_p, long_],
                  "EAS_Render": [handle, handle, long_, ctypes.POINTER(long_)]}
    for name, args in signatures.items():
        getattr(lib, name).argtypes, getattr(lib, name).restype = args, long_
    return lib


def available() -> bool:
    """Whether the Sonivox EAS library can be loaded here."""
    try:
        _load()
    except UpmixError:
        return False
    return True


class EasSynth:
    """Plays note lists with the Sonivox EAS General MIDI wave table, reverb and chorus off.

    Args:
        sample_rate: Hz; must be the library's own (22050 in Debian's build).
    """

    def __init__(self, sample_rate: int) -> None:
        self._lib = _load()
        config = self._lib.EAS_Config().contents
        if config.sampleRate != sample_rate:
            raise UpmixError(f"the Sonivox EAS library renders at {config.sampleRate} Hz, not {sample_rate} Hz",
                             LIBRARY)
        self.sample_rate, self.name = sample_rate, SET_NAME
        self._channels, self._block = int(config.numChannels), int(config.mixBufferSize)

    def _check(self, result: int, call: str) -> None:
        if result != 0:
            raise UpmixError(f"Sonivox EAS: {call} failed with error {result}", LIBRARY)

    def play(self, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, velocities: np.ndarray,
             program: int, length: int) -> np.ndarray:
        """A mono part (length,) float32: notes at `onsets` for `durations` seconds, MIDI `pitches`
        and velocities 1-127, General MIDI `program` (0-based). Note events fall on the library's
        blocks of 128 sample frames (5.8 ms at 22.05 kHz). A new synthesiser plays every part, so
        nothing of the last part sounds on."""
        lib, block = self._lib, self._block
        data, stream = ctypes.c_void_p(), ctypes.c_void_p()
        self._check(lib.EAS_Init(ctypes.byref(data)), "EAS_Init")
        try:
            for module in (_MODULE_REVERB, _MODULE_CHORUS):
                self._check(lib.EAS_SetParameter(data, module, _PARAM_BYPASS, 1), "bypassing an effect")
            self._check(lib.EAS_OpenMIDIStream(data, ctypes.byref(stream), None), "EAS_OpenMIDIStream")
            blocks = -(-length // block)
            on = [(round(t * self.sample_rate / block), 1, int(p), int(v))
                  for t, p, v in zip(onsets, pitches, velocities)]
            off = [(round((t + d) * self.sample_rate / block), 0, int(p), 0)
                   for t, d, p in zip(onsets, durations, pitches)]
            events = sorted(on + off)  # at a block, note-offs before note-ons: a repeated pitch restarts
            messages: list[list[bytes]] = [[] for _ in range(blocks + 1)]
            messages[0].append(bytes([0xC0, program]))
            for when, is_on, pitch, velocity in events:
                messages[min(max(when, 0), blocks)].append(bytes([0x90 if is_on else 0x80, pitch, velocity]))
            out = np.zeros((blocks, block * self._channels), dtype=np.int16)
            made = ctypes.c_long()
            for k in range(blocks):
                for message in messages[k]:
                    self._check(lib.EAS_WriteMIDIStream(data, stream, message, len(message)), "EAS_WriteMIDIStream")
                self._check(lib.EAS_Render(data, out[k].ctypes.data, block, ctypes.byref(made)), "EAS_Render")
            lib.EAS_CloseMIDIStream(data, stream)
        finally:
            lib.EAS_Shutdown(data)
        stereo = out.reshape(-1, self._channels).astype(np.float32) / 32768.0
        return stereo.mean(axis=1)[:length]
