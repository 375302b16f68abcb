"""Audio pipeline for realtime voice: formats, resampling, G.711, WAV, playback, devices.

Devices come real (:class:`Microphone`, :class:`Speaker`, :class:`DuplexDevice`, over
PortAudio) or simulated (:class:`VirtualMicrophone`, :class:`VirtualSpeaker`,
:class:`VirtualDuplex`: no sound card, paced by a :class:`PacingClock`). Echo
cancellation (:mod:`.echo`): WebRTC AEC3 with the ``aec`` extra, an echo gate without.

Stands alone: imports nothing from ``realtime_client``. Arrays are float32 in [-1, 1],
``(frames,)`` mono or ``(frames, channels)``; PCM16 little-endian at the wire edge.
"""

from __future__ import annotations

from .devices import (
    CapturedBlock,
    DeviceInfo,
    Microphone,
    MicrophoneStats,
    Speaker,
    SpeakerStats,
    find_device,
    list_devices,
)
from .duplex import DuplexDevice
from .echo import (
    AecMissingError,
    EchoCancelled,
    EchoCanceller,
    EchoGate,
    EchoPath,
    ReferenceTap,
    WebRtcEchoCanceller,
    estimate_delay_ms,
    make_echo_canceller,
)
from .errors import (
    AudioError,
    AudioFormatError,
    DeviceError,
    PortAudioMissingError,
    UnsupportedFileError,
)
from .formats import (
    PCM16_24K,
    AudioFormat,
    b64_to_float32,
    b64_to_pcm16,
    float32_to_b64,
    float32_to_pcm16,
    pcm16_to_b64,
    pcm16_to_float32,
    to_mono,
    to_stereo,
)
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .meter import LevelMeter, MeterReading, level_dbfs
from .pacing import PacingClock
from .playback import PlaybackBuffer, PlaybackError, PlaybackStats, PlayedPosition
from .resample import MAX_RATIO_TERM, MAX_SAMPLE_MAGNITUDE, Resampler, resample
from .vad import EnergyVAD, ModelVAD, ModelVadMissingError, SpeechStarted, SpeechStopped, VadEvent
from .virtual import VirtualDuplex, VirtualMicrophone, VirtualSpeaker, block_edge
from .wav import WavReader, WavWriter, read_wav, read_wav_mono, write_wav

__all__ = [
    "AecMissingError",
    "DuplexDevice",
    "EchoCancelled",
    "EchoCanceller",
    "EchoGate",
    "EchoPath",
    "ReferenceTap",
    "VirtualDuplex",
    "WebRtcEchoCanceller",
    "estimate_delay_ms",
    "make_echo_canceller",
    "CapturedBlock",
    "DeviceInfo",
    "Microphone",
    "MicrophoneStats",
    "PlaybackBuffer",
    "PlaybackError",
    "PlaybackStats",
    "PlayedPosition",
    "Speaker",
    "SpeakerStats",
    "VirtualMicrophone",
    "VirtualSpeaker",
    "block_edge",
    "find_device",
    "list_devices",
    "MAX_RATIO_TERM",
    "MAX_SAMPLE_MAGNITUDE",
    "PCM16_24K",
    "EnergyVAD",
    "ModelVAD",
    "ModelVadMissingError",
    "Resampler",
    "resample",
    "LevelMeter",
    "MeterReading",
    "SpeechStarted",
    "SpeechStopped",
    "VadEvent",
    "WavReader",
    "WavWriter",
    "alaw_decode",
    "alaw_encode",
    "level_dbfs",
    "PacingClock",
    "read_wav",
    "read_wav_mono",
    "ulaw_decode",
    "ulaw_encode",
    "write_wav",
    "AudioError",
    "AudioFormat",
    "AudioFormatError",
    "DeviceError",
    "PortAudioMissingError",
    "UnsupportedFileError",
    "b64_to_float32",
    "b64_to_pcm16",
    "float32_to_b64",
    "float32_to_pcm16",
    "pcm16_to_b64",
    "pcm16_to_float32",
    "to_mono",
    "to_stereo",
]
