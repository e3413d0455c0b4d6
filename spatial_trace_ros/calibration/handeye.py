"""Hand-eye solve: the camera pose from robot poses and board observations, with residuals and limits.

Both set-ups are one equation, ``A_i X B_i = Z`` for every sample i, with ``B_i = cam_T_board``:

- eye-to-hand (camera fixed, board on the flange): ``A_i = tool_T_base``, ``X = base_T_camera``,
  ``Z = tool_T_board``;
- eye-in-hand (camera on the flange, board fixed): ``A_i = base_T_tool``, ``X = tool_T_camera``,
  ``Z = base_T_board``.

OpenCV solves it in closed form: the five ``calibrateHandEye`` methods (Tsai, Park, Horaud, Andreff,
Daniilidis) give the starting points, ``calibrateRobotWorldHandEye`` (Shah, Li, X and Z jointly) the
cross-check. What stays ours, and why: the closed forms minimise algebraic errors of the motions (every
sample's PnP pose counted as exact, the noisy orientation of a small, far board as much as the rest) and
assume the board is the size it was said to be; the refinement minimises the quantity that was measured,
the board corners' reprojection error over all samples, over X, Z and the board's scale (a misprinted
board shows as a scale, not as a wrong camera depth). OpenCV rejects no outliers: a sample that does
not fit (a bumped board, a robot pose read while moving) is dropped here, worst first, and the solve
repeats. OpenCV reports no residuals: the ones measured here on what is left decide whether the
calibration may be written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from spatial_trace_ros.calibration.board import BoardObservation, BoardSpec, project_board_corners
from spatial_trace_ros.errors import CalibrationError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics

Mode = Literal["eye_to_hand", "eye_in_hand"]


class CalibrationLimits(BaseModel):
    """When a calibration is refused. Defaults suit a RealSense at 0.5-1.5 m and a UR arm."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_samples: int = Field(6, ge=3, description="samples with the board found, at least")
    min_second_axis_rotation_deg: float = Field(
        5.0, ge=0.0, description="RMS tool rotation about the second principal axis [deg], at least")
    max_reprojection_rms_px: float = Field(1.5, gt=0.0, description="board corner reprojection RMS [px], at most")
    max_board_position_rms_mm: float = Field(3.0, gt=0.0, description="board position consistency RMS [mm]")
    max_board_rotation_rms_deg: float = Field(2.0, gt=0.0, description="board rotation consistency RMS [deg]")
    max_cross_check_mm: float = Field(10.0, gt=0.0, description="refined vs robot-world closed form [mm]")
    max_cross_check_deg: float = Field(1.0, gt=0.0, description="refined vs robot-world closed form [deg]")
    max_board_scale_error: float = Field(
        0.005, gt=0.0, description="board seen larger/smaller than its given size by this fraction, at most")
    outlier_factor: float = Field(3.0, gt=1.0, description="a sample fitting this many times worse than the median "
                                  "is dropped")
    outlier_min_px: float = Field(1.0, gt=0.0, description="... and worse than this [px]")


@dataclass(frozen=True)
class HandEyeSample:
    """One stop of the arm: ``base_T_tool`` (4x4) from the robot, the board as the camera saw it."""

    base_T_tool: np.ndarray  # noqa: N815 - the project's frame-naming convention
    observation: BoardObservation
    index: int = 0


@dataclass(frozen=True)
class Residuals:
    """How well the calibration explains its samples (see docs/calibration.md for what each means)."""

    reprojection_rms_px: float
    reprojection_worst_sample_px: float
    board_position_rms_mm: float
    board_position_max_mm: float
    board_rotation_rms_deg: float
    board_rotation_max_deg: float
    cross_check_mm: float
    cross_check_deg: float
    board_scale: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class HandEyeResult:
    mode: str
    camera: np.ndarray  # X: base_T_camera (eye_to_hand) or tool_T_camera (eye_in_hand)
    board: np.ndarray  # Z: tool_T_board (eye_to_hand) or base_T_board (eye_in_hand)
    residuals: Residuals
    used: tuple[int, ...]
    rejected: tuple[tuple[int, str], ...] = ()
    methods: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (mm, deg) from the result

    def problems(self, limits: CalibrationLimits) -> list[str]:
        """Every residual above its limit, with both numbers (empty when the calibration is good)."""
        r, out = self.residuals, []
        checks = [
            (r.reprojection_rms_px, limits.max_reprojection_rms_px, "board reprojection RMS", "px"),
            (r.board_position_rms_mm, limits.max_board_position_rms_mm, "board position consistency RMS", "mm"),
            (r.board_rotation_rms_deg, limits.max_board_rotation_rms_deg, "board rotation consistency RMS", "deg"),
            (r.cross_check_mm, limits.max_cross_check_mm, "difference to the robot-world cross-check", "mm"),
            (r.cross_check_deg, limits.max_cross_check_deg, "rotation difference to the robot-world cross-check",
             "deg"),
        ]
        for value, limit, what, unit in checks:
            if not value <= limit:
                out.append(f"{what} {value:.3f} {unit} > limit {limit:g} {unit}")
        scale_error = abs(r.board_scale - 1.0)
        if scale_error > limits.max_board_scale_error:
            out.append(f"the board appears {r.board_scale:.4f} times its given size (limit +-"
                       f"{limits.max_board_scale_error:.1%}): measure a printed square and pass its edge as "
                       "--square-m (and --marker-m)")
        return out


