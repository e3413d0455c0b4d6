"""Hand-eye solve on synthetic observations (exact geometry, known answer): methods, refinement,
outliers, refusals; the board image round trip; the calibration file's new fields; camera_tf; the
easy_handeye2 import."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from spatial_trace_ros.calibration.board import (
    BoardNotFoundError,
    BoardObservation,
    BoardSpec,
    board_spec,
    detect_board,
    project_board_corners,
)
from spatial_trace_ros.calibration.easy_handeye import calibration_from_easy_handeye, load_easy_handeye
from spatial_trace_ros.calibration.handeye import (
    HAND_EYE_METHODS,
    ROBOT_WORLD_METHODS,
    CalibrationLimits,
    HandEyeSample,
    hand_eye_closed_forms,
    pose_difference,
    robot_world_closed_forms,
    solve_hand_eye,
)
from spatial_trace_ros.errors import CalibrationError, ConfigError
from spatial_trace_ros.geometry import Transform, camera_tf, load_calibration, write_calibration
from spatial_trace_ros.geometry.calibration import Calibration, CalibrationRecord
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics

REPO = Path(__file__).resolve().parents[1]
INTRINSICS = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)
BOARD = BoardSpec()


def _pose(rotvec_deg: list[float], t: list[float]) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_rotvec(np.radians(rotvec_deg)).as_matrix()
    out[:3, 3] = t
    return out


# eye-in-hand truth: camera on the flange, board on the table; eye-to-hand truth: camera fixed, board on the flange
TOOL_T_CAMERA = _pose([8.0, -3.0, 90.0], [0.01, -0.07, 0.03])
BASE_T_BOARD = _pose([180.0, 0.0, 0.0], [0.38, 0.12, 0.05])
BASE_T_FIXED_CAMERA = _pose([-120.0, 0.0, 0.0], [1.1, 0.0, 0.7])
TOOL_T_FLANGE_BOARD = _pose([180.0, 0.0, 20.0], [-0.075, 0.105, 0.004])


def _views(n: int, tilt_deg: float, rng: np.random.Generator) -> list[np.ndarray]:
    """cam_T_board poses: the board 0.4-0.5 m in front of the camera, tilted and spun."""
    out = []
    for _ in range(n):
        R = Rotation.from_rotvec(np.radians([rng.uniform(-tilt_deg, tilt_deg), rng.uniform(-tilt_deg, tilt_deg),
                                             rng.uniform(-40, 40)])).as_matrix()
        pose = np.eye(4)
        pose[:3, :3] = R
        pose[:3, 3] = [rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(0.4, 0.5)] - R @ BOARD.centre
        out.append(pose)
    return out


def _samples(n: int, pixel_sigma: float = 0.0, seed: int = 0, mode: str = "eye_in_hand") -> list[HandEyeSample]:
    """Samples whose board corners are projected exactly (plus ``pixel_sigma`` px of noise)."""
    rng = np.random.default_rng(seed)
    points = BOARD.corner_points()
    ids = np.arange(len(points))
    out = []
    for i, cam_T_board in enumerate(_views(n, 25.0, rng)):
        if mode == "eye_in_hand":
            base_T_tool = BASE_T_BOARD @ np.linalg.inv(cam_T_board) @ np.linalg.inv(TOOL_T_CAMERA)
        else:
            base_T_tool = BASE_T_FIXED_CAMERA @ cam_T_board @ np.linalg.inv(TOOL_T_FLANGE_BOARD)
        px = project_board_corners(cam_T_board, ids, points, INTRINSICS) + rng.normal(0, pixel_sigma, (len(ids), 2))
        out.append(HandEyeSample(base_T_tool, BoardObservation(cam_T_board, ids, px, 0.0), i))
    return out


@pytest.mark.parametrize("mode", ["eye_in_hand", "eye_to_hand"])
def test_every_opencv_closed_form_and_the_refinement_recover_the_camera(mode: str) -> None:
    """All five calibrateHandEye methods and both calibrateRobotWorldHandEye methods, fed through our
    A_i X B_i = Z mapping, give the true X (and Z) on exact data for either mount."""
    X_true, Z_true = (TOOL_T_CAMERA, BASE_T_BOARD) if mode == "eye_in_hand" else (BASE_T_FIXED_CAMERA,
                                                                                  TOOL_T_FLANGE_BOARD)
    samples = _samples(8, mode=mode)
    tool = np.array([s.base_T_tool for s in samples])
    A = tool if mode == "eye_in_hand" else np.linalg.inv(tool)
    B = np.array([s.observation.cam_T_board for s in samples])
    starts = hand_eye_closed_forms(A, B)
    assert sorted(starts) == sorted(HAND_EYE_METHODS)
    for name, X in starts.items():
        mm, deg = pose_difference(X, X_true)
        assert mm < 1e-6 and deg < 1e-6, name
    checks = robot_world_closed_forms(A, B)
    assert sorted(checks) == sorted(ROBOT_WORLD_METHODS)
    for name, (X, Z) in checks.items():
        assert max(pose_difference(X, X_true)) < 1e-6 and max(pose_difference(Z, Z_true)) < 1e-6, name
    result = solve_hand_eye(mode, samples, BOARD, INTRINSICS)
    assert max(pose_difference(result.camera, X_true)) < 1e-3
    assert result.residuals.reprojection_rms_px < 1e-3 and abs(result.residuals.board_scale - 1) < 1e-6
    assert result.problems(CalibrationLimits()) == []
    assert sorted(result.methods) == sorted([f"opencv_{m}" for m in HAND_EYE_METHODS]
                                            + [f"opencv_robot_world_{m}" for m in ROBOT_WORLD_METHODS])


@pytest.mark.parametrize("function", ["calibrateHandEye", "calibrateRobotWorldHandEye"])
def test_an_opencv_without_the_hand_eye_functions_is_named_with_the_fix(function: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(cv2, function)
    with pytest.raises(CalibrationError, match=rf"has no cv2\.{function}.*opencv-python 5\.1\.0\.95"):
        solve_hand_eye("eye_in_hand", _samples(8), BOARD, INTRINSICS)


def test_eye_to_hand_recovers_the_fixed_camera_and_the_board_on_the_flange() -> None:
    result = solve_hand_eye("eye_to_hand", _samples(8, pixel_sigma=0.2, mode="eye_to_hand"), BOARD, INTRINSICS)
    mm, deg = pose_difference(result.camera, BASE_T_FIXED_CAMERA)
    assert mm < 1.0 and deg < 0.1
    assert pose_difference(result.board, TOOL_T_FLANGE_BOARD)[0] < 1.0


def test_pixel_noise_stays_small_and_an_outlier_sample_is_rejected() -> None:
    samples = _samples(10, pixel_sigma=0.3, seed=2)
    bad = samples[4]
    shifted = bad.base_T_tool.copy()
    shifted[:3, 3] += [0.02, 0.0, 0.0]  # the robot reported a pose 2 cm off for one sample
    samples[4] = HandEyeSample(shifted, bad.observation, bad.index)
    result = solve_hand_eye("eye_in_hand", samples, BOARD, INTRINSICS)
    assert [i for i, _ in result.rejected] == [4]
    assert "reprojection" in result.rejected[0][1]
    mm, deg = pose_difference(result.camera, TOOL_T_CAMERA)
    assert mm < 1.0 and deg < 0.1


def test_too_few_samples_are_refused_with_what_to_do() -> None:
    with pytest.raises(CalibrationError, match=r"too few samples: 4 .* at least 6.*--poses"):
        solve_hand_eye("eye_in_hand", _samples(4), BOARD, INTRINSICS)


def test_rotation_about_one_axis_only_is_refused() -> None:
    first = _samples(1)[0]
    samples = [HandEyeSample(first.base_T_tool @ _pose([0.0, 0.0, 10.0 * i], [0.01 * i, 0.0, 0.0]), first.observation,
                             i) for i in range(8)]
    with pytest.raises(CalibrationError, match=r"degenerate motion: the tool rotated about one axis only.*second axis"):
        solve_hand_eye("eye_in_hand", samples, BOARD, INTRINSICS)


def test_a_board_size_that_does_not_match_the_print_is_named() -> None:
    samples = _samples(8, pixel_sigma=0.1)
    wrong = board_spec(square_m=0.025, marker_m=0.018)  # the print has 30 mm squares
    result = solve_hand_eye("eye_in_hand", samples, wrong, INTRINSICS)
    assert result.residuals.board_scale == pytest.approx(1.2, rel=1e-3)
    problems = result.problems(CalibrationLimits())
    assert any("times its given size" in p and "--square-m" in p for p in problems), problems


def test_board_image_is_found_again_at_its_true_pose() -> None:
    px_per_m = 37 / BOARD.square_m  # whole pixels per square; the board f / px_per_m = 0.4986 m away, facing the camera
    image = np.full((480, 640), 255, np.uint8)
    board_image = BOARD.image(px_per_m)
    h, w = board_image.shape
    image[100:100 + h, 150:150 + w] = board_image
    obs = detect_board(image, BOARD, INTRINSICS)
    assert obs.n_corners == (BOARD.squares_x - 1) * (BOARD.squares_y - 1)
    assert obs.reprojection_rms_px < 0.5
    expected = [(150 - 319.5 - 0.5) / px_per_m, (100 - 239.5 - 0.5) / px_per_m, 615.0 / px_per_m]
    np.testing.assert_allclose(obs.cam_T_board[:3, 3], expected, atol=0.002)
    with pytest.raises(BoardNotFoundError, match=r"not on a 4x4 board.*--squares-x"):
        detect_board(image, board_spec(squares_x=4, squares_y=4), INTRINSICS)
    with pytest.raises(BoardNotFoundError, match="no ArUco marker of DICT_4X4_50"):
        detect_board(image, board_spec(dictionary="DICT_4X4_50"), INTRINSICS)
    with pytest.raises(BoardNotFoundError, match="no ArUco marker"):
        detect_board(np.full((480, 640), 128, np.uint8), BOARD, INTRINSICS)


def test_bad_board_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"marker_m.*smaller than square_m"):
        board_spec(square_m=0.02, marker_m=0.03)
    with pytest.raises(ConfigError, match="unknown dictionary 'DICT_9X9'"):
        board_spec(dictionary="DICT_9X9")
    with pytest.raises(ConfigError, match="needs 60 markers, DICT_4X4_50 has 50"):
        board_spec(squares_x=10, squares_y=12, dictionary="DICT_4X4_50")


# -- the calibration file --------------------------------------------------------------------------------
def test_written_calibration_loads_back_with_its_record(tmp_path: Path) -> None:
    record = CalibrationRecord("2026-12-06T03:00:00+00:00", 12, {"reprojection_rms_px": 0.21}, "test",
                               {"parent_frame": "tool0", "translation_m": [0, 0, 0.004],
                                "quaternion_xyzw": [1, 0, 0, 0], **BOARD.model_dump()})
    cal = Calibration("eye_in_hand", Transform(TOOL_T_CAMERA, "tool0", "camera_color_optical_frame"), record)
    path = write_calibration(cal, tmp_path / "cal.yaml", "made by a test\nsecond line")
    assert path.read_text().startswith("# made by a test\n# second line\n")
    back = load_calibration(path)
    assert back.mode == "eye_in_hand" and back.record == record
    np.testing.assert_allclose(back.transform.matrix, TOOL_T_CAMERA, atol=1e-8)


def test_old_files_still_load_and_bad_dates_are_named(tmp_path: Path) -> None:
    old = load_calibration(REPO / "config" / "calibration.example.yaml")
    assert old.record == CalibrationRecord()
    data = yaml.safe_load((REPO / "config" / "calibration.example.yaml").read_text())
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump({**data, "calibrated_at": "yesterday"}))
    with pytest.raises(CalibrationError, match=r"calibrated_at.*'yesterday' is not an ISO 8601 date"):
        load_calibration(path)


def test_camera_tf_for_both_mounts() -> None:
    fixed = Calibration("eye_to_hand", Transform(BASE_T_BOARD, "base", "camera_color_optical_frame"))
    parent, child, tf = camera_tf(fixed)
    assert (parent, child) == ("base", "camera_color_optical_frame") and tf is fixed.transform
    wrist = Calibration("eye_in_hand", Transform(TOOL_T_CAMERA, "tool0", "camera_color_optical_frame"))
    assert camera_tf(wrist)[:2] == ("tool0", "camera_color_optical_frame")
    base_T_tool = Transform(_pose([180, 0, 0], [0.4, 0.1, 0.3]), "base", "tool0")
    parent, child, tf = camera_tf(wrist, base_T_tool)
    assert (parent, child) == ("base", "camera_color_optical_frame")
    np.testing.assert_allclose(tf.matrix, base_T_tool.matrix @ TOOL_T_CAMERA, atol=1e-12)
    with pytest.raises(ConfigError, match="hangs the camera off 'tool0'"):
        camera_tf(wrist, Transform(base_T_tool.matrix, "base", "flange"))


# -- easy_handeye2 -----------------------------------------------------------------------------------------
EASY_HANDEYE2 = """\
parameters:
  name: cell_eob
  calibration_type: eye_on_base
  robot_base_frame: base
  robot_effector_frame: tool0
  tracking_base_frame: camera_color_optical_frame
  tracking_marker_frame: board
  freehand_robot_movement: false
