"""PNG images to arrays and back, the way ML-Agents sends them (and JPEG, as ML-Agents 0.4 did).

Unity sends a camera as one PNG, or as several PNGs back to back when it has more than
three channels (``compressed_channel_mapping`` then says which decoded channel is which).
PNGs are written unfiltered with zlib (cheap for the built-in scenes to write) and read
with libspng (``pyspng``), which decodes Unity's filtered PNGs several times faster than
Pillow and lets other threads run meanwhile. What a PNG's header declares is checked against
what the caller expects before anything is inflated. An ML-Agents 0.4
build sends each camera as one JPEG instead (:func:`jpeg_hwc`), bounded the same way: its
header must declare the camera's size before it is decoded.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pyspng
from PIL import Image

from gym_unity_il.errors import UnityProtocolError, quote
from gym_unity_il.spec import ImageFormat

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_end(data: bytes, start: int) -> int:
    """Offset just past the IEND chunk of the PNG that starts at ``start``."""
    pos = start + 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise UnityProtocolError(f"PNG observation data is truncated (no IEND chunk after offset {start})")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: its length, kind, payload and CRC."""
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_from_rgb(rgb: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` as an 8-bit RGB PNG: every row with filter type 0 (none), zlib level 1.

    Unfiltered rows cost the writer no per-pixel work."""
    h, w, _ = rgb.shape
    rows = np.zeros((h, 1 + 3 * w), np.uint8)  # each row: its filter type byte (0), then its pixels
    rows[:, 1:] = rgb.reshape(h, 3 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # size, bit depth 8, colour type RGB, no interlace
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + png_chunk(b"IEND", b"")


#: The pixel format libspng decodes each PNG colour type to, as 8-bit channels: grey stays one
#: channel (16-bit grey becomes RGB), anything with alpha becomes RGBA, the rest (RGB, palette) RGB.
_GREY, _GREY_ALPHA, _RGBA = 0, 4, 6


def _spng_format(colour_type: int, depth: int) -> str:
    if colour_type == _GREY and depth <= 8:
        return "L"
    return "RGBA" if colour_type in (_GREY_ALPHA, _RGBA) else "RGB"


def decode_png_images(data: bytes, *, max_pixels: int = Image.MAX_IMAGE_PIXELS) -> list[np.ndarray]:
    """Every PNG in ``data`` (several may follow one another) as uint8 ``(H, W, C)`` arrays.

    Raises:
        UnityProtocolError: not PNG data, a damaged PNG, or one whose header declares more
            than ``max_pixels`` pixels (checked before anything is decoded).
    """
    images = []
    start = 0
    while True:
        if data[start : start + 8] != PNG_SIGNATURE:
            raise UnityProtocolError(f"compressed observation is not PNG data (bytes at offset {start}: {data[start:start + 8]!r})")
        end = _png_end(data, start)
        png = data[start:end]
        if len(png) < 33 or png[12:16] != b"IHDR":
            raise UnityProtocolError(f"the PNG observation at offset {start} does not start with its IHDR header")
        w, h, depth, colour = struct.unpack_from(">IIBB", png, 16)
        if w * h > max_pixels:
            raise UnityProtocolError(f"the PNG observation at offset {start} declares {w}x{h} pixels, more than the {max_pixels} expected")
        try:
            arr = pyspng.load(png, _spng_format(colour, depth))  # stops inflating at the last row the header declares
        except (RuntimeError, ValueError) as exc:
            raise UnityProtocolError(f"cannot decode the PNG observation at offset {start}: {exc}") from exc
        images.append(arr[:, :, None] if arr.ndim == 2 else arr)
        nxt = data.find(PNG_SIGNATURE, end)
        if nxt < 0:
            return images
        start = nxt


def stack_channels(images: list[np.ndarray]) -> np.ndarray:
    """Decoded images of one size stacked along the channel axis (the first one itself when alone)."""
    return images[0] if len(images) == 1 else np.concatenate(images, axis=2)


def decode_png(data: bytes) -> np.ndarray:
    """All PNGs in ``data`` stacked along the channel axis: uint8 ``(H, W, sum of channels)``."""
    return stack_channels(decode_png_images(data))


def encode_png(hwc: np.ndarray) -> tuple[bytes, list[int]]:
    """uint8 ``(H, W, C)`` as PNG bytes the way Unity sends them, and the channel mapping
    (empty unless C > 3). Grayscale goes out as an RGB PNG of equal channels, as Unity does."""
    c = hwc.shape[2]
    if c == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    groups = [hwc[:, :, i : i + 3] for i in range(0, hwc.shape[2], 3)]
    mapping: list[int] = []
    pngs = []
    for gi, group in enumerate(groups):
        n = group.shape[2]
        if n < 3:
            group = np.concatenate([group, np.zeros(group.shape[:2] + (3 - n,), np.uint8)], axis=2)
        pngs.append(_png_from_rgb(group))
        mapping += [gi * 3 + k if k < n else -1 for k in range(3)]
    return b"".join(pngs), (mapping if c > 3 else [])



def png_hwc(data: bytes, mapping: list[int], shape: tuple[int, int, int], name: str) -> np.ndarray:
    """The PNG data of the observation ``name`` of HWC ``shape``, reduced to its channels as
    ML-Agents does (``mapping``: the channel each decoded channel belongs to, averaged; empty:
    the first channels, or the mean of the first image's for one channel). uint8, or float32
    on the 0..255 scale when channels are averaged.

    Raises:
        UnityProtocolError: as :func:`decode_png_images` (no image may have more pixels than
            ``shape``), a mapping that does not fit, or data that decodes to another shape.
    """
    h, w, c = shape
    images = decode_png_images(data, max_pixels=h * w)
    if mapping:
        stacked = stack_channels(images)
        if len(mapping) != stacked.shape[2]:
            raise UnityProtocolError(
                f"observation {quote(name)}: channel mapping has {len(mapping)} entries for {stacked.shape[2]} decoded channels"
            )
        out = np.empty(stacked.shape[:2] + (c,), np.float32)
        for k in range(c):
            chosen = [i for i, m in enumerate(mapping) if m == k]
            if not chosen:
                raise UnityProtocolError(f"observation {quote(name)}: channel mapping {quote(mapping)} leaves channel {k} empty")
            out[:, :, k] = stacked[:, :, chosen].mean(axis=2)
        hwc: np.ndarray = out
    elif c == 1:
        first = images[0]
        hwc = first if first.shape[2] == 1 else first.mean(axis=2, dtype=np.float32)[:, :, None]
    else:
        hwc = stack_channels(images)[:, :, :c]
    if hwc.shape != shape:
        raise UnityProtocolError(f"observation {quote(name)}: PNG data decodes to {hwc.shape}, but its shape says {shape} (HWC)")
    return hwc


JPEG_SIGNATURE = b"\xff\xd8\xff"
#: The quality of Unity's ``Texture2D.EncodeToJPG()`` without an argument.
UNITY_JPEG_QUALITY = 75


def encode_jpeg(hwc: np.ndarray, quality: int = UNITY_JPEG_QUALITY) -> bytes:
    """uint8 ``(H, W, 1 or 3)`` as an RGB JPEG, as an ML-Agents 0.4 camera sends it (gray too:
    Unity encodes its RGB24 texture)."""
    rgb = np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def jpeg_hwc(data: bytes, shape: tuple[int, int, int], name: str) -> np.ndarray:
    """The JPEG of the observation ``name`` of HWC ``shape``: uint8 RGB, or for one channel the
    mean of the RGB channels (float32 on the 0..255 scale), as ML-Agents 0.4's library read it.

    Raises:
        UnityProtocolError: not a JPEG, a header that declares another size than ``shape``'s
            (checked before anything is decoded), or a damaged JPEG.
    """
    h, w, c = shape
    if data[:3] != JPEG_SIGNATURE:
        raise UnityProtocolError(f"observation {quote(name)} is not JPEG data (it starts with {data[:8]!r}); an ML-Agents 0.4 camera sends JPEG")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            if img.size != (w, h):
                declared = f"{img.size[0]}x{img.size[1]}"
                raise UnityProtocolError(f"observation {quote(name)}: the JPEG declares {declared} pixels, the camera is {w}x{h}")
            rgb = np.asarray(img.convert("RGB") if img.mode != "RGB" else img)
    except UnityProtocolError:
        raise
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ...) on damaged data
        raise UnityProtocolError(f"cannot decode the JPEG observation {quote(name)}: {exc}") from exc
    hwc = rgb.mean(axis=2, dtype=np.float32)[:, :, None] if c == 1 else rgb
    if hwc.shape != shape:
        raise UnityProtocolError(f"observation {quote(name)}: JPEG data decodes to {hwc.shape}, but its shape says {shape} (HWC)")
    return hwc


def image_out(hwc: np.ndarray, image_format: ImageFormat) -> np.ndarray:
    """``hwc`` (uint8, or float32 on the 0..255 scale) in the env's output format."""
    if image_format == "hwc_uint8":
        return hwc if hwc.dtype == np.uint8 else np.clip(np.rint(hwc), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def raw_image_out(image: np.ndarray, channels_first: bool, image_format: ImageFormat) -> np.ndarray:
    """A raw float image (values 0..1, finite, in its wire layout) in the env's output format."""
    hwc = image.transpose(1, 2, 0) if channels_first else image
    if image_format == "hwc_uint8":
        return np.rint(np.clip(hwc, 0.0, 1.0) * 255.0).astype(np.uint8)  # clipped first: a float32 near its maximum would overflow
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32)


def hwc_uint8(image: np.ndarray, image_format: ImageFormat) -> np.ndarray:
    """An image in the env's output format as uint8 ``(H, W, C)``, what goes into a PNG."""
    if image_format == "chw_float":
        return np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    return image.astype(np.uint8, copy=False)