# -- small rigid-motion helpers ------------------------------------------------------------------------
def _inv(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = R, t
    return out


def _nearest_rotation(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(Ra.T @ Rb).as_rotvec())))


def pose_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Distance between the origins [mm] and the rotation between two poses [deg]."""
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3]) * 1000.0), _angle_deg(a[:3, :3], b[:3, :3])


def average_pose(poses: Sequence[np.ndarray]) -> np.ndarray:
    """Chordal mean rotation and mean translation."""
    stack = np.asarray(poses, float)
    return _pose(_nearest_rotation(stack[:, :3, :3].sum(axis=0)), stack[:, :3, 3].mean(axis=0))


# -- closed forms (OpenCV) -------------------------------------------------------------------------------
HAND_EYE_METHODS = ("tsai", "park", "horaud", "andreff", "daniilidis")
ROBOT_WORLD_METHODS = ("shah", "li")


def _opencv_function(name: str) -> Callable[..., tuple[np.ndarray, ...]]:
    """``cv2.<name>``, or a refusal that says which opencv-python has it."""
    function = getattr(cv2, name, None)
    if function is None:
        raise CalibrationError(
            f"this OpenCV ({cv2.__version__}) has no cv2.{name} (the opencv-python 5.0.0.93 wheel lacks the "
            "binding); install the pinned requirements: pip install -r requirements/base.txt "
            "-c requirements/constraints.txt (opencv-python 5.1.0.95)")
    return function


def _rotations_and_translations(T: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A stack of 4x4 poses as OpenCV's lists of 3x3 rotations and 3x1 translations."""
    return list(T[:, :3, :3]), list(T[:, :3, 3:])


def _finite_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """The pose, or None when a method produced no number (degenerate input for that method)."""
    pose = _pose(np.asarray(R, float), np.ravel(np.asarray(t, float)))
    return pose if np.all(np.isfinite(pose)) else None


def hand_eye_closed_forms(A: np.ndarray, B: np.ndarray) -> dict[str, np.ndarray]:
    """X from ``A_i X B_i = const`` by each of OpenCV's five ``calibrateHandEye`` methods, by name;
    a method that fails on this data (OpenCV error, no finite result) is left out."""
    calibrate = _opencv_function("calibrateHandEye")
    RA, tA = _rotations_and_translations(A)
    RB, tB = _rotations_and_translations(B)
    out = {}
    for name in HAND_EYE_METHODS:
        try:
            # OpenCV: gripper2base_i * cam2gripper * target2cam_i = const, i.e. A_i X B_i = Z.
            R, t = calibrate(RA, tA, RB, tB, method=getattr(cv2, f"CALIB_HAND_EYE_{name.upper()}"))
        except cv2.error:
            continue
        pose = _finite_pose(R, t)
        if pose is not None:
            out[name] = pose
    return out


