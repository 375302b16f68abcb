"""Streaming sample-rate conversion with low latency, in pure numpy.

Theory of operation
-------------------
A rational resampler by ``L/M`` (``L = out_rate/g``, ``M = in_rate/g``, ``g`` their gcd): the
input is (conceptually) zero-stuffed by ``L``, low-pass filtered at ``L * in_rate`` Hz by one
long prototype FIR ``h``, and every ``M``-th sample kept. Output frame ``k`` is therefore

    y[k] = sum_i  L * h[p + i*L] * x[j - i],   p = k*M mod L,  j = floor(k*M / L)

so it needs input up to frame ``j`` only: output frame ``k`` (at time ``k / out_rate``) is
emitted as soon as the input frame at or just before that instant has arrived. There is no
look-ahead, hence no hold-back: after a call, every output frame whose instant is covered by
the input received so far has been returned (``ceil(frames_in * out_rate / in_rate)`` in
total).

The prototype is a Kaiser-windowed sinc (passband to 0.9 x the lower Nyquist frequency,
stopband from the lower Nyquist frequency, 105 dB) converted to **minimum phase** by the
cepstral method. A linear-phase filter this sharp delays everything by half its length
(2.8 ms at 48 -> 24 kHz, 8.5 ms at 24 -> 8 kHz); the minimum-phase one has the same magnitude
response but puts its energy at the start, so the added latency is 0.1-0.4 ms. The price is
a non-linear phase near the band edge (group delay grows towards 0.9 x Nyquist), which
speech does not mind.

Outputs are computed in blocks of ``B`` frames (a multiple of ``L``, so every block uses the
same polyphase filters). Block ``b`` reads one contiguous row of input and multiplies it by a
fixed ``(width, B)`` banded Toeplitz matrix: one BLAS ``sgemm`` computes several blocks (and
channels) at once. A block that is only partly covered by the input is computed with zeros
in place of the missing frames (their weights are exactly zero for the frames we return)
and computed again, whole, on the next call.

Chunk invariance: BLAS results for a row may depend on the matrix shape and on the row's
position in it, so every product is computed with the same shape (``_Design.rows`` rows,
unused rows left stale). At design time a probe checks that a row's result does not depend
on its position for this BLAS, and falls back to one row per call (always bit-identical)
if it does. Output is then bit-identical for any chunking of finite input.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError

__all__ = ["MAX_RATIO_TERM", "MAX_SAMPLE_MAGNITUDE", "Resampler", "resample"]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

_FLOAT32 = np.dtype(np.float32)

#: Largest ``L`` or ``M`` in the reduced ratio ``out_rate/in_rate = L/M`` we accept; the
#: prototype filter and its design time grow with it (11,025 <-> 48,000 Hz, the worst pair
#: of real device rates, needs 640/147 and 0.5 s once; 999/500 took 3 s and 236 MB).
MAX_RATIO_TERM = 640

#: Largest sample magnitude accepted: far above any audio (full scale is 1.0), far enough
#: below float32's 3.4e38 that the filter's sums cannot overflow. Larger finite samples are
#: refused, not clipped: a resampler that changed its input's values would hide the bug
#: that produced them.
MAX_SAMPLE_MAGNITUDE = 1e30
_MAX_MAGNITUDE_F32 = float(np.float32(MAX_SAMPLE_MAGNITUDE))  # 1e30 as a sample holds it

_ATTENUATION_DB = 105.0  # design target; the minimum-phase conversion keeps >= 104 dB
_PASSBAND = 0.9  # passband edge as a fraction of the lower Nyquist frequency
_ROWS = 8  # rows per sgemm call; see _probe_rows


@dataclass(frozen=True, slots=True)
class _Design:
    """Everything fixed for one (in_rate, out_rate) pair."""

    up: int  # L
    down: int  # M
    taps: int  # T, taps per polyphase branch
    block: int  # B, output frames per block (multiple of L)
    step: int  # S = B*M/L, input frames per block
    width: int  # input frames one block reads
    matrix: Float32Array  # (width, block) banded Toeplitz polyphase matrix
    rows: int  # rows per sgemm call
    delay_ms: float
    flush_frames: int


def _kaiser_lowpass(length: int, cutoff: float, attenuation_db: float) -> Float64Array:
    """Linear-phase Kaiser-windowed sinc, ``cutoff`` in cycles/sample, unity DC gain."""
    beta = 0.1102 * (attenuation_db - 8.7)
    n = np.arange(length, dtype=np.float64) - (length - 1) / 2.0
    h: Float64Array = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(length, beta)
    h /= h.sum()
    return h


def _minimum_phase(h: Float64Array, floor_db: float) -> Float64Array:
    """Minimum-phase FIR with the magnitude response of ``h`` (same length).

    Real-cepstrum folding on a grid 32x the filter length, which keeps cepstral aliasing
    (and so the stopband lost by truncating back to ``len(h)``) below 1 dB. Stopband zeros
    are floored at ``floor_db`` because log(0) has no cepstrum.
    """
    nfft = 1 << math.ceil(math.log2(32 * len(h)))
    magnitude = np.abs(np.fft.rfft(h, nfft))
    np.maximum(magnitude, 10.0 ** (floor_db / 20.0), out=magnitude)
    cepstrum = np.fft.irfft(np.log(magnitude), nfft)
    cepstrum[1 : nfft // 2] *= 2.0  # fold the anticausal part onto the causal one
    cepstrum[nfft // 2 + 1 :] = 0.0
    h_min: Float64Array = np.fft.irfft(np.exp(np.fft.rfft(cepstrum)), nfft)[: len(h)]
    return h_min


def _peak_delay(h: Float64Array) -> float:
    """Position of the impulse response's peak, in samples, with parabolic refinement."""
    i = int(np.argmax(np.abs(h)))
    if 0 < i < len(h) - 1:
        a, b, c = (abs(float(v)) for v in h[i - 1 : i + 2])
        denom = a - 2.0 * b + c
        if denom != 0.0:
            return i + 0.5 * (a - c) / denom
    return float(i)


