"""Hand-eye solve: the camera pose from robot poses and board observations, with residuals and limits.

Both set-ups are one equation, ``A_i X B_i = Z`` for every sample i, with ``B_i = cam_T_board``:

- eye-to-hand (camera fixed, board on the flange): ``A_i = tool_T_base``, ``X = base_T_camera``,
  ``Z = tool_T_board``;
- eye-in-hand (camera on the flange, board fixed): ``A_i = base_T_tool``, ``X = tool_T_camera``,
  ``Z = base_T_board``.

Closed-form methods give starting points (Park-Martin and Andreff on the motion pairs ``M X = X N``,
and OpenCV's five ``calibrateHandEye`` methods where the installed OpenCV exposes the function: the
pinned opencv-python 5.0.0.93 wheel lacks that binding and ``calibrateRobotWorldHandEye``'s,
opencv/opencv#29565); a simultaneous robot-world solve of ``A X B = Z`` is the cross-check. The result is then
refined by least squares on the board corners' reprojection error over X, Z and the board's scale,
samples that do not fit are dropped one at a time, and the residuals are measured on what is left.
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


# -- closed forms ----------------------------------------------------------------------------------------
def _motion_pairs(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``M X = X N`` for every pair i < j: M = A_j^-1 A_i, N = B_j B_i^-1."""
    M, N = [], []
    for i in range(len(A)):
        for j in range(i + 1, len(A)):
            M.append(_inv(A[j]) @ A[i])
            N.append(B[j] @ _inv(B[i]))
    return np.array(M), np.array(N)


