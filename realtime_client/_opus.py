"""libopus called directly (ctypes), for the WebRTC path's per-frame encode and decode.

PyAV's libopus wrapper costs about 30 µs a frame more than the codec itself: an
``AudioFrame`` and a ``Packet`` object per 20 ms, and an ffmpeg filter graph that re-frames
every input to the codec's frame size. At 50 frames a second per direction per call that is
a visible share of a WebRTC session's CPU, so where the libopus that PyAV ships (or the
system's) can be loaded, the WebRTC path calls it directly.

Only on Linux (x86-64 and ARM64): ``opus_encoder_ctl`` is variadic, which ctypes passes
correctly there, not on every platform. Elsewhere, or where no libopus is found,
:func:`load` returns ``None`` and callers use PyAV.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import platform
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["APPLICATION_RESTRICTED_LOWDELAY", "APPLICATION_VOIP", "Decoder", "Encoder", "load"]

#: ``opus_encoder_create`` applications.
APPLICATION_VOIP = 2048
APPLICATION_RESTRICTED_LOWDELAY = 2051
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
#: The longest Opus packet is 120 ms; at 48 kHz that is 5760 samples per channel.
_MAX_SAMPLES = 5760
_MAX_PACKET = 1500

_lib: Any = None
_tried = False


def _candidates() -> list[str]:
    """libopus files to try: the copy bundled with PyAV's wheel first, then the system's."""
    found: list[str] = []
    try:
        import av

        package = os.path.dirname(av.__file__)
        for folder in (os.path.join(package, os.pardir, "av.libs"), package):
            found += sorted(glob.glob(os.path.join(folder, "libopus*.so*")))
    except ImportError:
        pass
    system = ctypes.util.find_library("opus")
    if system:
        found.append(system)
    return found


def load() -> Any:
    """The loaded libopus (a :class:`ctypes.CDLL`), or ``None`` where it is not usable."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return None
    if os.environ.get("REALTIME_CLIENT_PYAV_OPUS"):
        return None  # a switch to compare with (or fall back to) PyAV's wrapper
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            lib.opus_encoder_create.restype = ctypes.c_void_p
            lib.opus_encoder_create.argtypes = [
                ctypes.c_int32,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_int),
            ]
            lib.opus_encode.restype = ctypes.c_int32
            lib.opus_encode.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_int32,
            ]
            lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
            lib.opus_decoder_create.restype = ctypes.c_void_p
            lib.opus_decoder_create.argtypes = lib.opus_encoder_create.argtypes[:2] + [
                ctypes.POINTER(ctypes.c_int)
            ]
            lib.opus_decode.restype = ctypes.c_int
            lib.opus_decode.argtypes = [
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_int32,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_int,
            ]
            lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        _lib = lib
        return lib
    return None


class Encoder:
    """A mono libopus encoder at 48 kHz.

    Args:
        lib: What :func:`load` returned.
        bitrate: Target bit rate in bit/s.
        complexity: 0–10, or ``None`` for libopus's default (10).
        application: :data:`APPLICATION_VOIP` or :data:`APPLICATION_RESTRICTED_LOWDELAY`.
    """

    def __init__(
        self,
        lib: Any,
        bitrate: int,
        complexity: int | None = None,
        application: int = APPLICATION_VOIP,
    ) -> None:
        error = ctypes.c_int()
        handle = lib.opus_encoder_create(48_000, 1, application, ctypes.byref(error))
        if not handle or error.value != 0:
            raise RuntimeError(f"opus_encoder_create failed ({error.value})")
        self._lib = lib
        self._handle: ctypes.c_void_p | None = ctypes.c_void_p(handle)
        lib.opus_encoder_ctl(self._handle, _SET_BITRATE, ctypes.c_int32(bitrate))
        if complexity is not None:
            lib.opus_encoder_ctl(self._handle, _SET_COMPLEXITY, ctypes.c_int32(complexity))
        self._out = ctypes.create_string_buffer(_MAX_PACKET)
        self._out_address = ctypes.addressof(self._out)

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """One frame of mono PCM16 (a length Opus allows: 960 for 20 ms) → one packet."""
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        size = self._lib.opus_encode(
            self._handle, pcm.ctypes.data, len(pcm), self._out_address, _MAX_PACKET
        )
        if size < 0:
            raise RuntimeError(f"opus_encode failed ({size})")
        return self._out.raw[:size]

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.opus_encoder_destroy(handle)


class Decoder:
    """A libopus decoder to mono PCM16 at 48 kHz (a stereo stream is downmixed by libopus)."""

    def __init__(self, lib: Any) -> None:
        error = ctypes.c_int()
        handle = lib.opus_decoder_create(48_000, 1, ctypes.byref(error))
        if not handle or error.value != 0:
            raise RuntimeError(f"opus_decoder_create failed ({error.value})")
        self._lib = lib
        self._handle: ctypes.c_void_p | None = ctypes.c_void_p(handle)
        self._pcm = np.zeros(_MAX_SAMPLES, np.int16)
        self._pcm_address = self._pcm.ctypes.data

    def decode(self, packet: bytes) -> npt.NDArray[np.int16]:
        """One packet → its samples (a new array). Raises ``ValueError`` if corrupt."""
        count = self._lib.opus_decode(
            self._handle, packet, len(packet), self._pcm_address, _MAX_SAMPLES, 0
        )
        if count < 0:
            raise ValueError(f"opus_decode failed ({count})")
        out: npt.NDArray[np.int16] = self._pcm[:count].copy()
        return out

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.opus_decoder_destroy(handle)
