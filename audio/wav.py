"""WAV (RIFF/WAVE) reading and writing, whole-file or streamed by blocks.

Reads PCM 8-bit (unsigned), 16, 24 and 32-bit, IEEE float 32 and 64-bit, and G.711 A-law
and µ-law, in plain ``WAVEFORMAT(EX)`` or ``WAVE_FORMAT_EXTENSIBLE`` headers, at any sample
rate and channel count. Samples come back as float32 in [-1, 1] (float files are passed
through unscaled), shaped ``(frames,)`` for mono and ``(frames, channels)`` otherwise.

Chunks other than ``fmt `` and ``data`` are skipped, odd-sized chunks are followed by their
pad byte as RIFF requires, and anything we cannot read raises
:class:`~realtime_client.audio.errors.UnsupportedFileError` saying why (not RIFF/WAVE,
truncated, unknown format tag or bit depth, missing ``fmt `` or ``data`` chunk). A
``data`` chunk whose size is 0 or 0xFFFFFFFF (a writer that was never closed, or one
streaming an unknown length) is read up to the end of the file, in whole frames, except
that a size-0 ``data`` chunk followed by well-formed chunks up to the end of the file (a
closed file with no samples and, say, a ``LIST`` chunk after them) is empty: those chunks
are not read as samples. Opening a path that does not exist raises the usual
:class:`OSError`.

Writing uses a plain 16-byte ``fmt `` chunk for PCM up to 16 bits and 2 channels (the same
bytes Python's :mod:`wave` writes), ``WAVE_FORMAT_EXTENSIBLE`` for deeper PCM or more
channels (as Microsoft asks), and format 3/6/7 with a ``fact`` chunk for float and G.711.
Files are limited to 4 GiB (RIFF sizes are 32-bit; RF64 is not supported).

Example:
    >>> write_wav("tone.wav", samples, 24_000)                      # doctest: +SKIP
    >>> with WavReader("long.wav") as reader:                         # doctest: +SKIP
    ...     for block in reader.blocks(reader.sample_rate // 50):     # 20 ms blocks
    ...         handle(block)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from .errors import AudioError, AudioFormatError, UnsupportedFileError
from .formats import as_float32, float32_to_pcm16, pcm16_to_float32, to_mono
from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = [
    "WavReader",
    "WavSampleType",
    "WavWriter",
    "read_wav",
    "read_wav_mono",
    "write_wav",
]

Float32Array = npt.NDArray[np.float32]

WavSampleType = Literal["pcm8", "pcm16", "pcm24", "pcm32", "float32", "float64", "pcmu", "pcma"]
"""How samples are stored in the file: integer PCM by container size, IEEE float, or G.711."""

_Source = str | os.PathLike[str] | BinaryIO

_TAG_PCM = 0x0001
_TAG_FLOAT = 0x0003
_TAG_ALAW = 0x0006
_TAG_ULAW = 0x0007
_TAG_EXTENSIBLE = 0xFFFE
# Every KSDATAFORMAT_SUBTYPE_* GUID for a classic format tag is the tag followed by this tail.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_KNOWN_UNSUPPORTED_TAGS = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x1610: "AAC",
}
_PCM_TYPES: dict[int, WavSampleType] = {1: "pcm8", 2: "pcm16", 3: "pcm24", 4: "pcm32"}
_FLOAT_TYPES: dict[int, WavSampleType] = {4: "float32", 8: "float64"}
_BYTES_PER_SAMPLE: dict[str, int] = {
    "pcm8": 1,
    "pcm16": 2,
    "pcm24": 3,
    "pcm32": 4,
    "float32": 4,
    "float64": 8,
    "pcmu": 1,
    "pcma": 1,
}
# Speaker masks for the common layouts; other counts get 0 ("no assignment").
_CHANNEL_MASKS = {1: 0x4, 2: 0x3, 4: 0x33, 6: 0x3F, 8: 0x63F}
_MAX_RIFF_BYTES = 0xFFFFFFFF
# data chunk sizes that mean "until the end of the file": 0 from a writer that was never
# closed, 0xFFFFFFFF from writers that stream without knowing the length.
_UNSIZED_DATA = (0, 0xFFFFFFFF)
# Most chunks looked at after a size-0 data chunk to tell whether chunks follow it.
_MAX_TRAILING_CHUNKS = 1024


class _Layout:
    """What the ``fmt `` and ``data`` chunks say; shared by reader and writer."""

    __slots__ = (
        "block_align",
        "channels",
        "data_bytes",
        "data_offset",
        "sample_rate",
        "sample_type",
        "valid_bits",
    )

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        sample_type: WavSampleType,
        valid_bits: int,
        data_offset: int = 0,
        data_bytes: int = 0,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_type: WavSampleType = sample_type
        self.valid_bits = valid_bits
        self.block_align = _BYTES_PER_SAMPLE[sample_type] * channels
        self.data_offset = data_offset
        self.data_bytes = data_bytes


def _describe_tag(tag: int) -> str:
    name = _KNOWN_UNSUPPORTED_TAGS.get(tag)
    return f"0x{tag:04X} ({name})" if name else f"0x{tag:04X}"


def _parse_fmt(body: bytes) -> tuple[int, int, WavSampleType, int]:
    """Return (sample_rate, channels, sample_type, valid_bits) from a ``fmt `` chunk body."""
    tag, channels, sample_rate, _avg_bytes, block_align, bits = struct.unpack_from("<HHIIHH", body)
    valid_bits = bits
    if tag == _TAG_EXTENSIBLE:
        if len(body) < 40:
            raise UnsupportedFileError(
                f"truncated WAVE_FORMAT_EXTENSIBLE fmt chunk ({len(body)} bytes, need 40)"
            )
        _cb_size, ext_valid_bits, _mask = struct.unpack_from("<HHI", body, 16)
        guid = body[24:40]
        if guid[2:] != _GUID_TAIL:
            raise UnsupportedFileError(f"unsupported WAVE_FORMAT_EXTENSIBLE subformat {guid.hex()}")
        tag = int.from_bytes(guid[:2], "little")
        if ext_valid_bits:
            valid_bits = ext_valid_bits
    if channels == 0:
        raise UnsupportedFileError("fmt chunk declares 0 channels")
    if sample_rate == 0:
        raise UnsupportedFileError("fmt chunk declares a sample rate of 0 Hz")
    if block_align == 0 or block_align % channels:
        raise UnsupportedFileError(
            f"fmt chunk block_align {block_align} is not a multiple of {channels} channels"
        )
    container = block_align // channels
    sample_type: WavSampleType | None
    if tag == _TAG_PCM:
        sample_type = _PCM_TYPES.get(container)
        ok = sample_type is not None and 0 < valid_bits <= 8 * container and bits <= 8 * container
    elif tag == _TAG_FLOAT:
        sample_type = _FLOAT_TYPES.get(container)
        ok = sample_type is not None and bits == 8 * container
    elif tag in (_TAG_ALAW, _TAG_ULAW):
        sample_type = "pcma" if tag == _TAG_ALAW else "pcmu"
        ok = container == 1 and bits == 8
    else:
        raise UnsupportedFileError(f"unsupported WAV format tag {_describe_tag(tag)}")
    if not ok or sample_type is None:
        kind = {_TAG_PCM: "PCM", _TAG_FLOAT: "float"}.get(tag, "G.711")
        raise UnsupportedFileError(
            f"unsupported {kind} bit depth: {bits} bits per sample in {container}-byte samples"
        )
    return sample_rate, channels, sample_type, min(valid_bits, 8 * container)


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise UnsupportedFileError(f"truncated WAV: {what} needs {n} bytes, got {len(data)}")
    return data


def _chunks_fill(f: BinaryIO, pos: int, size: int) -> bool:
    """Whether the bytes from ``pos`` to the end of the file are a chain of whole chunks.

    Each chunk header must have a printable ASCII id and a size that fits in the file, and
    the last chunk must end at the end of the file (its pad byte may be missing). Samples
    almost never look like that, so it tells a closed empty ``data`` chunk followed by
    more chunks from an unclosed one followed by its samples.
    """
    for _ in range(_MAX_TRAILING_CHUNKS):
        if pos == size:
            return True
        if pos + 8 > size:
            return False
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        if not all(0x20 <= b <= 0x7E for b in chunk_id):
            return False
        end = pos + 8 + chunk_size
        if end > size:
            return False
        pos = end + (chunk_size & 1) if end < size else end
    return False


def _parse_header(f: BinaryIO) -> _Layout:
    """Walk the RIFF chunks up to and including both ``fmt `` and ``data``."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if head[:4] == b"RF64":
            raise UnsupportedFileError("RF64 (WAV over 4 GiB) is not supported")
        raise UnsupportedFileError("not a WAV file: missing RIFF/WAVE header")
    fmt: tuple[int, int, WavSampleType, int] | None = None
    data: tuple[int, int] | None = None
    unsized = False
    pos = 12
    # The RIFF size field is often wrong in the wild, so the walk is bounded by the real
    # file size; we stop as soon as both chunks we need are known (trailing metadata such
    # as LIST/id3 chunks is never read, so damage there cannot break reading).
    while fmt is None or data is None:
        if pos >= size:
            missing = "fmt " if fmt is None else "data"
            raise UnsupportedFileError(f"invalid WAV: no '{missing}' chunk")
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", _read_exact(f, 8, "a chunk header"))
        body = pos + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16:
                raise UnsupportedFileError(f"fmt chunk too short ({chunk_size} bytes)")
            fmt = _parse_fmt(_read_exact(f, chunk_size, "the fmt chunk"))
        elif chunk_id == b"data":
            if chunk_size == 0 and _chunks_fill(f, body, size):
                pass  # a closed file with no samples: what follows are chunks, not audio
            elif chunk_size in _UNSIZED_DATA:
                # A writer that was never closed (size 0) or one streaming with an unknown
                # length (0xFFFFFFFF): the samples run to the end of the file. Chunks after
                # them cannot be told apart from samples, so none are looked for.
                chunk_size = size - body
                unsized = True
            elif body + chunk_size > size:
                raise UnsupportedFileError(
                    f"truncated WAV: data chunk declares {chunk_size} bytes, "
                    f"file holds {max(size - body, 0)}"
                )
            data = (body, chunk_size)
        pos = body + chunk_size + (chunk_size & 1)
    layout = _Layout(*fmt, data_offset=data[0], data_bytes=data[1])
    if unsized:
        # The writer may have stopped mid-frame: keep the whole frames.
        layout.data_bytes -= layout.data_bytes % layout.block_align
    elif data[1] % layout.block_align:
        raise UnsupportedFileError(
            f"truncated WAV: data chunk of {data[1]} bytes is not a whole number of "
            f"{layout.block_align}-byte frames"
        )
    return layout


