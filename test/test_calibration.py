"""Calibration YAML: both modes, every rotation encoding, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from spatial_trace_ros.errors import CalibrationError, ConfigError
from spatial_trace_ros.geometry import Transform, load_calibration

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"mode": "eye_to_hand", "parent_frame": "base", "translation_m": [0.5, 0.0, 1.0]}


def test_shipped_example_loads_and_looks_at_the_workspace() -> None:
    cal = load_calibration(REPO / "config" / "calibration.example.yaml")
    base_T_cam = cal.base_T_camera()
    assert (base_T_cam.parent, base_T_cam.child) == ("base", "camera_color_optical_frame")
    # A point 1 m along the optical axis lands in front of the robot, below the camera.
    p = base_T_cam.apply([0.0, 0.0, 1.0])
    assert 0.0 < p[0] < 0.9 and p[2] < 0.75


@pytest.mark.parametrize(
    "rotation",
    [
        {"quaternion_xyzw": [1.0, 0.0, 0.0, 0.0]},
        {"rotation_matrix": [[1, 0, 0], [0, -1, 0], [0, 0, -1]]},
        {"rpy_rad": [np.pi, 0.0, 0.0]},
        {"rotvec_rad": [np.pi, 0.0, 0.0]},
    ],
)
def test_every_rotation_encoding_gives_the_same_pose(tmp_path: Path, rotation: dict) -> None:
    cal = load_calibration(_write(tmp_path, {**BASE, "rotation": rotation}))
    np.testing.assert_allclose(cal.base_T_camera().apply([0.1, 0.2, 0.8]), [0.6, -0.2, 0.2], atol=1e-9)


def test_eye_in_hand_composes_with_tcp_pose(tmp_path: Path) -> None:
    data = {"mode": "eye_in_hand", "parent_frame": "tool0", "translation_m": [0.0, 0.05, 0.02],
            "rotation": {"rpy_rad": [0, 0, 0]}}
    cal = load_calibration(_write(tmp_path, data))
    with pytest.raises(ConfigError, match="TCP pose"):
        cal.base_T_camera()
    base_T_tool = Transform.from_ur_pose([0.4, 0.0, 0.3, 0, 0, np.pi / 2], "base", "tool0")
    np.testing.assert_allclose(cal.base_T_camera(base_T_tool).apply([0, 0, 0.5]), [0.35, 0.0, 0.82], atol=1e-9)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"translation_m": [500.0, 0.0, 1000.0]}, "must be in metres"),
        ({"rotation": {"rpy_rad": [0, 0, 0], "quaternion_xyzw": [0, 0, 0, 1]}}, "exactly one"),
        ({"rotation": {"rotation_matrix": [[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]}}, "not orthonormal"),
        ({"mode": "eye_on_table", "rotation": {"rpy_rad": [0, 0, 0]}}, "mode"),
        ({"rotation": {"quaternion_xyzw": [0, 0, 0, 3]}}, "unit norm"),
        ({"translation_mm": [1, 2, 3], "rotation": {"rpy_rad": [0, 0, 0]}}, "translation_mm"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, patch: dict, message: str) -> None:
    path = _write(tmp_path, {**BASE, **patch})
    with pytest.raises(CalibrationError, match=message) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"calibration\.example\.yaml"):
        load_calibration(tmp_path / "nope.yaml")
