"""Request images to arrays: exact decoding, refusals with reasons (truncated, wrong kind, too large), the
contract's preprocessing, and pixels back out. Arbitrary bytes never escape as anything but a RequestError."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.images import (
    DecodedFrame,
    decode_color,
    decode_depth,
    decode_request,
    to_model_input,
    trace_to_pixels,
)
from spatial_trace_ros.server.schema import TraceRequest

MAX_SIDE = 4096


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def rgb_png(rgb: np.ndarray) -> bytes:
    return png(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)


def test_png_color_decodes_exactly_and_jpeg_closely(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(decode_color(b64(rgb_png(rgb)), MAX_SIDE), rgb)
    smooth = np.repeat(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], 24, axis=0).repeat(3, axis=2)
    _, jpeg = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = decode_color(b64(jpeg.tobytes()), MAX_SIDE)
    assert decoded.shape == (24, 40, 3) and np.abs(decoded.astype(int) - smooth).max() <= 8


def test_gray_and_rgba_pngs_become_rgb(rgb: np.ndarray) -> None:
    gray = rgb[:, :, 0]
    np.testing.assert_array_equal(decode_color(b64(png(gray)), MAX_SIDE), np.repeat(gray[:, :, None], 3, axis=2))
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]), "RGBA").save(buffer, "PNG")
    np.testing.assert_array_equal(decode_color(b64(buffer.getvalue()), MAX_SIDE), rgb)


def test_depth_png_is_exact_in_metres() -> None:
    raw = np.arange(24 * 40, dtype=np.uint16).reshape(24, 40) * 37
    depth = decode_depth(b64(png(raw)), 0.001, MAX_SIDE)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, raw.astype(np.float64) * 0.001, rtol=1e-6)
    assert depth[0, 0] == 0.0


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda rgb: rgb_png(rgb)[:-30], 400, "truncated"),
        (lambda rgb: rgb_png(rgb)[:40], 400, "image_b64"),
        (lambda rgb: b"GIF89a" + bytes(40), 400, "not a PNG or JPEG"),
        (lambda rgb: b"", 400, "not a PNG or JPEG"),
    ],
)
def test_broken_color_images_are_refused_with_reasons(rgb: np.ndarray, make: object, status: int,
                                                      reason: str) -> None:
    with pytest.raises(RequestError, match=reason) as caught:
        decode_color(b64(make(rgb)), MAX_SIDE)
    assert caught.value.status_code == status


@pytest.mark.parametrize("make", [
    lambda text: "abc$",  # a character outside the alphabet
    lambda text: text[:-4] + "\n" + text[-4:],  # a line break (strict: not skipped)
    lambda text: text.rstrip("=")[:-1],  # padding missing
    lambda text: text.replace("+", "-").replace("/", "_") + "-_",  # the URL-safe alphabet
    lambda text: text[:-4] + "é" + text[-4:],  # not ASCII
    lambda text: text + "=",  # padding where none belongs
])
def test_bad_base64_is_named(make) -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    with pytest.raises(RequestError, match="image_b64 is not valid base64"):
        decode_color(make(b64(rgb_png(rgb))), MAX_SIDE)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("width", "height"), [(5000, 10), (10, 4097), (60_000, 60_000)])
def test_oversized_images_are_refused_from_the_header_alone(width: int, height: int) -> None:
    with pytest.raises(RequestError, match="px per side") as caught:
        decode_color(b64(_png_claiming(width, height)), MAX_SIDE)
    assert caught.value.status_code == 413 and caught.value.outcome == "too_large"


def test_side_limit_is_configurable(rgb: np.ndarray) -> None:
    with pytest.raises(RequestError, match="40x24 px; this server accepts at most 32 px"):
        decode_color(b64(rgb_png(rgb)), 32)


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.full((8, 8), 7, np.uint8), "16-bit"),
        (np.full((8, 8, 3), 900, np.uint16), "3 channel"),
        (np.full((8, 8, 4), 900, np.uint16), "single-channel"),
    ],
)
def test_depth_must_be_a_single_channel_16_bit_png(array: np.ndarray, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        decode_depth(b64(png(array)), 0.001, MAX_SIDE)


def test_depth_as_jpeg_is_refused() -> None:
    _, jpeg = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))
    with pytest.raises(RequestError, match="depth_png_b64 is not a PNG image"):
        decode_depth(b64(jpeg.tobytes()), 0.001, MAX_SIDE)


def test_request_checks_depth_and_intrinsics_against_the_color_image(rgb: np.ndarray) -> None:
    color = b64(rgb_png(rgb))
    frame = decode_request(TraceRequest(instruction="go", image_b64=color,
                                        depth_png_b64=b64(png(np.full((24, 40), 1500, np.uint16)))), MAX_SIDE)
    assert (frame.width, frame.height) == (40, 24) and float(frame.depth_m[3, 3]) == pytest.approx(1.5)
    with pytest.raises(RequestError, match="depth is 41x24 px but the color image is 40x24"):
        decode_request(TraceRequest(instruction="go", image_b64=color,
                                    depth_png_b64=b64(png(np.zeros((24, 41), np.uint16)))), MAX_SIDE)
    intrinsics = {"fx": 30.0, "fy": 30.0, "cx": 20.0, "cy": 12.0, "width": 80, "height": 48}
    with pytest.raises(RequestError, match="intrinsics are for 80x48 px"):
        decode_request(TraceRequest(instruction="go", image_b64=color, intrinsics=intrinsics), MAX_SIDE)


def test_model_input_follows_the_contract(rgb: np.ndarray) -> None:
    depth = np.full((24, 40), 1.25, np.float32)
    image, depth_in = to_model_input(DecodedFrame(rgb, depth), 40, 24)
    assert image.dtype == np.float32 and image.shape == (3, 24, 40) and depth_in.shape == (1, 24, 40)
    np.testing.assert_allclose(image, rgb.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(depth_in[0], depth)
    image, depth_in = to_model_input(DecodedFrame(rgb, None), 20, 12)
    assert image.shape == (3, 12, 20) and image.min() >= 0.0 and image.max() <= 1.0
    assert not depth_in.any()


def test_trace_to_pixels_scales_drops_padding_and_marks_missing_depth() -> None:
    trace = np.array([[0.5, 0.25, 1.2], [np.nan, 0.1, 1.0], [1.0, 1.0, 0.0], [0.0, 0.5, np.nan], [0.1, 0.2, -3.0]])
    assert trace_to_pixels(trace, 640, 480) == [(320.0, 120.0, pytest.approx(1.2)), (640.0, 480.0, None),
                                                 (0.0, 240.0, None), (64.0, 96.0, None)]


def status_of(decode: object) -> int:
    """200 when ``decode()`` returns an image, the RequestError's status when it refuses."""
    try:
        out = decode()
    except RequestError as err:
        return err.status_code
    assert out.ndim in (2, 3)
    return 200


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_an_image_or_a_request_error(data: bytes) -> None:
    status = status_of(lambda: decode_color(b64(data), MAX_SIDE))
    assert status == 200 or 400 <= status < 500


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255), st.integers(1, 400))
def test_corrupted_pngs_give_an_image_or_a_request_error(position: int, value: int, keep: int) -> None:
    data = bytearray(rgb_png(np.random.default_rng(1).integers(0, 256, (12, 10, 3), dtype=np.uint8)))
    data[position % len(data)] = value
    for status in (status_of(lambda: decode_depth(b64(bytes(data[: keep * len(data) // 400])), 0.001, MAX_SIDE)),
                   status_of(lambda: decode_color(b64(bytes(data)), MAX_SIDE))):
        assert status == 200 or 400 <= status < 500