def _decode(raw: bytes, layout: _Layout) -> Float32Array:
    kind = layout.sample_type
    out: Float32Array
    if kind == "pcm16":
        out = pcm16_to_float32(np.frombuffer(raw, dtype="<i2").astype(np.int16))
    elif kind == "pcm8":
        out = np.frombuffer(raw, dtype=np.uint8).astype(np.float32)
        out -= np.float32(128.0)
        out *= np.float32(1.0 / 128.0)
    elif kind == "pcm24":
        # Place the 3 bytes in the top of a little-endian int32 so the sign comes for free.
        packed = np.zeros((len(raw) // 3, 4), dtype=np.uint8)
        packed[:, 1:] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        out = packed.view("<i4").reshape(-1).astype(np.float32)
        out *= np.float32(2.0**-31)
    elif kind == "pcm32":
        out = np.frombuffer(raw, dtype="<i4").astype(np.float32)
        out *= np.float32(2.0**-31)
    elif kind == "float32":
        out = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif kind == "float64":
        out = np.frombuffer(raw, dtype="<f8").astype(np.float32)
    elif kind == "pcmu":
        out = pcm16_to_float32(ulaw_decode(raw))
    else:
        out = pcm16_to_float32(alaw_decode(raw))
    if layout.channels == 1:
        return out
    return out.reshape(-1, layout.channels)


def _encode(samples: Float32Array, sample_type: WavSampleType) -> bytes:
    if sample_type == "pcm16":
        return float32_to_pcm16(samples).astype("<i2", copy=False).tobytes()
    if sample_type == "float32":
        return samples.astype("<f4", copy=False).tobytes()
    if sample_type == "float64":
        return samples.astype("<f8").tobytes()
    if sample_type == "pcmu":
        return ulaw_encode(float32_to_pcm16(samples)).tobytes()
    if sample_type == "pcma":
        return alaw_encode(float32_to_pcm16(samples)).tobytes()
    # Integer containers other than 16-bit: scale in float64 (exact for float32 input),
    # round to nearest, clip instead of wrapping.
    x = np.nan_to_num(samples.astype(np.float64), nan=0.0)
    if sample_type == "pcm8":
        return np.clip(np.rint(x * 128.0) + 128.0, 0, 255).astype(np.uint8).tobytes()
    bits = 24 if sample_type == "pcm24" else 32
    full = float(2 ** (bits - 1))
    ints = np.clip(np.rint(x * full), -full, full - 1).astype("<i4")
    if bits == 32:
        return ints.tobytes()
    return ints.reshape(-1, 1).view(np.uint8)[:, :3].tobytes()


def _open(source: _Source, mode: Literal["rb", "wb"]) -> tuple[BinaryIO, bool]:
    """Return (file, owned): paths are opened (and later closed) by us, file objects not."""
    if isinstance(source, (str, os.PathLike)):
        return open(source, mode), True  # closed by the owner's close()
    if not (hasattr(source, "seek") and hasattr(source, "read" if mode == "rb" else "write")):
        raise UnsupportedFileError(
            f"expected a path or a seekable binary file, got {type(source).__name__}"
        )
    return source, False


class WavReader:
    """Streaming WAV reader: parses the header once, then reads frames on demand.

    Use as a context manager (or call :meth:`close`). Only the requested frames are held
    in memory, so hour-long files can be processed block by block.

    Attributes:
        sample_rate: Frames per second, in Hz.
        channels: Channels per frame.
        frames: Total frames in the file.
        sample_type: How samples are stored (``"pcm16"``, ``"pcm24"``, ``"float32"``, ...).
        bits_per_sample: Significant bits per sample (``wValidBitsPerSample`` when given).
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        """Open ``source`` and parse its header.

        Args:
            source: A path, or a seekable binary file object (left open by :meth:`close`).

        Raises:
            UnsupportedFileError: Not a WAV file we can read; the message says why.
            OSError: The path cannot be opened.
        """
        self._file, self._owned = _open(source, "rb")
        try:
            self._layout = _parse_header(self._file)
        except BaseException:
            self.close()
            raise
        self.sample_rate: int = self._layout.sample_rate
        self.channels: int = self._layout.channels
        self.frames: int = self._layout.data_bytes // self._layout.block_align
        self.sample_type: WavSampleType = self._layout.sample_type
        self.bits_per_sample: int = self._layout.valid_bits
        self._position = 0
        self._closed = False

    @property
    def position(self) -> int:
        """Index of the next frame :meth:`read` returns (frames read so far)."""
        return self._position

    @property
    def duration_ms(self) -> float:
        """Length of the file in milliseconds."""
        return self.frames * 1000.0 / self.sample_rate

    def seek(self, frame: int) -> None:
        """Move to ``frame`` (0 ≤ frame ≤ :attr:`frames`), in frames."""
        if not 0 <= frame <= self.frames:
            raise AudioFormatError(f"seek to frame {frame} outside 0..{self.frames}")
        self._position = frame

    def read(self, frames: int = -1) -> Float32Array:
        """Read up to ``frames`` frames from the current position.

        Args:
            frames: Number of frames; negative reads everything that is left.

        Returns:
            float32 samples, ``(n,)`` for mono or ``(n, channels)``, with ``n`` less than
            ``frames`` only at the end of the file (0 once it is exhausted).

        Raises:
            UnsupportedFileError: The file got shorter than its header says.
        """
        if self._closed:
            raise AudioError("WavReader is closed")
        left = self.frames - self._position
        n = left if frames < 0 else min(frames, left)
        layout = self._layout
        self._file.seek(layout.data_offset + self._position * layout.block_align)
        raw = _read_exact(self._file, n * layout.block_align, f"{n} frames of audio")
        self._position += n
        return _decode(raw, layout)

    def blocks(self, frames_per_block: int) -> Iterator[Float32Array]:
        """Yield consecutive blocks of ``frames_per_block`` frames until the end.

        Every block is full except possibly the last; nothing is dropped.

        Args:
            frames_per_block: Block length in frames (> 0).
        """
        if frames_per_block <= 0:
            raise AudioFormatError(f"frames_per_block must be positive, got {frames_per_block}")
        while self._position < self.frames:
            yield self.read(frames_per_block)

    def close(self) -> None:
        """Close the file if this reader opened it. Idempotent."""
        self._closed = True
        if self._owned:
            self._file.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fmt_chunk(layout: _Layout) -> bytes:
    kind = layout.sample_type
    bits = 8 * _BYTES_PER_SAMPLE[kind]
    tag = {"float32": _TAG_FLOAT, "float64": _TAG_FLOAT, "pcmu": _TAG_ULAW, "pcma": _TAG_ALAW}.get(
        kind, _TAG_PCM
    )
    common = (layout.sample_rate, layout.sample_rate * layout.block_align, layout.block_align, bits)
    extensible = tag != _TAG_ULAW and tag != _TAG_ALAW and (layout.channels > 2 or bits > 16)
    if extensible:
        guid = tag.to_bytes(2, "little") + _GUID_TAIL
        mask = _CHANNEL_MASKS.get(layout.channels, 0)
        body = struct.pack("<HHIIHHHHI", _TAG_EXTENSIBLE, layout.channels, *common, 22, bits, mask)
        body += guid
    elif tag == _TAG_PCM:
        body = struct.pack("<HHIIHH", tag, layout.channels, *common)
    else:
        body = struct.pack("<HHIIHHH", tag, layout.channels, *common, 0)
    return b"fmt " + struct.pack("<I", len(body)) + body


class WavWriter:
    """Streaming WAV writer: write blocks as they come; sizes are fixed up on close.

    Use as a context manager (or call :meth:`close`); a file that was never closed has
    zero-length size fields, which the readers here take as "samples up to the end of the
    file" (whole frames).
    """

    def __init__(
        self,
        dest: str | os.PathLike[str] | BinaryIO,
        sample_rate: int,
        channels: int = 1,
        *,
        sample_type: WavSampleType = "pcm16",
    ) -> None:
        """Create the file and write its header.

        Args:
            dest: A path (created or truncated), or a seekable binary file object.
            sample_rate: Frames per second, in Hz (1 to 4,294,967,295).
            channels: Channels per frame (1 to 65,535).
            sample_type: Storage format: ``"pcm8"`` (unsigned), ``"pcm16"``, ``"pcm24"``,
                ``"pcm32"``, ``"float32"``, ``"float64"``, ``"pcmu"`` or ``"pcma"`` (G.711).

        Raises:
            AudioFormatError: Bad sample rate, channel count or sample type.
        """
        if sample_type not in _BYTES_PER_SAMPLE:
            raise AudioFormatError(f"unknown WAV sample_type {sample_type!r}")
        if not 0 < sample_rate <= 0xFFFFFFFF:
            raise AudioFormatError(f"sample_rate must be 1..4294967295 Hz, got {sample_rate}")
        if not 0 < channels <= 0xFFFF:
            raise AudioFormatError(f"channels must be 1..65535, got {channels}")
        if _BYTES_PER_SAMPLE[sample_type] * channels > 0xFFFF:
            raise AudioFormatError(f"{channels} channels of {sample_type} exceed WAV's frame size")
        self._layout = _Layout(
            sample_rate, channels, sample_type, 8 * _BYTES_PER_SAMPLE[sample_type]
        )
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_type: WavSampleType = sample_type
        self._file, self._owned = _open(dest, "wb")
        self._frames = 0
        self._closed = False
        fmt = _fmt_chunk(self._layout)
        # Non-PCM formats carry a fact chunk with the frame count (patched on close).
        self._fact_at: int | None = None
        header = b"RIFF\0\0\0\0WAVE" + fmt
        if sample_type not in _PCM_TYPES.values():
            self._fact_at = len(header) + 8
            header += b"fact" + struct.pack("<II", 4, 0)
        header += b"data\0\0\0\0"
        self._data_at = len(header)
        self._file.write(header)

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._frames

    def write(self, samples: npt.ArrayLike) -> None:
        """Append samples.

        Args:
            samples: float samples in [-1, 1] (int16 is scaled by 1/32768), shaped
                ``(frames,)`` for mono or ``(frames, channels)``. Integer formats round to
                nearest and clip; float formats store the values unchanged.

        Raises:
            AudioFormatError: Wrong shape or channel count.
            UnsupportedFileError: The file would exceed WAV's 4 GiB limit.
        """
        if self._closed:
            raise AudioError("WavWriter is closed")
        x = as_float32(samples)
        if x.ndim == 2 and x.shape[1] == self.channels:
            pass
        elif x.ndim == 1 and self.channels == 1:
            pass
        else:
            raise AudioFormatError(
                f"expected (frames,) or (frames, {self.channels}) samples for a "
                f"{self.channels}-channel file, got shape {x.shape}"
            )
        data = _encode(np.ascontiguousarray(x), self.sample_type)
        new_bytes = (self._frames * self._layout.block_align) + len(data)
        if self._data_at + new_bytes + 1 > _MAX_RIFF_BYTES:
            raise UnsupportedFileError("WAV files are limited to 4 GiB (RF64 is not supported)")
        self._file.write(data)
        self._frames += x.shape[0]

    def close(self) -> None:
        """Write the pad byte and final sizes, then close the file if we opened it."""
        if self._closed:
            return
        self._closed = True
        try:
            data_bytes = self._frames * self._layout.block_align
            if data_bytes & 1:
                self._file.write(b"\0")  # RIFF pad byte; not counted in the data size
            end = self._data_at + data_bytes + (data_bytes & 1)
            self._file.seek(4)
            self._file.write(struct.pack("<I", end - 8))
            if self._fact_at is not None:
                self._file.seek(self._fact_at)
                self._file.write(struct.pack("<I", self._frames))
            self._file.seek(self._data_at - 4)
            self._file.write(struct.pack("<I", data_bytes))
            self._file.seek(end)
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_wav(path: str | os.PathLike[str] | BinaryIO) -> tuple[Float32Array, int]:
    """Read a whole WAV file.

    Args:
        path: A path or a seekable binary file object.

    Returns:
        ``(samples, sample_rate)``: float32 samples, ``(frames,)`` for mono or
        ``(frames, channels)``, and the sample rate in Hz.

    Raises:
        UnsupportedFileError: Not a WAV file we can read; the message says why.
    """
    with WavReader(path) as reader:
        return reader.read(), reader.sample_rate


def read_wav_mono(
    path: str | os.PathLike[str] | BinaryIO, sample_rate: int | None = 24_000
) -> tuple[Float32Array, int]:
    """Read a whole WAV file as mono float32 at ``sample_rate``.

    Channels are averaged. A file at another rate is resampled (one pass of a fresh
    :class:`~realtime_client.audio.resample.Resampler`, flushed) and cut to the file's own
    duration: ``round(frames * sample_rate / file_rate)`` frames.

    Args:
        path: A path or a seekable binary file object.
        sample_rate: Rate wanted, in Hz (24000: the Realtime API's); ``None`` keeps the
            file's rate.

    Returns:
        ``(samples, rate)``: 1-D float32 samples and their rate in Hz (``sample_rate``, or
        the file's when ``sample_rate`` is ``None``).

    Raises:
        UnsupportedFileError: Not a WAV file we can read; the message says why.
        AudioFormatError: A rate pair the resampler does not convert (see
            :data:`~realtime_client.audio.resample.MAX_RATIO_TERM`).
    """
    samples, rate = read_wav(path)
    mono = to_mono(samples)
    if sample_rate is None or sample_rate == rate:
        return mono, rate
    from .resample import resample

    frames = round(len(mono) * sample_rate / rate)
    return resample(mono, rate, sample_rate)[:frames], sample_rate


def write_wav(
    path: str | os.PathLike[str] | BinaryIO,
    samples: npt.ArrayLike,
    sample_rate: int,
    *,
    sample_type: WavSampleType = "pcm16",
) -> None:
    """Write samples to a WAV file.

    Args:
        path: A path (created or truncated) or a seekable binary file object.
        samples: float samples in [-1, 1] (int16 is scaled by 1/32768), ``(frames,)`` for
            mono or ``(frames, channels)``.
        sample_rate: Frames per second, in Hz.
        sample_type: Storage format, see :class:`WavWriter`.

    Raises:
        AudioFormatError: Bad shape, sample rate or sample type.
    """
    x = as_float32(samples)
    if x.ndim not in (1, 2):
        raise AudioFormatError(f"expected (frames,) or (frames, channels), got shape {x.shape}")
    channels = 1 if x.ndim == 1 else x.shape[1]
    with WavWriter(path, sample_rate, channels, sample_type=sample_type) as writer:
        writer.write(x)
