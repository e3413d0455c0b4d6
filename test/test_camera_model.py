"""Projection, deprojection and depth sampling: hand-computed values and round-trip properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spatial_trace_ros.errors import ConfigError, DepthError
from spatial_trace_ros.geometry import CameraIntrinsics, RgbdFrame, deproject, project, sample_depth
from spatial_trace_ros.geometry.camera_model import deproject_pixels_with_depth

D435 = CameraIntrinsics(640, 480, 615.0, 615.0, 320.0, 240.0)


def test_project_known_answer() -> None:
    # (0.1, -0.05, 0.5) m: u = 615 * 0.1 / 0.5 + 320 = 443, v = 615 * -0.05 / 0.5 + 240 = 178.5
    uv = project(np.array([[0.1, -0.05, 0.5], [0.0, 0.0, 2.0]]), D435)
    np.testing.assert_allclose(uv, [[443.0, 178.5], [320.0, 240.0]])


def test_deproject_known_answer() -> None:
    pts = deproject(np.array([[443.0, 178.5]]), np.array([0.5]), D435)
    np.testing.assert_allclose(pts, [[0.1, -0.05, 0.5]])


def test_points_behind_camera_project_to_nan() -> None:
    uv = project(np.array([[0.1, 0.0, -1.0], [0.0, 0.0, 0.0]]), D435)
    assert np.all(np.isnan(uv))


def test_brown_conrady_known_answer() -> None:
    # k1 = 0.1 only: r^2 = 0.2^2 + 0.1^2 = 0.05, factor 1.005 on normalized (0.2, 0.1)
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0, "brown_conrady", (0.1, 0, 0, 0, 0))
    uv = project(np.array([[0.2, 0.1, 1.0]]), intr)
    np.testing.assert_allclose(uv, [[320 + 600 * 0.2 * 1.005, 240 + 600 * 0.1 * 1.005]])


MODELS = [
    ("none", (0.0, 0.0, 0.0, 0.0, 0.0)),
    ("brown_conrady", (0.08, -0.12, 0.001, -0.0015, 0.02)),
    ("inverse_brown_conrady", (0.08, -0.12, 0.001, -0.0015, 0.02)),
    ("kannala_brandt4", (0.05, -0.01, 0.002, -0.0005)),
]


@pytest.mark.parametrize(("model", "coeffs"), MODELS)
@settings(max_examples=200, deadline=None)
@given(
    u=st.floats(40, 600), v=st.floats(40, 440), z=st.floats(0.1, 5.0),
)
def test_project_deproject_round_trip(model: str, coeffs: tuple, u: float, v: float, z: float) -> None:
    intr = CameraIntrinsics(640, 480, 610.0, 605.0, 318.0, 242.0, model, coeffs)
    p = deproject(np.array([[u, v]]), np.array([z]), intr)
    np.testing.assert_allclose(p[:, 2], z)
    np.testing.assert_allclose(project(p, intr), [[u, v]], atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(-0.7, 0.7), st.floats(0.2, 4)), min_size=1, max_size=50))
def test_deproject_project_vectorised(points: list) -> None:
    p = np.array(points)
    back = deproject(project(p, D435), p[:, 2], D435)
    np.testing.assert_allclose(back, p, atol=1e-9)


def test_intrinsics_validation_names_problem() -> None:
    with pytest.raises(ConfigError, match="focal lengths"):
        CameraIntrinsics(640, 480, -1.0, 600.0, 320.0, 240.0)
    with pytest.raises(ConfigError, match="available: none, brown_conrady"):
        CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0, "fisheye9")
    with pytest.raises(ConfigError, match="3x3"):
        CameraIntrinsics.from_matrix(np.eye(4), 640, 480)


def test_from_matrix_and_scaled() -> None:
    intr = CameraIntrinsics.from_matrix([[600, 0, 319.5], [0, 600, 239.5], [0, 0, 1]], 640, 480)
    half = intr.scaled(320, 240)
    assert (half.fx, half.cx, half.cy) == (300.0, 159.5, 119.5)


def _depth_with_hole() -> np.ndarray:
    d = np.full((100, 100), 1.0, np.float32)
    d[50, 50] = np.nan  # single-pixel hole
    d[:, 80:] = 2.0  # a farther surface on the right
    d[0:20, 0:20] = 0.0  # a large hole
    return d


def test_sample_depth_rides_over_holes_and_edges() -> None:
    s = sample_depth(_depth_with_hole(), np.array([[50, 50], [79, 30], [5, 5]]), window_px=5)
    np.testing.assert_allclose(s.depth_m[:2], [1.0, 1.0])  # 3 of 5 columns at x=79 are on the near side
    assert s.valid.tolist() == [True, True, False]
    assert s.valid_fraction == pytest.approx(2 / 3)


def test_sample_depth_strict_error_names_points() -> None:
    with pytest.raises(DepthError, match=r"1 of 2 points \(#1 at \(5, 5\)\)"):
        sample_depth(_depth_with_hole(), np.array([[50, 50], [5, 5]]), require_all=True)


def test_sample_depth_outside_image_is_invalid() -> None:
    s = sample_depth(_depth_with_hole(), np.array([[-30.0, 10.0], [np.nan, 5.0]]))
    assert not s.valid.any()


def test_rgbd_frame_depth_units_and_alignment_check() -> None:
    intr = CameraIntrinsics(4, 3, 2.0, 2.0, 1.5, 1.0)
    raw = np.array([[0, 1000, 2000, 3000]] * 3, np.uint16)
    frame = RgbdFrame(np.zeros((3, 4, 3), np.uint8), raw, intr, depth_scale_m=0.001)
    np.testing.assert_allclose(frame.depth_m[0], [np.nan, 1.0, 2.0, 3.0])
    pts, _ = deproject_pixels_with_depth(frame, np.array([[2.0, 1.0]]), window_px=1)
    np.testing.assert_allclose(pts, [[0.25 * 2.0, 0.0, 2.0]])
    with pytest.raises(ConfigError, match="not aligned"):
        RgbdFrame(np.zeros((3, 4, 3), np.uint8), np.zeros((2, 4), np.uint16), intr)
    with pytest.raises(ConfigError, match="intrinsics say 4x3"):
        RgbdFrame(np.zeros((6, 8, 3), np.uint8), None, intr)