def robot_world_closed_forms(A: np.ndarray, B: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(X, Z) from ``A_i X B_i = Z`` solved jointly by OpenCV's ``calibrateRobotWorldHandEye`` (Shah, Li),
    by name; a method that fails on this data is left out."""
    calibrate = _opencv_function("calibrateRobotWorldHandEye")
    # OpenCV: world2cam_i * base2world = gripper2cam * base2gripper_i. With world2cam_i = B_i and
    # base2gripper_i = A_i^-1 that is B_i Z^-1 = X^-1 A_i^-1, our equation: base2world = Z^-1, gripper2cam = X^-1.
    RB, tB = _rotations_and_translations(B)
    RA, tA = _rotations_and_translations(np.array([_inv(a) for a in A]))
    out = {}
    for name in ROBOT_WORLD_METHODS:
        try:
            R_z, t_z, R_x, t_x = calibrate(RB, tB, RA, tA,
                                           method=getattr(cv2, f"CALIB_ROBOT_WORLD_HAND_EYE_{name.upper()}"))
        except cv2.error:
            continue
        Z_inv, X_inv = _finite_pose(R_z, t_z), _finite_pose(R_x, t_x)
        if Z_inv is not None and X_inv is not None:
            out[name] = (_inv(X_inv), _inv(Z_inv))
    return out


def board_from_camera(A: np.ndarray, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The mean Z given X."""
    return average_pose([a @ X @ b for a, b in zip(A, B)])


# -- checks before solving --------------------------------------------------------------------------------
def second_axis_rotation_deg(base_T_tool: Sequence[np.ndarray]) -> tuple[float, float]:
    """RMS tool rotation (relative to the first sample) about the first and second principal axes [deg]."""
    poses = np.asarray(base_T_tool, float)
    rel = np.einsum("ji,njk->nik", poses[0, :3, :3], poses[:, :3, :3])
    rotvecs = np.degrees(Rotation.from_matrix(rel).as_rotvec())
    s = np.linalg.svd(rotvecs, compute_uv=False) / np.sqrt(len(poses))
    return float(s[0]), float(s[1]) if len(s) > 1 else 0.0


def check_samples(samples: Sequence[HandEyeSample], limits: CalibrationLimits) -> None:
    """Refuse sample sets that cannot determine the camera pose, saying what to change."""
    if len(samples) < limits.min_samples:
        raise CalibrationError(
            f"too few samples: {len(samples)} with the board found, at least {limits.min_samples} are needed; "
            "add poses (--poses) or bring the board into the camera's view in more of them")
    first, second = second_axis_rotation_deg([s.base_T_tool for s in samples])
    if second < limits.min_second_axis_rotation_deg:
        raise CalibrationError(
            f"degenerate motion: the tool rotated about one axis only ({first:.1f} deg RMS about its main axis, "
            f"{second:.1f} deg about any other, need {limits.min_second_axis_rotation_deg:g}); add poses that "
            "tilt the tool about a second axis (raise --tilt-deg)")


# -- refinement -------------------------------------------------------------------------------------------
def _unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    X = _pose(Rotation.from_rotvec(x[0:3]).as_matrix(), x[3:6])
    Z = _pose(Rotation.from_rotvec(x[6:9]).as_matrix(), x[9:12])
    return X, Z, float(np.exp(x[12]))


def _predicted_observation(a: np.ndarray, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """B = X^-1 A^-1 Z: the board in the camera as the robot pose and the calibration predict it."""
    return _inv(X) @ _inv(a) @ Z


def _sample_errors(A: np.ndarray, X: np.ndarray, Z: np.ndarray, scale: float, samples: Sequence[HandEyeSample],
                   points: np.ndarray, intrinsics: CameraIntrinsics) -> list[np.ndarray]:
    out = []
    for a, s in zip(A, samples):
        px = project_board_corners(_predicted_observation(a, X, Z), s.observation.ids, points * scale, intrinsics)
        out.append(px - s.observation.corners_px)
    return out


def refine(A: np.ndarray, X: np.ndarray, Z: np.ndarray, samples: Sequence[HandEyeSample], board: BoardSpec,
           intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray, float]:
    """X, Z and the board scale minimising the corners' reprojection error over all samples."""
    points = board.corner_points()
    x0 = np.concatenate([Rotation.from_matrix(X[:3, :3]).as_rotvec(), X[:3, 3],
                         Rotation.from_matrix(Z[:3, :3]).as_rotvec(), Z[:3, 3], [0.0]])

    def residual(x: np.ndarray) -> np.ndarray:
        Xk, Zk, scale = _unpack(x)
        return np.concatenate([e.ravel() for e in _sample_errors(A, Xk, Zk, scale, samples, points, intrinsics)])

    fit = least_squares(residual, x0, method="trf", loss="soft_l1", f_scale=1.0, x_scale="jac", max_nfev=200)
    return _unpack(fit.x)


# -- the whole solve --------------------------------------------------------------------------------------
def equation_terms(mode: str, samples: Sequence[HandEyeSample]) -> tuple[np.ndarray, np.ndarray]:
    """The samples' ``A_i`` and ``B_i`` of ``A_i X B_i = Z`` for this mount (module docstring)."""
    if mode not in ("eye_to_hand", "eye_in_hand"):
        raise CalibrationError(f"unknown calibration mode {mode!r}; available: eye_in_hand, eye_to_hand")
    tool = np.array([s.base_T_tool for s in samples], float)
    A = np.array([_inv(t) for t in tool]) if mode == "eye_to_hand" else tool
    B = np.array([s.observation.cam_T_board for s in samples], float)
    return A, B


def _solve_once(mode: str, samples: Sequence[HandEyeSample], board: BoardSpec, intrinsics: CameraIntrinsics,
                ) -> tuple[np.ndarray, np.ndarray, float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    A, B = equation_terms(mode, samples)
    candidates = hand_eye_closed_forms(A, B)
    cross_checks = {name: X for name, (X, _) in robot_world_closed_forms(A, B).items()}
    if not candidates or not cross_checks:
        raise CalibrationError(
            f"OpenCV's closed-form hand-eye methods found no solution for these {len(samples)} samples; add poses "
            "that rotate the tool about different axes (raise --tilt-deg, --poses)")

    def spread(X: np.ndarray) -> float:
        Zs = [a @ X @ b for a, b in zip(A, B)]
        Zm = average_pose(Zs)
        return float(np.mean([np.linalg.norm(z[:3, 3] - Zm[:3, 3]) for z in Zs]))

    best = min(candidates.values(), key=spread)
    X, Z, scale = refine(A, best, board_from_camera(A, best, B), samples, board, intrinsics)
    return X, Z, scale, candidates, cross_checks


def solve_hand_eye(mode: str, samples: Sequence[HandEyeSample], board: BoardSpec, intrinsics: CameraIntrinsics,
                   limits: CalibrationLimits | None = None) -> HandEyeResult:
    """Solve, drop samples that do not fit (one at a time, worst first), measure the residuals.
    Raises ``CalibrationError`` for sample sets that cannot work; the caller judges the residuals
    with ``HandEyeResult.problems``."""
    limits = limits or CalibrationLimits()
    kept = list(samples)
    check_samples(kept, limits)
    rejected: list[tuple[int, str]] = []
    points = board.corner_points()
    while True:
        X, Z, scale, candidates, cross_checks = _solve_once(mode, kept, board, intrinsics)
        A, B = equation_terms(mode, kept)
        errors = _sample_errors(A, X, Z, scale, kept, points, intrinsics)
        per_sample = np.array([np.sqrt(np.mean(np.sum(e**2, axis=1))) for e in errors])
        threshold = max(limits.outlier_factor * float(np.median(per_sample)), limits.outlier_min_px)
        worst = int(np.argmax(per_sample))
        if per_sample[worst] <= threshold or len(kept) <= limits.min_samples:
            break
        ratio = per_sample[worst] / np.median(per_sample)
        rejected.append((kept[worst].index, f"reprojection {per_sample[worst]:.2f} px, {ratio:.1f}x the median"))
        kept.pop(worst)
        check_samples(kept, limits)
    all_px = np.concatenate(errors)
    centre = np.append(board.centre * scale, 1.0)
    Zs = [a @ X @ b for a, b in zip(A, B)]
    position_mm = np.array([np.linalg.norm((z - Z) @ centre) * 1000.0 for z in Zs])
    rotation_deg = np.array([_angle_deg(z[:3, :3], Z[:3, :3]) for z in Zs])
    methods = {f"opencv_{name}": pose_difference(X, Xc) for name, Xc in candidates.items()}
    cross = {f"opencv_robot_world_{name}": pose_difference(X, Xc) for name, Xc in cross_checks.items()}
    cross_mm, cross_deg = min(cross.values())  # the nearer one: Li's translation degrades faster with noise
    residuals = Residuals(
        reprojection_rms_px=float(np.sqrt(np.mean(np.sum(all_px**2, axis=1)))),
        reprojection_worst_sample_px=float(per_sample.max()),
        board_position_rms_mm=float(np.sqrt(np.mean(position_mm**2))),
        board_position_max_mm=float(position_mm.max()),
        board_rotation_rms_deg=float(np.sqrt(np.mean(rotation_deg**2))),
        board_rotation_max_deg=float(rotation_deg.max()),
        cross_check_mm=cross_mm, cross_check_deg=cross_deg, board_scale=scale,
    )
    return HandEyeResult(mode, X, Z, residuals, tuple(s.index for s in kept), tuple(rejected), {**methods, **cross})