def _probe_rows(matrix: Float32Array, rows: int) -> bool:
    """Whether ``rows``-row products give each row a result independent of its position."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, matrix.shape[0])).astype(np.float32)
    first = a @ matrix
    for shift in range(1, rows):
        rolled = np.roll(a, shift, axis=0) @ matrix
        if not np.array_equal(
            rolled.view(np.uint32), np.roll(first, shift, axis=0).view(np.uint32)
        ):
            return False
    return True


@functools.lru_cache(maxsize=32)
def _design(in_rate: int, out_rate: int) -> _Design:
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    fast_rate = float(up * in_rate)  # rate the prototype runs at, Hz
    nyquist = min(in_rate, out_rate) / 2.0
    transition = (1.0 - _PASSBAND) * nyquist  # Hz
    # Kaiser's length estimate for the attenuation and transition width.
    d_omega = 2.0 * math.pi * transition / fast_rate
    length = math.ceil((_ATTENUATION_DB - 7.95) / (2.285 * d_omega)) + 1
    taps = -(-length // up)
    cutoff = (1.0 + _PASSBAND) / 2.0 * nyquist / fast_rate
    linear = _kaiser_lowpass(taps * up, cutoff, _ATTENUATION_DB)
    h = _minimum_phase(linear, -(_ATTENUATION_DB + 40.0))
    h *= up / h.sum()  # each polyphase branch then has unity DC gain (to within 1e-5)

    # Block size: a multiple of L (so all blocks share one matrix) that divides the output
    # of a 20 ms chunk into at most _ROWS blocks, so a 20 ms chunk is one sgemm call of
    # whole blocks. Smaller blocks waste fewer multiply-adds on the Toeplitz band's edges.
    per_20ms = max(1, out_rate // 50)
    least = max(up, -(-per_20ms // _ROWS))
    block = up * -(-least // up)
    for candidate in range(block, per_20ms + 1, up):
        if per_20ms % candidate == 0:
            block = candidate
            break
    step = block * down // up
    width = taps + ((block - 1) * down) // up
    matrix = np.zeros((width, block), dtype=np.float64)
    r = np.arange(block)
    phase = (r * down) % up
    last = (r * down) // up  # last input frame of output r, relative to the block start
    i = np.arange(taps)
    # Row t of the block's input is frame (block start - (taps-1) + t).
    matrix[(last[None, :] + taps - 1 - i[:, None]), r[None, :]] = h[
        phase[None, :] + i[:, None] * up
    ]
    matrix32 = np.ascontiguousarray(matrix, dtype=np.float32)

    rows = _ROWS
    while rows > 1 and not _probe_rows(matrix32, rows):
        rows //= 2

    delay = _peak_delay(h) / fast_rate  # seconds
    return _Design(
        up=up,
        down=down,
        taps=taps,
        block=block,
        step=step,
        width=width,
        matrix=matrix32,
        rows=rows,
        delay_ms=delay * 1000.0,
        flush_frames=math.ceil(delay * out_rate),
    )


@np.errstate(all="ignore")
def _sum_of_squares(flat: Float32Array) -> float:
    """``sum(x * x)`` in float32, without numpy's overflow warning (inf when it overflows)."""
    return float(np.dot(flat, flat))