transform:
  translation: {x: 0.9, y: 0.05, z: 0.7}
  rotation: {x: 0.0, y: 0.0, z: 0.7071067811865476, w: 0.7071067811865476}
"""


def test_easy_handeye2_results_import_in_both_file_shapes(tmp_path: Path) -> None:
    path = tmp_path / "cell_eob.calib"
    path.write_text(EASY_HANDEYE2)
    cal = load_easy_handeye(path)
    assert cal.mode == "eye_to_hand" and (cal.transform.parent, cal.camera_frame) == ("base",
                                                                                    "camera_color_optical_frame")
    np.testing.assert_allclose(cal.transform.apply([1.0, 0.0, 0.0]), [0.9, 1.05, 0.7], atol=1e-9)
    assert cal.record.source == "easy_handeye2 cell_eob"
    older = {"parameters": {"eye_on_hand": True, "robot_effector_frame": "tool0", "robot_base_frame": "base",
                            "tracking_base_frame": "camera_color_optical_frame"},
             "transformation": {"x": 0.0, "y": 0.05, "z": 0.02, "qx": 0.0, "qy": 0.0, "qz": 0.0, "qw": 1.0}}
    cal = calibration_from_easy_handeye(older)
    assert cal.mode == "eye_in_hand" and cal.transform.parent == "tool0"
    with pytest.raises(CalibrationError, match=r"transform\.rotation\.w is missing"):
        calibration_from_easy_handeye(yaml.safe_load(EASY_HANDEYE2.replace("w: 0.7071067811865476", "")))
    with pytest.raises(CalibrationError, match="neither eye_in_hand nor eye_on_base"):
        calibration_from_easy_handeye(yaml.safe_load(EASY_HANDEYE2.replace("eye_on_base", "eye_on_table")))


def test_extrinsics_shows_the_file_pose_and_record(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from spatial_trace_ros.cli import main

    record = CalibrationRecord("2026-12-06T03:00:00+00:00", 9, {"reprojection_rms_px": 0.21}, "test")
    cal = Calibration("eye_to_hand", Transform(BASE_T_FIXED_CAMERA, "base", "camera_color_optical_frame"), record)
    path = write_calibration(cal, tmp_path / "cal.yaml")
    assert main(["extrinsics", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip() == "TF base -> camera_color_optical_frame on /tf_static"
    shown = {line.split(":")[0].strip(): yaml.safe_load(line.split(":", 1)[1]) for line in lines[2:6]}
    for encoding in ("quaternion_xyzw", "rpy_rad", "rotvec_rad"):
        again = load_calibration(write_calibration(Calibration.from_dict(
            {"mode": "eye_to_hand", "parent_frame": "base", "translation_m": shown["translation_m"],
             "rotation": {encoding: shown[encoding]}}), tmp_path / f"{encoding}.yaml"))
        assert max(pose_difference(again.transform.matrix, BASE_T_FIXED_CAMERA)) < 1e-3, encoding
    assert "calibrated 2026-12-06T03:00:00+00:00 from 9 samples by test" in lines[6]
    assert lines[7].strip() == "reprojection_rms_px: 0.21"
    assert main(["extrinsics", str(REPO / "config" / "calibration.g1_head.yaml")]) == 0
    assert "TF torso_link -> camera_color_optical_frame" in capsys.readouterr().out