def _translation_from_pairs(M: np.ndarray, N: np.ndarray, R: np.ndarray) -> np.ndarray:
    lhs = (M[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    rhs = (np.einsum("ij,njk->nik", R, N[:, :3, 3:])[..., 0] - M[:, :3, 3]).reshape(-1)
    return np.linalg.lstsq(lhs, rhs, rcond=None)[0]


def solve_park_martin(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Park & Martin (1994): rotation from the log maps of the motions, translation by least squares."""
    M, N = _motion_pairs(A, B)
    alpha = Rotation.from_matrix(M[:, :3, :3]).as_rotvec()
    beta = Rotation.from_matrix(N[:, :3, :3]).as_rotvec()
    H = beta.T @ alpha  # R beta = alpha  ->  R = V U^T of svd(sum beta alpha^T)
    U, _, Vt = np.linalg.svd(H)
    R = Vt.T @ np.diag([1.0, 1.0, np.linalg.det(Vt.T @ U.T)]) @ U.T
    return _pose(R, _translation_from_pairs(M, N, R))


def solve_andreff(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Andreff et al. (1999): rotation as the null space of the stacked Kronecker form of M R = R N."""
    M, N = _motion_pairs(A, B)
    eye = np.eye(3)
    rows = np.concatenate([np.kron(eye, m[:3, :3]) - np.kron(n[:3, :3].T, eye) for m, n in zip(M, N)])
    v = np.linalg.svd(rows)[2][-1]
    R = v.reshape(3, 3, order="F")
    R = _nearest_rotation(R * np.sign(np.linalg.det(R)))
    return _pose(R, _translation_from_pairs(M, N, R))


def solve_robot_world(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X and Z together from ``A_i X B_i = Z`` (Kronecker null space for the rotations, as Shah 2013,
    then linear least squares for both translations)."""
    rows = np.concatenate([np.hstack([np.kron(b[:3, :3].T, a[:3, :3]), -np.eye(9)]) for a, b in zip(A, B)])
    v = np.linalg.svd(rows)[2][-1]
    Rx, Rz = v[:9].reshape(3, 3, order="F"), v[9:].reshape(3, 3, order="F")
    sign = np.sign(np.linalg.det(Rx))
    Rx, Rz = _nearest_rotation(Rx * sign), _nearest_rotation(Rz * sign)
    lhs = np.concatenate([np.hstack([a[:3, :3], -np.eye(3)]) for a in A])
    rhs = np.concatenate([-a[:3, 3] - a[:3, :3] @ Rx @ b[:3, 3] for a, b in zip(A, B)])
    t = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return _pose(Rx, t[:3]), _pose(Rz, t[3:])


def _opencv_methods() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """OpenCV's five ``calibrateHandEye`` methods, when this OpenCV build exposes the function."""
    if not hasattr(cv2, "calibrateHandEye"):
        return {}
    names = {"tsai": "TSAI", "park": "PARK", "horaud": "HORAUD", "andreff": "ANDREFF", "daniilidis": "DANIILIDIS"}

    def method(flag: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
            # OpenCV solves gripper2base_i X target2cam_i = const: exactly A_i X B_i = Z.
            R, t = cv2.calibrateHandEye(list(A[:, :3, :3]), list(A[:, :3, 3]), list(B[:, :3, :3]),
                                        list(B[:, :3, 3]), method=flag)
            return _pose(np.asarray(R), np.ravel(t))
        return solve

    return {f"opencv_{k}": method(getattr(cv2, f"CALIB_HAND_EYE_{v}")) for k, v in names.items()}


def closed_form_methods() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Every closed-form hand-eye method available here, by name."""
    return {"park_martin": solve_park_martin, "andreff": solve_andreff, **_opencv_methods()}


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
def _equation_terms(mode: str, samples: Sequence[HandEyeSample]) -> tuple[np.ndarray, np.ndarray]:
    if mode not in ("eye_to_hand", "eye_in_hand"):
        raise CalibrationError(f"unknown calibration mode {mode!r}; available: eye_in_hand, eye_to_hand")
    tool = np.array([s.base_T_tool for s in samples], float)
    A = np.array([_inv(t) for t in tool]) if mode == "eye_to_hand" else tool
    B = np.array([s.observation.cam_T_board for s in samples], float)
    return A, B


def _solve_once(mode: str, samples: Sequence[HandEyeSample], board: BoardSpec, intrinsics: CameraIntrinsics,
                ) -> tuple[np.ndarray, np.ndarray, float, dict[str, np.ndarray], np.ndarray]:
    A, B = _equation_terms(mode, samples)
    candidates = {name: solve(A, B) for name, solve in closed_form_methods().items()}
    X_rw, _ = solve_robot_world(A, B)

    def spread(X: np.ndarray) -> float:
        Zs = [a @ X @ b for a, b in zip(A, B)]
        Zm = average_pose(Zs)
        return float(np.mean([np.linalg.norm(z[:3, 3] - Zm[:3, 3]) for z in Zs]))

    best = min(candidates.values(), key=spread)
    X, Z, scale = refine(A, best, board_from_camera(A, best, B), samples, board, intrinsics)
    return X, Z, scale, candidates, X_rw


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
        X, Z, scale, candidates, X_rw = _solve_once(mode, kept, board, intrinsics)
        A, B = _equation_terms(mode, kept)
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
    cross_mm, cross_deg = pose_difference(X, X_rw)
    residuals = Residuals(
        reprojection_rms_px=float(np.sqrt(np.mean(np.sum(all_px**2, axis=1)))),
        reprojection_worst_sample_px=float(per_sample.max()),
        board_position_rms_mm=float(np.sqrt(np.mean(position_mm**2))),
        board_position_max_mm=float(position_mm.max()),
        board_rotation_rms_deg=float(np.sqrt(np.mean(rotation_deg**2))),
        board_rotation_max_deg=float(rotation_deg.max()),
        cross_check_mm=cross_mm, cross_check_deg=cross_deg, board_scale=scale,
    )
    methods = {name: pose_difference(X, Xc) for name, Xc in candidates.items()}
    methods["robot_world"] = (cross_mm, cross_deg)
    return HandEyeResult(mode, X, Z, residuals, tuple(s.index for s in kept), tuple(rejected), methods)
