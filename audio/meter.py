"""Level metering: RMS and peak in dBFS, one-shot or with meter ballistics per block.

dBFS here is relative to a full-scale *square* wave: a constant ±1.0 signal reads 0 dBFS
RMS, so a full-scale sine reads -3.01 dBFS RMS and 0 dBFS peak. Multi-channel input is
pooled (RMS over every sample, peak over every sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError
from .formats import as_float32

__all__ = ["LevelMeter", "MeterReading", "level_dbfs"]

_Float64Array = npt.NDArray[np.float64]


def _power_db(mean_square: float) -> float:
    return 10.0 * math.log10(mean_square) if mean_square > 0.0 else -math.inf


def _amplitude_db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0.0 else -math.inf


def _as_frames(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    x = as_float32(samples)
    if x.ndim not in (1, 2):
        raise AudioFormatError(f"expected (frames,) or (frames, channels), got shape {x.shape}")
    return x


def level_dbfs(samples: npt.ArrayLike) -> tuple[float, float]:
    """Measure the RMS and peak level of a block.

    Args:
        samples: float samples in [-1, 1] or int16 (scaled by 1/32768), ``(frames,)`` or
            ``(frames, channels)``.

    Returns:
        ``(rms_dbfs, peak_dbfs)``. Digital silence and empty input give ``-inf`` for both
        (use :class:`LevelMeter` for a floored value suited to a display).

    Raises:
        AudioFormatError: Not audio-shaped or not numeric.
    """
    x = _as_frames(samples)
    if x.size == 0:
        return -math.inf, -math.inf
    mean_square = float(np.mean(np.square(x, dtype=np.float64)))
    peak = float(np.max(np.abs(x)))
    return _power_db(mean_square), _amplitude_db(peak)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What a meter shows after a block.

    Attributes:
        rms_dbfs: Exponentially averaged RMS level in dBFS (floored).
        peak_dbfs: Peak level with instant attack and linear-in-dB fall-back, in dBFS
            (floored).
        clipped: Whether this block held a sample at or beyond full scale.
    """

    rms_dbfs: float
    peak_dbfs: float
    clipped: bool


class LevelMeter:
    """A level meter with ballistics, fed block by block (for a UI or a log line).

    RMS is an exponential moving average of the squared signal with time constant
    ``rms_time_constant_ms`` (300 ms is the VU meter's integration time). Peak jumps up at
    once and falls back at ``peak_decay_db_per_s`` (20 dB/s is close to a PPM's return).
    Both are computed as if updated sample by sample, so the readings do not depend on the
    block size. Readings never go below ``floor_dbfs``, so silence shows as the floor
    instead of ``-inf``.

    Attributes:
        clip_count: Samples at or beyond full scale since creation or :meth:`reset`.

    Example:
        >>> meter = LevelMeter(24_000)
        >>> reading = meter.update(block)        # doctest: +SKIP
        >>> bar = reading.rms_dbfs               # doctest: +SKIP
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        rms_time_constant_ms: float = 300.0,
        peak_decay_db_per_s: float = 20.0,
        floor_dbfs: float = -100.0,
    ) -> None:
        """Create a meter at rest (showing the floor).

        Args:
            sample_rate: Sample rate of the blocks, in Hz.
            rms_time_constant_ms: Time constant of the RMS average, in ms (> 0).
            peak_decay_db_per_s: How fast the peak falls back, in dB per second (≥ 0).
            floor_dbfs: Lowest reading, in dBFS (shown for silence).

        Raises:
            AudioFormatError: A parameter is out of range.
        """
        if sample_rate <= 0:
            raise AudioFormatError(f"sample_rate must be positive, got {sample_rate}")
        if rms_time_constant_ms <= 0:
            raise AudioFormatError(f"rms_time_constant_ms must be > 0, got {rms_time_constant_ms}")
        if peak_decay_db_per_s < 0:
            raise AudioFormatError(f"peak_decay_db_per_s must be ≥ 0, got {peak_decay_db_per_s}")
        self.sample_rate = sample_rate
        self.floor_dbfs = float(floor_dbfs)
        # Per-sample factors: the mean-square average keeps `_rms_keep` of its value per
        # sample, the peak loses peak_decay_db_per_s / sample_rate dB per sample.
        self._rms_keep = math.exp(-1000.0 / (rms_time_constant_ms * sample_rate))
        self._peak_keep = 10.0 ** (-peak_decay_db_per_s / (20.0 * sample_rate))
        self._weights_for = -1
        self._rms_weights: _Float64Array = np.empty(0)
        self._peak_weights: _Float64Array = np.empty(0)
        self.reset()

    def reset(self) -> None:
        """Return to rest: levels at the floor, clip count zero."""
        self._mean_square = 0.0
        self._peak = 0.0
        self.clip_count = 0

    def _weights(self, n: int) -> tuple[_Float64Array, _Float64Array]:
        # Blocks usually have the same size, so the decay vectors are built once.
        if n != self._weights_for:
            ages = np.arange(n - 1, -1, -1, dtype=np.float64)
            self._rms_weights = (1.0 - self._rms_keep) * self._rms_keep**ages
            self._peak_weights = self._peak_keep**ages
            self._weights_for = n
        return self._rms_weights, self._peak_weights

    def update(self, samples: npt.ArrayLike) -> MeterReading:
        """Feed one block and return the readings at its end.

        Args:
            samples: float samples in [-1, 1] or int16, ``(frames,)`` or
                ``(frames, channels)``; any block size, including empty.

        Returns:
            The meter's reading after the block.

        Raises:
            AudioFormatError: Not audio-shaped or not numeric.
        """
        x = _as_frames(samples)
        n = x.shape[0]
        clipped = False
        if n:
            x64 = x.astype(np.float64)
            if x64.ndim == 2:
                square = np.mean(np.square(x64), axis=1)
                magnitude = np.max(np.abs(x64), axis=1)
            else:
                square = np.square(x64)
                magnitude = np.abs(x64)
            rms_w, peak_w = self._weights(n)
            # Closed form of y[k] = keep * y[k-1] + (1 - keep) * x[k]^2 over the block.
            self._mean_square = self._rms_keep**n * self._mean_square + float(square @ rms_w)
            self._peak = max(self._peak * self._peak_keep**n, float(np.max(magnitude * peak_w)))
            n_clipped = int(np.count_nonzero(np.abs(x) >= 1.0))
            self.clip_count += n_clipped
            clipped = n_clipped > 0
        return MeterReading(self.rms_dbfs, self.peak_dbfs, clipped)

    @property
    def rms_dbfs(self) -> float:
        """Current averaged RMS level in dBFS, not below ``floor_dbfs``."""
        return max(_power_db(self._mean_square), self.floor_dbfs)

    @property
    def peak_dbfs(self) -> float:
        """Current peak level (with fall-back) in dBFS, not below ``floor_dbfs``."""
        return max(_amplitude_db(self._peak), self.floor_dbfs)
