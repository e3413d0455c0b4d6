"""Pose sets for calibration: generated around a start pose, and checked by the planner's safety filter.

Poses tilt the tool about two axes of its own frame (sunflower pattern: tilt directions spread over
the circle, tilt sizes over the disc), spin it about its axis and move it over a box around the
start, all about a pivot on the tool axis where the board is (eye-to-hand: the flange; eye-in-hand:
the spot the camera looks at), so the board stays in view. Every pose and the joint path to it go
through ``SafetyFilter.check_waypoints`` (workspace, keep-out zones, table, reach, joint limits,
singularity, self-collision) before anything moves; refused poses are skipped with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.transform import Rotation

from spatial_trace_ros.geometry.camera_model import CameraIntrinsics
from spatial_trace_ros.planning.safety import SafetyCode, SafetyConfig, SafetyFilter
from spatial_trace_ros.robots.model import RobotModel

GOLDEN_ANGLE_RAD = math.pi * (3.0 - math.sqrt(5.0))
# Joint path resolution when checking a move: well inside max_joint_step_rad.
CHECK_STEP_RAD = 0.05


class PoseSetOptions(BaseModel):
    """How the automatic pose set spreads around the start pose."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_poses: int = Field(12, ge=3, le=100, description="poses to visit (the start pose is the first)")
    tilt_deg: float = Field(20.0, ge=0.0, le=60.0, description="largest tilt of the tool axis [deg]")
    spin_deg: float = Field(30.0, ge=0.0, le=180.0, description="largest spin about the tool axis [deg]")
    spread_m: float = Field(0.08, ge=0.0, le=0.5, description="half-size of the box of positions [m]")
    pivot_m: float = Field(0.0, ge=0.0, le=2.0, description="rotate about the point this far along the tool z [m]")
    workspace_poses: int = Field(0, ge=0, le=50, description="eye-to-hand: further poses spread over the traces' "
                                 "region, planned from a first calibration of the others")


def _halton(index: int, base: int) -> float:
    f, r = 1.0, 0.0
    while index > 0:
        f /= base
        r += f * (index % base)
        index //= base
    return r


def generate_pose_set(start: np.ndarray, options: PoseSetOptions) -> list[np.ndarray]:
    """``n_poses`` base_T_tool poses; the first is ``start``."""
    start = np.asarray(start, float)
    R0, p0 = start[:3, :3], start[:3, 3]
    pivot = p0 + R0 @ [0.0, 0.0, options.pivot_m]
    out = [start.copy()]
    n = options.n_poses - 1
    for k in range(1, n + 1):
        phi = k * GOLDEN_ANGLE_RAD
        tilt = math.radians(options.tilt_deg) * math.sqrt((k - 0.5) / n)
        spin = math.radians(options.spin_deg) * (2.0 * _halton(k, 5) - 1.0)
        rotvec = [tilt * math.cos(phi), tilt * math.sin(phi), spin]
        dR = Rotation.from_rotvec(rotvec).as_matrix()
        offset = options.spread_m * (2.0 * np.array([_halton(k, 2), _halton(k, 3), _halton(k, 7)]) - 1.0)
        pose = np.eye(4)
        pose[:3, :3] = R0 @ dR
        pose[:3, 3] = pivot - pose[:3, :3] @ [0.0, 0.0, options.pivot_m] + offset
        out.append(pose)
    return out


@dataclass(frozen=True)
class CheckedPose:
    """A pose of the set: its joint path from the previous accepted pose, or why it was refused."""

    index: int
    pose: np.ndarray
    path_q: np.ndarray | None  # (M, dof) joint path ending at the pose; None when refused
    refusal: str = ""


