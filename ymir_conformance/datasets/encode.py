"""Encode an RGB array into the bytes of one asset format (deterministic for a given Pillow build)."""
from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

JPEG_QUALITY = 85
_PIL_FORMATS = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}


def encode_image(packed: npt.NDArray[np.uint32], fmt: str) -> bytes:
    """Encode H x W packed RGBX pixels (C-contiguous) as ``fmt``, an asset ext: jpg, png or bmp."""
    height, width = packed.shape
    image = Image.frombuffer("RGBX", (width, height), np.ascontiguousarray(packed), "raw", "RGBX", 0, 1)
    buf = io.BytesIO()
    pil_format = _PIL_FORMATS[fmt]
    if pil_format == "JPEG":  # the JPEG encoder takes RGBX as is: no copy
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
    elif pil_format == "PNG":
        image.convert("RGB").save(buf, format="PNG", compress_level=1)
    else:
        image.convert("RGB").save(buf, format=pil_format)
    return buf.getvalue()


def pil_ext(image_bytes: bytes) -> str:
    """The extension ymir 1.1 derived from PIL (``jpeg``, ``png``, ``bmp``...); ``unknown`` if unreadable."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            return (image.format or "unknown").lower()
    except OSError:
        return "unknown"
