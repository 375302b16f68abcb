"""Errors raised by the ``realtime_client.audio`` package.

.. code-block:: text

    AudioError
     ├── AudioFormatError      wrong sample rate, channel count, dtype or shape (ValueError)
     ├── UnsupportedFileError  a file we cannot read or write (ValueError)
     ├── DeviceError           no such device, or the device refused the settings
     └── PortAudioMissingError sounddevice or libportaudio2 is not installed (ImportError)

``realtime_client.audio`` imports nothing from the rest of ``realtime_client``; the session
converts these at its boundary.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioFormatError",
    "DeviceError",
    "PortAudioMissingError",
    "UnsupportedFileError",
]


class AudioError(Exception):
    """Root of every error raised by ``realtime_client.audio``."""


class AudioFormatError(AudioError, ValueError):
    """Audio of the wrong sample rate, channel count, sample type or shape."""


class UnsupportedFileError(AudioError, ValueError):
    """An audio file that cannot be read or written (says why)."""


class DeviceError(AudioError):
    """No such audio device, or the device refused the requested settings."""


class PortAudioMissingError(AudioError, ImportError):
    """sounddevice or the PortAudio library is not available.

    The message says what to install: the ``audio`` extra
    (``pip install 'realtime-client[audio]'``) and the system library
    (``apt-get install libportaudio2`` on Debian/Ubuntu).
    """
