"""Depth PNGs the clients send: lossless for any uint16 image at every level, readable by OpenCV and
Pillow (two independent decoders), whether deflated in one band or several; bad input refused."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.trace import encoding
from spatial_trace_ros.trace.encoding import encode_depth_png

depth_images = hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48))


def decoded_by_opencv(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "OpenCV could not read the PNG"
    return image


def decoded_by_pillow(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return np.asarray(image).astype(np.uint16)


@settings(max_examples=60, deadline=None)
@given(depth=depth_images, level=st.integers(0, 9))
def test_every_uint16_image_survives_exactly(depth: np.ndarray, level: int) -> None:
    png = encode_depth_png(depth, level)
    for decoded in (decoded_by_opencv(png), decoded_by_pillow(png)):
        assert decoded.dtype == np.uint16 and decoded.shape == depth.shape
        np.testing.assert_array_equal(decoded, depth)


@settings(max_examples=30, deadline=None)
@given(depth=depth_images, level=st.integers(1, 9))
def test_bands_deflated_in_parallel_join_into_one_valid_stream(depth: np.ndarray, level: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoding, "_MIN_BAND_BYTES", 1)  # as many bands as the pool has threads
        png = encode_depth_png(depth, level)
    np.testing.assert_array_equal(decoded_by_opencv(png), depth)
    np.testing.assert_array_equal(decoded_by_pillow(png), depth)


def test_a_720p_camera_depth_compresses_and_round_trips() -> None:
    rng = np.random.default_rng(3)
    v = np.mgrid[0:720, 0:1280][0]
    depth = np.clip(800 + v * 1.5 + rng.normal(0, 3, v.shape), 0, 65535).astype(np.uint16)
    depth[100:200, 300:500] = 0  # a hole with no depth, as real cameras have
    png = encode_depth_png(depth, 1)
    np.testing.assert_array_equal(decoded_by_opencv(png), depth)
    assert len(png) < 0.45 * depth.nbytes, f"{len(png)} bytes: the Sub filter + deflate should compress this"
    assert len(encode_depth_png(depth, 0)) > depth.nbytes, "level 0 stores the rows"


@pytest.mark.parametrize(
    ("depth", "level", "reason"),
    [
        (np.zeros((4, 4), np.float32), 1, "uint16"),
        (np.zeros((4, 4, 1), np.uint16), 1, "HxW"),
        (np.zeros((0, 4), np.uint16), 1, "non-empty"),
        (np.zeros((4, 4), np.uint16), 10, "0-9"),
        (np.zeros((4, 4), np.uint16), -1, "0-9"),
    ],
)
def test_bad_input_is_refused_with_the_reason(depth: np.ndarray, level: int, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        encode_depth_png(depth, level)
