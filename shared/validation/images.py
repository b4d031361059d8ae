"""Inline images (``data:`` URIs) of vision training data, checked without decoding them whole.

The limits come from the model catalogue's ``vision`` section: JPEG, PNG or WEBP,
at most 10 MB once decoded, RGB or RGBA. The decoded size follows from the
base64 text's length; only the first bytes are decoded, to check that they are
the image type the URI names and to read its colour mode (PNG: the header's
colour type; JPEG: the number of components of its frame header; WEBP is
always RGB or RGBA). Images linked by ``https://`` URL are not fetched.
"""
from __future__ import annotations

import binascii
from functools import lru_cache

from ..catalogue import VisionLimits, load_catalogue

__all__ = ["check_data_uri", "vision_limits"]

_HEAD_CHARS = 1 << 18  # base64 characters decoded from the start (192 KB of image): headers and a JPEG's
# frame header lie there (APPn segments are at most 64 KB each)
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# JPEG frame headers (SOF0-SOF15 but DHT C4, JPG C8, DAC CC)
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@lru_cache(maxsize=1)
def vision_limits() -> VisionLimits:
    return load_catalogue().vision


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"GIF8",):
        return "image/gif"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def _png_mode(head: bytes) -> str | None:
    # signature (8), IHDR length (4) and type (4), width (4), height (4), bit depth (1), colour type (1)
    if len(head) < 26 or head[12:16] != b"IHDR":
        return None
    return {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale with alpha", 6: "RGBA"}.get(head[25], "unknown")


def _jpeg_mode(head: bytes) -> str | None:
    pos = 2
    n = len(head)
    while pos + 4 <= n:
        if head[pos] != 0xFF:
            return None  # not at a marker: stop guessing
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD9:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(head[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 9 >= n:
                return None
            return {1: "grayscale", 3: "RGB", 4: "CMYK"}.get(head[pos + 9], "unknown")
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def check_data_uri(url: str) -> tuple[str, str] | None:
    """``(code, message)`` for an inline image that breaks a rule, else None. ``url`` starts
    with ``data:``."""
    limits = vision_limits()
    comma = url.find(",")
    if comma < 0:
        return "invalid_image_data", "the data URI has no ',' before its data; write data:image/png;base64,<data>"
    header = url[5:comma]
    params = [p.strip().lower() for p in header.split(";")]
    media = _ALIASES.get(params[0], params[0])
    allowed = limits.image_media_types
    names = ", ".join(_NAMES.get(m, m) for m in allowed)
    if media not in allowed:
        return ("unsupported_image_format", f"the inline image is {params[0] or 'of no type'}; images must be "
                                            f"{names}: convert it")
    if "base64" not in params[1:]:
        return "invalid_image_data", (f"the inline image is not base64-encoded; write data:{params[0]};base64,"
                                      f"<data>")
    data_len = len(url) - comma - 1
    pad = 2 if url.endswith("==") else 1 if url.endswith("=") else 0
    size = data_len * 3 // 4 - pad
    if size > limits.max_image_bytes:
        return ("image_too_large", f"the inline image is {size:,} bytes; images must be at most "
                                   f"{limits.max_image_bytes:,} bytes ({limits.max_image_bytes >> 20} MB): resize or "
                                   f"recompress it")
    chunk = url[comma + 1:comma + 1 + min(data_len, _HEAD_CHARS)]
    chunk = chunk[:len(chunk) - len(chunk) % 4] if len(chunk) < data_len else chunk
    try:
        head = binascii.a2b_base64(chunk, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        return "invalid_image_data", f"the inline image's data is not valid base64 ({exc})"
    if not head:
        return "invalid_image_data", "the inline image has no data"
    actual = _sniff(head)
    if actual != media:
        what = f"a {_NAMES.get(actual, actual.split('/')[1].upper())} image" if actual else "not an image file"
        fix = (f"write data:{actual};base64,..." if actual in allowed else f"convert it to {names}")
        code = "invalid_image_data" if actual in allowed or actual is None else "unsupported_image_format"
        return code, f"the inline image says {params[0]} but its bytes are {what}: {fix}"
    mode = _png_mode(head) if media == "image/png" else _jpeg_mode(head) if media == "image/jpeg" else None
    if mode is not None and mode not in limits.image_modes and mode != "unknown":
        return ("image_not_rgb", f"the inline {_NAMES[media]} image is {mode}; images must be "
                                 f"{' or '.join(limits.image_modes)}: convert it")
    return None
