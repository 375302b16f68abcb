"""A tiny RGB canvas with a 3x5 bitmap font, written as PNG with zlib + struct.

No plotting library: the timeline picture of ``realtime-replay`` is drawn with numpy
slices into an ``(height, width, 3)`` uint8 array and encoded here.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Canvas", "read_png_size", "write_png"]

RGB = tuple[int, int, int]
_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# 3 columns x 5 rows per glyph, rows top to bottom ('#' is ink); upper case only:
# the canvas upper-cases what it writes. A space has no ink.
_GLYPHS = """
A .#. #.# ### #.# #.#
B ##. #.# ##. #.# ##.
C .## #.. #.. #.. .##
D ##. #.# #.# #.# ##.
E ### #.. ##. #.. ###
F ### #.. ##. #.. #..
G .## #.. #.# #.# .##
H #.# #.# ### #.# #.#
I ### .#. .#. .#. ###
J ..# ..# ..# #.# .#.
K #.# #.# ##. #.# #.#
L #.. #.. #.. #.. ###
M #.# ### ### #.# #.#
N ##. #.# #.# #.# #.#
O .#. #.# #.# #.# .#.
P ##. #.# ##. #.. #..
Q .#. #.# #.# ##. .##
R ##. #.# ##. #.# #.#
S .## #.. .#. ..# ##.
T ### .#. .#. .#. .#.
U #.# #.# #.# #.# ###
V #.# #.# #.# #.# .#.
W #.# #.# ### ### #.#
X #.# #.# .#. #.# #.#
Y #.# #.# .#. .#. .#.
Z ### ..# .#. #.. ###
0 ### #.# #.# #.# ###
1 .#. ##. .#. .#. ###
2 ##. ..# .#. #.. ###
3 ##. ..# .#. ..# ##.
4 #.# #.# ### ..# ..#
5 ### #.. ##. ..# ##.
6 .## #.. ### #.# ###
7 ### ..# .#. .#. .#.
8 ### #.# ### #.# ###
9 ### #.# ### ..# ##.
. ... ... ... ... .#.
, ... ... ... .#. #..
: ... .#. ... .#. ...
- ... ... ### ... ...
+ ... .#. ### .#. ...
/ ..# ..# .#. #.. #..
( .#. #.. #.. #.. .#.
) .#. ..# ..# ..# .#.
% #.# ..# .#. #.. #.#
= ... ### ... ### ...
> #.. .#. ..# .#. #..
< ..# .#. #.. .#. ..#
? ##. ..# .#. ... .#.
! .#. .#. .#. ... .#.
_ ... ... ... ... ###
' .#. .#. ... ... ...
" #.# #.# ... ... ...
# #.# ### #.# ### #.#
[ ##. #.. #.. #.. ##.
] .## ..# ..# ..# .##
"""


def _glyph_masks() -> dict[str, npt.NDArray[np.bool_]]:
    masks = {" ": np.zeros((5, 3), dtype=bool)}
    for line in _GLYPHS.strip().splitlines():
        char, rows = line[0], line[2:].split()
        masks[char] = np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    return masks


_MASKS = _glyph_masks()


class Canvas:
    """An RGB image to draw on with clipped rectangles, lines and text.

    Args:
        width: Width in pixels.
        height: Height in pixels.
        background: Fill colour.
    """

    def __init__(self, width: int, height: int, background: RGB = (255, 255, 255)) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"canvas size must be positive, got {width}x{height}")
        self.width = width
        self.height = height
        self.pixels: npt.NDArray[np.uint8] = np.empty((height, width, 3), dtype=np.uint8)
        self.pixels[:, :] = background

    def _clip(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        return (
            max(0, min(self.width, x0)),
            max(0, min(self.height, y0)),
            max(0, min(self.width, x1)),
            max(0, min(self.height, y1)),
        )

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: RGB, alpha: float = 1.0) -> None:
        """Fill ``[x0, x1) x [y0, y1)``, blended over what is there when ``alpha < 1``."""
        x0, y0, x1, y1 = self._clip(x0, y0, x1, y1)
        if x1 <= x0 or y1 <= y0:
            return
        region = self.pixels[y0:y1, x0:x1]
        if alpha >= 1.0:
            region[:, :] = color
        else:
            mixed = region.astype(np.float32) * (1 - alpha) + np.array(color) * alpha
            region[:, :] = mixed.round().astype(np.uint8)

    def vline(self, x: int, y0: int, y1: int, color: RGB, width: int = 1) -> None:
        """A vertical line ``width`` pixels wide starting at column ``x``."""
        self.rect(x, y0, x + width, y1, color)

    def hline(self, x0: int, x1: int, y: int, color: RGB, width: int = 1) -> None:
        """A horizontal line ``width`` pixels high starting at row ``y``."""
        self.rect(x0, y, x1, y + width, color)

    def columns(
        self, x0: int, lows: npt.NDArray[np.int_], highs: npt.NDArray[np.int_], color: RGB
    ) -> None:
        """One vertical span per column from ``x0``: rows ``lows[i]..highs[i]`` inclusive."""
        for i, (lo, hi) in enumerate(zip(lows.tolist(), highs.tolist(), strict=True)):
            self.rect(x0 + i, int(lo), x0 + i + 1, int(hi) + 1, color)

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        """Width in pixels of ``text`` drawn at ``scale``."""
        return max(0, len(text) * 4 * scale - scale)

    def text(self, x: int, y: int, text: str, color: RGB = (0, 0, 0), scale: int = 2) -> int:
        """Draw ``text`` with its top-left corner at ``(x, y)``; returns the x after it.

        Characters without a glyph are drawn as ``?``.
        """
        for char in text.upper():
            mask = _MASKS.get(char, _MASKS["?"])
            big = np.kron(mask, np.ones((scale, scale), dtype=bool))
            h, w = big.shape
            x0, y0, x1, y1 = self._clip(x, y, x + w, y + h)
            if x1 > x0 and y1 > y0:
                sub = big[y0 - y : y1 - y, x0 - x : x1 - x]
                self.pixels[y0:y1, x0:x1][sub] = color
            x += 4 * scale
        return x

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the canvas as a PNG file."""
        write_png(path, self.pixels)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(path: str | os.PathLike[str], rgb: npt.NDArray[np.uint8]) -> None:
    """Write an ``(height, width, 3)`` uint8 array as an 8-bit RGB PNG.

    Raises:
        ValueError: The array is not ``(height, width, 3)`` uint8.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (height, width, 3) uint8, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    # Filter type 0 (none) on every row: the picture is mostly flat colour, which
    # deflate already packs well.
    rows = np.zeros((height, width * 3 + 1), dtype=np.uint8)
    rows[:, 1:] = rgb.reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
    Path(path).write_bytes(data)


def read_png_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` from a PNG file's header.

    Raises:
        ValueError: Not a PNG file.
    """
    head = Path(path).read_bytes()[:33]
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)