def _check_values(flat: Float32Array) -> None:
    """Refuse NaN, inf and samples beyond :data:`MAX_SAMPLE_MAGNITUDE` (no numpy warning).

    One BLAS dot product is the whole check for ordinary audio: a finite sum of squares
    means every sample is finite and below 1.9e19. Only when it is not finite (or huge)
    is each sample looked at, to tell non-finite from merely large.
    """
    if math.isfinite(_sum_of_squares(flat)):
        return
    if not np.isfinite(flat).all():
        raise AudioFormatError("samples must be finite: got NaN or inf")
    peak = float(np.max(np.abs(flat)))
    if peak > _MAX_MAGNITUDE_F32:
        raise AudioFormatError(
            f"samples must be at most {MAX_SAMPLE_MAGNITUDE:g} in magnitude (full scale is "
            f"1.0), got {peak:g}"
        )


def _check_rate(name: str, rate: object) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioFormatError(f"{name} must be a positive integer in Hz, got {rate!r}")
    return int(rate)


class Resampler:
    """Stateful streaming resampler for float32 audio, mono or multi-channel.

    Output does not depend on how the input is chunked: any sequence of :meth:`process`
    calls followed by :meth:`flush` returns the same samples, bit for bit, as one call on
    the whole input (for finite input).

    Quality, for every pair of 8, 16, 22.05, 24, 32, 44.1 and 48 kHz: flat within 0.01 dB up
    to 0.9 x the lower Nyquist frequency, at least 100 dB rejection of anything above it
    (aliases and images), and :attr:`delay_ms` of added latency (0.1-0.4 ms, no hold-back).
    The filter is minimum phase, so the delay is smallest at low frequencies and grows
    towards the band edge.

    Length accounting: after input of ``n`` frames in total, :meth:`process` has returned
    exactly ``ceil(n * out_rate / in_rate)`` frames; :meth:`flush` then returns exactly
    :attr:`flush_frames` more (the filter delay's worth, computed with silence after the
    input).

    Args:
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz. Equal rates make a pass-through.
        channels: Channels per frame.

    Raises:
        AudioFormatError: A rate or channel count that is not a positive integer, or a
            reduced ratio ``out_rate/in_rate`` with a term above :data:`MAX_RATIO_TERM`.

    Example:
        >>> r = Resampler(48_000, 24_000)
        >>> r.process(np.zeros(960, dtype=np.float32)).shape
        (480,)
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1) -> None:
        self.in_rate = _check_rate("in_rate", in_rate)
        self.out_rate = _check_rate("out_rate", out_rate)
        if (
            isinstance(channels, bool)
            or not isinstance(channels, (int, np.integer))
            or channels <= 0
        ):
            raise AudioFormatError(f"channels must be a positive integer, got {channels!r}")
        self.channels = int(channels)
        g = math.gcd(self.in_rate, self.out_rate)
        if max(self.in_rate, self.out_rate) // g > MAX_RATIO_TERM:
            raise AudioFormatError(
                f"cannot resample {self.in_rate} Hz -> {self.out_rate} Hz: the reduced ratio "
                f"{self.out_rate // g}/{self.in_rate // g} has a term above {MAX_RATIO_TERM}"
            )
        self._design: _Design | None = None
        if self.in_rate != self.out_rate:
            self._design = _design(self.in_rate, self.out_rate)
            d = self._design
            self._a = np.zeros((d.rows, d.width), dtype=np.float32)
            self._c = np.empty((d.rows, d.block), dtype=np.float32)
        self._two_d = self.channels > 1
        self.reset()

    @property
    def delay_ms(self) -> float:
        """Added latency in ms: the filter's delay (peak of its impulse response).

        There is no hold-back on top of it: :meth:`process` returns every output frame
        whose instant the input has reached. 0.0 for a pass-through.
        """
        return 0.0 if self._design is None else self._design.delay_ms

    @property
    def has_input(self) -> bool:
        """Whether any input frame arrived since the last :meth:`reset` (or :meth:`flush`).

        Without input, :meth:`flush` would return only the silence before the stream:
        callers that end streams at arbitrary points (a gap, a close) check this first.
        """
        return self._n_in > 0

    @property
    def flush_frames(self) -> int:
        """Frames :meth:`flush` returns: ``ceil(delay_ms * out_rate / 1000)``."""
        return 0 if self._design is None else self._design.flush_frames

    def reset(self) -> None:
        """Forget all input: the next :meth:`process` starts a new stream (silence before)."""
        self._n_in = 0  # input frames received
        self._n_out = 0  # output frames returned
        d = self._design
        if d is None:
            return
        # Channel-major history. Buffer index self._base + b*step is where block b's input
        # row starts (block 0's row starts at input frame -(taps-1): the first taps-1
        # frames are the silence before the stream); self._base is a multiple of step, so
        # self._rows[b + self._base // step] is block b's row for every channel. Everything
        # past the valid data is kept zero: it stands for not-yet-received input in a partly
        # covered block.
        self._base = 0
        # Room for several 20 ms chunks between compactions (each one moves the live input).
        self._set_buffer(np.zeros((self.channels, 16 * (d.width + d.step * d.rows)), np.float32))

    def _set_buffer(self, buf: Float32Array) -> None:
        d = self._design
        assert d is not None
        self._buf = buf
        n_rows = (buf.shape[1] - d.width) // d.step + 1
        size = buf.itemsize
        self._rows: Float32Array = np.ndarray(
            (n_rows, self.channels, d.width),
            dtype=np.float32,
            buffer=buf,
            strides=(d.step * size, buf.strides[0], size),
        )

    def _validate(self, samples: object) -> Float32Array:
        if not isinstance(samples, np.ndarray):
            raise AudioFormatError(f"samples must be a numpy array, got {type(samples).__name__}")
        if samples.dtype is not _FLOAT32 and samples.dtype != _FLOAT32:
            raise AudioFormatError(
                f"samples must be float32, got {samples.dtype}: convert them first, e.g. "
                "with realtime_client.audio.formats.as_float32 (which scales int16 by "
                "1/32768) or x.astype(np.float32)"
            )
        if samples.ndim == 1:
            if self.channels != 1:
                raise AudioFormatError(
                    f"got 1-D (mono) samples, expected (frames, {self.channels})"
                )
            flat = samples
        elif samples.ndim != 2 or samples.shape[1] != self.channels:
            raise AudioFormatError(
                f"expected (frames,) or (frames, 1) for mono, (frames, channels) otherwise, "
                f"with {self.channels} channel(s); got shape {samples.shape}"
            )
        else:
            flat = samples.reshape(-1)
        # NaN or inf would leak through zero filter weights into neighbouring frames (and
        # break chunk invariance); samples near float32's limit would overflow the filter.
        _check_values(flat)
        return samples

    def process(self, samples: Float32Array) -> Float32Array:
        """Resample the next chunk of the stream.

        Args:
            samples: float32 frames, ``(frames,)`` or ``(frames, 1)`` for mono,
                ``(frames, channels)`` otherwise. Any number of frames, including 0.

        Returns:
            float32 output frames, in the same layout as ``samples``: every frame whose
            instant the input has now reached.

        Raises:
            AudioFormatError: Wrong type, dtype, shape or channel count, non-finite samples
                (NaN, inf), or samples beyond :data:`MAX_SAMPLE_MAGNITUDE` (finite values
                that large are refused, not clipped). No numpy warning is issued. The
                stream state is left unchanged.
        """
        x = self._validate(samples)
        self._two_d = x.ndim == 2
        frames = x.shape[0]
        d = self._design
        if d is None:
            self._n_in += frames
            self._n_out += frames
            passed: Float32Array = x.copy()
            return passed
        end = self._n_in + d.taps - 1 + self._base  # first free buffer index
        if end + frames + d.width + d.step * d.rows > self._buf.shape[1]:
            end = self._compact(frames)
        if x.ndim == 1:
            self._buf[0, end : end + frames] = x
        else:
            self._buf[:, end : end + frames] = x.T
        self._n_in += frames
        return self._emit(-(-self._n_in * d.up // d.down))

    def flush(self) -> Float32Array:
        """End the stream: return the last :attr:`flush_frames` frames, then :meth:`reset`.

        Returns:
            float32 frames computed as if silence followed the input, in the layout of the
            last :meth:`process` call (1-D for mono if there was none).
        """
        if self._design is None:
            out = np.zeros((0, self.channels) if self._two_d else 0, dtype=np.float32)
        else:
            out = self._emit(self._n_out + self._design.flush_frames)
        self.reset()
        return out

    def _compact(self, frames: int) -> int:
        """Drop input no longer needed, growing the buffer if needed; return the free index.

        The live input moves to the front of the same buffer (no allocation, the strided
        row view stays valid) and what it leaves behind is zeroed, keeping the invariant
        that everything past the valid data is zero. A new buffer is made only when the
        live input plus this chunk does not fit.
        """
        d = self._design
        assert d is not None
        end = self._n_in + d.taps - 1 + self._base
        keep = (self._n_out // d.block) * d.step + self._base  # row start of the next block
        live = end - keep
        needed = live + frames + d.width + d.step * d.rows
        self._base -= keep
        if needed <= self._buf.shape[1]:
            buf = self._buf
            if keep:
                buf[:, :live] = buf[:, keep:end]  # numpy copies overlapping slices safely
                buf[:, live:end] = 0.0
            return live
        fresh = np.zeros((self.channels, 2 * needed), dtype=np.float32)
        fresh[:, :live] = self._buf[:, keep:end]
        self._set_buffer(fresh)
        return live

    def _emit(self, stop: int) -> Float32Array:
        """Compute and return output frames ``[self._n_out, stop)``."""
        d = self._design
        assert d is not None
        start = self._n_out
        count = stop - start
        ch = self.channels
        if count <= 0:
            return np.zeros((0, ch) if self._two_d else 0, dtype=np.float32)
        block = d.block
        first_block = start // block
        n_blocks = (stop - 1) // block - first_block + 1
        row = first_block + self._base // d.step
        if row + n_blocks > self._rows.shape[0]:  # flush can reach past the zero margin
            grown = np.zeros((ch, (row + n_blocks + 1) * d.step + d.width), dtype=np.float32)
            grown[:, : self._buf.shape[1]] = self._buf
            self._set_buffer(grown)
        skip = start - first_block * block
        self._n_out = stop
        a, c, rows = self._a, self._c, self._rows
        per_call = d.rows // ch  # whole blocks (all channels) per sgemm call
        if per_call == 0:
            # More channels than rows per call: each call takes a group of up to d.rows
            # channels of one block. The product keeps its fixed shape (d.rows rows), so
            # each row's result is the same as in any other call: chunk invariance holds.
            wide = np.empty((n_blocks, block, ch), dtype=np.float32)
            for b in range(n_blocks):
                for c0 in range(0, ch, d.rows):
                    k = min(d.rows, ch - c0)
                    a[:k] = rows[row + b, c0 : c0 + k]
                    np.matmul(a, d.matrix, out=c)
                    wide[b, :, c0 : c0 + k] = c[:k].T
            many: Float32Array = wide.reshape(n_blocks * block, ch)[skip : skip + count]
            return many  # always 2-D: more than one channel
        if ch == 1 and n_blocks <= per_call:  # the common case: one call, mono
            a[:n_blocks] = rows[row : row + n_blocks, 0]
            np.matmul(a, d.matrix, out=c)
            mono: Float32Array = c.reshape(-1)[skip : skip + count].copy()
            return mono[:, None] if self._two_d else mono
        out = np.empty((n_blocks, block, ch), dtype=np.float32)
        a3 = a[: per_call * ch].reshape(per_call, ch, d.width)
        c3 = c[: per_call * ch].reshape(per_call, ch, block)
        for b0 in range(0, n_blocks, per_call):
            nb = min(per_call, n_blocks - b0)
            a3[:nb] = rows[row + b0 : row + b0 + nb]
            np.matmul(a, d.matrix, out=c)
            out[b0 : b0 + nb] = c3[:nb].transpose(0, 2, 1)
        flat = out.reshape(n_blocks * block, ch)[skip : skip + count]
        return flat if self._two_d else flat[:, 0]


def resample(samples: Float32Array, in_rate: int, out_rate: int) -> Float32Array:
    """Resample a whole signal: ``process()`` then ``flush()`` of a fresh :class:`Resampler`.

    Args:
        samples: float32 frames, ``(frames,)`` mono or ``(frames, channels)``.
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz.

    Returns:
        ``ceil(frames * out_rate / in_rate) + flush_frames`` float32 frames, same layout.

    Raises:
        AudioFormatError: As for :class:`Resampler`.
    """
    channels = samples.shape[1] if isinstance(samples, np.ndarray) and samples.ndim == 2 else 1
    r = Resampler(in_rate, out_rate, channels)
    head = r.process(samples)
    tail = r.flush()
    return np.concatenate([head, tail])
