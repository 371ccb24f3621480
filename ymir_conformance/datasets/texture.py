"""Cheap textured backgrounds: one precomputed noise tile per seed, cropped (or tiled) per image.

Pixels are handled packed, one ``uint32`` per RGBX pixel (see ``pack``), so that fills and the noise
addition are single vectorised operations on a 2-D array; a colour channel plus noise never exceeds 255,
so the packed addition never carries from one byte into the next.
"""
from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image

from .palette import MAX_CHANNEL

TILE = 640
NOISE_SPAN = 255 - MAX_CHANNEL  # noise values are < NOISE_SPAN, so colour + noise never wraps in uint8


@lru_cache(maxsize=8)
def noise_tile(seed: int) -> npt.NDArray[np.uint32]:
    """A TILE x TILE packed RGBX texture: fine white noise plus a smooth low-frequency blotch pattern."""
    rng = np.random.Generator(np.random.PCG64([seed, 0x7E57]))
    half = NOISE_SPAN // 4  # fine grain kept small: it is what costs JPEG encoding time
    fine = rng.integers(0, half, size=(TILE, TILE, 3), dtype=np.uint8)
    coarse_small = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
    coarse = np.asarray(Image.fromarray(coarse_small).resize((TILE, TILE), Image.Resampling.BILINEAR))
    coarse = (coarse.astype(np.uint16) * (NOISE_SPAN - half) // 256).astype(np.uint8)
    rgbx = np.zeros((TILE, TILE, 4), dtype=np.uint8)
    rgbx[:, :, :3] = fine + coarse[:, :, None]
    tile = rgbx.view(np.uint32)[:, :, 0]
    tile.setflags(write=False)
    return tile


def pack(rgb: tuple[int, int, int]) -> int:
    """One RGB colour as the packed RGBX ``uint32`` value, in the machine's byte order."""
    r, g, b = rgb
    if sys.byteorder == "little":
        return r | g << 8 | b << 16
    return r << 24 | g << 16 | b << 8


def noise_patch(
    tile: npt.NDArray[np.uint32], rng: np.random.Generator, height: int, width: int
) -> npt.NDArray[np.uint32]:
    """A height x width packed view (or tiled copy, for large images) of ``tile`` at a random offset."""
    size = tile.shape[0]
    if height <= size and width <= size:
        uy, ux = rng.random(2).tolist()
        oy = int(uy * (size - height + 1))
        ox = int(ux * (size - width + 1))
        return tile[oy : oy + height, ox : ox + width]
    reps = (-(-height // size), -(-width // size))
    return np.tile(tile, reps)[:height, :width]