def joint_path(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """Straight joint-space path, fine enough for the safety filter's step limits."""
    steps = max(1, math.ceil(float(np.max(np.abs(q_to - q_from))) / CHECK_STEP_RAD))
    return q_from + np.linspace(0.0, 1.0, steps + 1)[:, None] * (q_to - q_from)


def check_pose_set(poses: list[np.ndarray], q_start: np.ndarray, model: RobotModel, safety: SafetyConfig
                   ) -> list[CheckedPose]:
    """Solve IK near the previous accepted pose and run the safety filter on each joint path."""
    fil = SafetyFilter(safety, model)
    out: list[CheckedPose] = []
    q_prev = np.asarray(q_start, float)
    for i, pose in enumerate(poses):
        q = model.ik(pose, q_prev)
        if q is None:
            out.append(CheckedPose(i, pose, None, f"out of the {model.name}'s reach"))
            continue
        path = joint_path(q_prev, q)
        reasons, _ = fil.check_waypoints(model.fk_many(path), path)
        refusals = [r.message for r in reasons if SafetyCode(r.code).severity == "reject"]
        if refusals:
            out.append(CheckedPose(i, pose, None, "; ".join(refusals)))
            continue
        out.append(CheckedPose(i, pose, path))
        q_prev = q
    return out


def workspace_pose_set(base_T_camera: np.ndarray, tool_T_board: np.ndarray, board_size_m: tuple[float, float],
                       board_centre: np.ndarray, intrinsics: CameraIntrinsics, safety: SafetyConfig, n_poses: int,
                       tilt_deg: float = 20.0) -> list[np.ndarray]:
    """Eye-to-hand, second round: tool poses that put the board all over the region the traces use (the
    safety workspace box, 0.08-0.45 m above the table, inside the camera's view at 0.35-1.3 m), its face
    turned to the camera and tilted up to ``tilt_deg``, fully inside the image by a margin. Needs a first
    estimate of the camera (``base_T_camera``) and of the board on the flange (``tool_T_board``).
    Candidates come from a low-discrepancy sequence, ordered along y so moves stay short; the safety
    check still decides which are visited."""
    lo, hi = safety.workspace_min, safety.workspace_max
    z0 = safety.table.z_m if safety.table.enabled else lo[2]
    cam_R, cam_p = base_T_camera[:3, :3], base_T_camera[:3, 3]
    w, h = board_size_m
    outline = np.array([[0, 0, 0], [w, 0, 0], [w, h, 0], [0, h, 0]], float) - board_centre
    margin_x, margin_y = 0.1 * intrinsics.width, 0.1 * intrinsics.height
    out: list[np.ndarray] = []
    for k in range(1, 40 * n_poses):
        centre = np.array([lo[0] + (hi[0] - lo[0]) * _halton(k, 2), lo[1] + (hi[1] - lo[1]) * _halton(k, 3),
                           z0 + 0.08 + 0.37 * _halton(k, 5)])
        towards = cam_p - centre
        distance = float(np.linalg.norm(towards))
        in_cam = cam_R.T @ (centre - cam_p)
        if not 0.35 <= distance <= 1.3 or in_cam[2] <= 0:
            continue
        normal = towards / distance  # the face normal; the board's own z points into it
        x_hint = cam_R[:, 0] - normal * (cam_R[:, 0] @ normal)
        x_axis = x_hint / np.linalg.norm(x_hint)
        R = np.column_stack([x_axis, np.cross(-normal, x_axis), -normal])
        tilt = math.radians(tilt_deg) * math.sqrt(_halton(k, 7))
        phi = 2 * math.pi * _halton(k, 11)
        R = R @ Rotation.from_rotvec([tilt * math.cos(phi), tilt * math.sin(phi), 0.0]).as_matrix()
        corners_cam = (cam_R.T @ ((R @ outline.T).T + centre - cam_p).T).T
        if np.any(corners_cam[:, 2] <= 0.1):
            continue
        u = intrinsics.fx * corners_cam[:, 0] / corners_cam[:, 2] + intrinsics.cx
        v = intrinsics.fy * corners_cam[:, 1] / corners_cam[:, 2] + intrinsics.cy
        if u.min() < margin_x or u.max() > intrinsics.width - margin_x or v.min() < margin_y or \
                v.max() > intrinsics.height - margin_y:
            continue
        base_T_board = np.eye(4)
        base_T_board[:3, :3] = R
        base_T_board[:3, 3] = centre - R @ board_centre
        out.append(base_T_board @ np.linalg.inv(tool_T_board))
        if len(out) == 3 * n_poses:
            break
    return sorted(out, key=lambda pose: pose[1, 3])
