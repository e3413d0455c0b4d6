"""Turning a request's base64 images into arrays, refusing anything malformed or too large first.

Sizes are read from the image header before any pixel is decoded, so a small file that claims to be
huge is refused without allocating it. Only PNG and JPEG are accepted for color and only a
single-channel 16-bit PNG for depth: nothing else from the client is ever interpreted.
"""

from __future__ import annotations

import binascii
import io
from dataclasses import dataclass

import cv2
import numpy as np
import pybase64
from PIL import Image, UnidentifiedImageError

from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.schema import TraceRequest

_COLOR_FORMATS = ("PNG", "JPEG")
_DEPTH_MODES = ("I;16", "I;16L", "I;16B")


@dataclass(frozen=True)
class DecodedFrame:
    """A request's images: color RGB uint8 (H, W, 3), depth in metres (H, W) or None (0 = none).

    The checked encoded files ride along (``color_file``: PNG or JPEG bytes with ``color_suffix``;
    ``depth_png``: the 16-bit PNG, ``depth_scale_m`` metres per unit) so a relay can write them to disk
    as they came. A frame checked without its pixels (``decode_request(..., pixels=False)``) has
    ``rgb`` and ``depth_m`` None.
    """

    rgb: np.ndarray | None
    depth_m: np.ndarray | None
    color_file: bytes = b""
    color_suffix: str = ".png"
    depth_png: bytes | None = None
    depth_scale_m: float = 0.001
    size: tuple[int, int] | None = None  # (width, height) when rgb is None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1]) if self.rgb is not None else self.size[0]

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0]) if self.rgb is not None else self.size[1]


def _b64(field: str, text: str) -> bytes:
    """Strict base64 (standard alphabet, padding, nothing else) in one SIMD pass: pybase64 checks and decodes
    a megabyte in ~0.05 ms where the standard library takes ~2 ms."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{field} is not valid base64 (standard alphabet, with padding)") from None


def _too_large(field: str, size: str, max_side_px: int) -> RequestError:
    return RequestError(
        413, f"{field} is {size}; this server accepts at most {max_side_px} px per side "
        "(resize it, or raise --max-image-side-px)", "too_large",
    )


def _open(field: str, data: bytes, formats: tuple[str, ...], max_side_px: int, load: bool = True) -> Image.Image:
    """The image, its size checked from the header first; ``load`` False checks the file's structure
    (PNG chunk checksums) without decoding the pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except UnidentifiedImageError:
        raise RequestError(400, f"{field} is not a {' or '.join(formats)} image") from None
    except Image.DecompressionBombError:
        raise _too_large(field, "more than 179 megapixels", max_side_px) from None
    except (OSError, ValueError) as err:
        raise RequestError(400, f"{field} cannot be read: {err}") from None
    width, height = image.size
    if width > max_side_px or height > max_side_px:
        raise _too_large(field, f"{width}x{height} px", max_side_px)
    if width < 1 or height < 1:
        raise RequestError(400, f"{field} is empty ({width}x{height} px)")
    try:
        if load:
            image.load()
        elif image.format == "PNG":
            Image.open(io.BytesIO(data), formats=["PNG"]).verify()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise RequestError(400, f"{field} is truncated or corrupt ({err})") from None
    return image


def decode_color(text: str, max_side_px: int) -> np.ndarray:
    """Base64 PNG/JPEG → RGB uint8 (H, W, 3)."""
    return _decode_color_bytes(_b64("image_b64", text), max_side_px)[0]


def _decode_color_bytes(data: bytes, max_side_px: int, pixels: bool = True) -> tuple[np.ndarray | None, str,
                                                                                   tuple[int, int]]:
    image = _open("image_b64", data, _COLOR_FORMATS, max_side_px, load=pixels)
    suffix = ".jpg" if image.format == "JPEG" else ".png"
    if not pixels:
        return None, suffix, image.size
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8), suffix, image.size


def decode_depth(text: str, scale_m: float, max_side_px: int) -> np.ndarray:
    """Base64 single-channel 16-bit PNG → depth in metres (H, W) float32; 0 stays 0 (no reading)."""
    return _decode_depth_bytes(_b64("depth_png_b64", text), scale_m, max_side_px)[0]


def _decode_depth_bytes(data: bytes, scale_m: float, max_side_px: int, pixels: bool = True
                        ) -> tuple[np.ndarray | None, tuple[int, int]]:
    image = _open("depth_png_b64", data, ("PNG",), max_side_px, load=pixels)
    if image.mode not in _DEPTH_MODES:
        bands = len(image.getbands())
        raise RequestError(
            400, f"depth_png_b64 must be a single-channel 16-bit PNG (as realsense aligned depth), got mode "
            f"{image.mode!r} with {bands} channel(s); encode the uint16 depth image with cv2.imencode('.png', d)",
        )
    if not pixels:
        return None, image.size
    raw = np.asarray(image).astype(np.uint16, copy=False)
    return raw.astype(np.float32) * np.float32(scale_m), image.size


def decode_request(request: TraceRequest, max_side_px: int, pixels: bool = True) -> DecodedFrame:
    """Both images of a request, checked against each other and against the stated intrinsics.

    ``pixels`` False (a relay that passes the files on) checks formats, sizes and PNG checksums from
    the files' structure without decoding the pixels.
    """
    color_file = _b64("image_b64", request.image_b64)
    rgb, suffix, (width, height) = _decode_color_bytes(color_file, max_side_px, pixels)
    depth = depth_png = None
    if request.depth_png_b64 is not None:
        depth_png = _b64("depth_png_b64", request.depth_png_b64)
        depth, (d_width, d_height) = _decode_depth_bytes(depth_png, request.depth_scale_m, max_side_px, pixels)
        if (d_width, d_height) != (width, height):
            raise RequestError(
                400, f"depth is {d_width}x{d_height} px but the color image is {width}x{height} px; send depth "
                "aligned to color",
            )
    intr = request.intrinsics
    if intr is not None and (intr.width, intr.height) != (width, height):
        raise RequestError(
            400, f"intrinsics are for {intr.width}x{intr.height} px but the color image is "
            f"{width}x{height} px; scale the intrinsics to the image sent",
        )
    return DecodedFrame(rgb, depth, color_file, suffix, depth_png, request.depth_scale_m, (width, height))


def to_model_input(frame: DecodedFrame, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The tensor-model contract's inputs for one frame: image float32 (3, H, W) RGB in [0, 1] and depth
    float32 (1, H, W) in metres (0 = none), both stretched to the model's fixed size."""
    rgb = frame.rgb
    if rgb.shape[:2] != (height, width):
        shrinking = rgb.shape[1] > width or rgb.shape[0] > height
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    image = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    image *= np.float32(1.0 / 255.0)
    if frame.depth_m is None:
        depth = np.zeros((1, height, width), np.float32)
    else:
        d = frame.depth_m
        if d.shape != (height, width):
            d = cv2.resize(d, (width, height), interpolation=cv2.INTER_NEAREST)
        depth = d[None].astype(np.float32, copy=False)
    return image, depth


def trace_to_pixels(trace: np.ndarray, width: int, height: int) -> list[tuple[float, float, float | None]]:
    """Contract output (K, 3) of normalised u, v and depth in metres → wire points in pixels of the
    client's image. Rows with non-finite u or v are padding and dropped; depth <= 0 or non-finite → None."""
    trace = np.asarray(trace, dtype=np.float64)
    points: list[tuple[float, float, float | None]] = []
    for u, v, d in trace:
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        points.append((float(u * width), float(v * height), float(d) if np.isfinite(d) and d > 0 else None))
    return points
