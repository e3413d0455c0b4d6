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
