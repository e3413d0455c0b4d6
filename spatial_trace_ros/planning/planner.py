"""From a camera-frame trace to a checked, timed plan in the robot's base frame.

The steps, in order: put the trace in the base frame with the calibration (eye-to-hand: fixed
``base_T_camera``; eye-in-hand: ``base_T_tool`` at the frame's capture time composed with
``tool_T_camera``); optionally smooth it; resample it to an even spacing; give every point a tool
orientation (fixed, the current one, or following the path tangent); add the way in from the current
pose, an approach point before the trace and a retreat point after it; solve IK along the whole path
on one arm configuration; then hand it to the ``SafetyFilter``, which checks, adjusts (only towards
safer) and times it. The planner never decides on its own that something is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.ndimage import uniform_filter1d
from scipy.spatial.transform import Rotation

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.geometry import path as pathlib
from spatial_trace_ros.geometry.calibration import Calibration
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.geometry.transforms import Transform
from spatial_trace_ros.planning.freshness import clock_skew_reasons, input_ages
from spatial_trace_ros.planning.plan import Plan, SafetyReason, SafetyReport
from spatial_trace_ros.planning.plan_identity import identify
from spatial_trace_ros.planning.safety import (
    CandidatePath,
    SafetyCode,
    SafetyConfig,
    SafetyFilter,
    TraceFacts,
    reason,
    verdict_of,
)
from spatial_trace_ros.robots.model import RobotModel

OrientationPolicy = Literal["fixed", "keep_current", "follow_tangent"]
# Largest tool rotation between consecutive waypoints the planner itself creates [rad]: moves between
# orientations are densified to it and a followed heading turns no faster, so that the wrist never
# needs a joint step the safety filter would refuse (max_joint_step_rad defaults to 0.3).
MAX_ROTATION_STEP_RAD = 0.1
# Below this relative rotation [rad] _slerp takes the axis from the skew-symmetric part directly.
SKEW_AXIS_MAX_ANGLE_RAD = 3.0


class PlannerConfig(BaseModel):
    """How a trace becomes a path. Speeds here are requests; the safety config caps them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacing_m: float = Field(0.01, ge=0.001, le=0.1, description="distance between waypoints [m]")
    orientation_policy: OrientationPolicy = Field(
        "fixed", description="tool orientation along the path: fixed_tool_rpy_rad, the current one, or yaw "
        "following the path tangent (tool axis from fixed_tool_rpy_rad)"
    )
    fixed_tool_rpy_rad: list[float] = Field(
        default_factory=lambda: [np.pi, 0.0, 0.0],
        description="tool orientation as roll, pitch, yaw about fixed base axes [rad] (default: tool z down)",
    )
    approach_offset_m: float = Field(
        0.05, ge=0.0, le=0.3, description="approach point this far back along the tool z axis before the trace [m]"
    )
    retreat_offset_m: float = Field(
        0.05, ge=0.0, le=0.3, description="retreat point this far back along the tool z axis after the trace [m]"
    )
    max_tcp_speed_mps: float = Field(0.25, gt=0.0, le=2.0, description="requested TCP speed [m/s]")
    max_tcp_accel_mps2: float = Field(0.5, gt=0.0, le=10.0, description="requested TCP acceleration [m/s^2]")
    start_from_current: bool = Field(
        True, description="begin the plan at the current TCP pose (when joint states are known)"
    )
    smoothing_window: int = Field(
        0, ge=0, le=51, description="Savitzky-Golay window over the trace points [points] (0 = off)"
    )
    tangent_window_m: float = Field(
        0.05, ge=0.0, le=0.5, description="follow_tangent: average the heading over this path length [m]"
    )
    plan_max_age_s: float = Field(
        60.0, gt=0.0, le=3600.0, description="a plan expires this long after its frame's capture stamp [s] "
        "(the controller also applies its own plan_max_age_s)"
    )

    @field_validator("smoothing_window")
    @classmethod
    def _odd_window(cls, v: int) -> int:
        if v != 0 and (v < 3 or v % 2 == 0):
            raise ValueError(f"must be 0 (off) or an odd number of points >= 3, got {v}")
        return v

    @field_validator("fixed_tool_rpy_rad")
    @classmethod
    def _three_angles(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or not all(np.isfinite(v)):
            raise ValueError(f"must be 3 finite angles [roll, pitch, yaw] in radians, got {v}")
        return v


@dataclass(frozen=True, eq=False)
class PlanResult:
    """Everything one planning attempt produced, for the node and RViz (also on refusal)."""

    plan: Plan | None
    report: SafetyReport
    trace_base: np.ndarray  # valid trace points (M, 3) in the base frame (empty if unknown)
    waypoints: np.ndarray  # candidate poses (N, 4, 4) as checked (empty when refused before planning)
    notes: tuple[SafetyReason, ...] = field(default=())


def _refused(*reasons: SafetyReason, trace_base: np.ndarray | None = None) -> PlanResult:
    """A refusal before any path was built (bad frame, stale or poor trace)."""
    report = SafetyReport(verdict_of(reasons), tuple(reasons))
    return PlanResult(None, report, np.zeros((0, 3)) if trace_base is None else trace_base, np.zeros((0, 4, 4)))


class Planner:
    """Turns camera-frame traces into plans for one robot, calibration and set of limits."""

    def __init__(
        self, model: RobotModel, calibration: Calibration, config: PlannerConfig | None = None,
        safety: SafetyFilter | SafetyConfig | None = None,
    ) -> None:
        self.model = model
        self.calibration = calibration
        self.config = config or PlannerConfig()
        if safety is None or isinstance(safety, SafetyConfig):
            safety = SafetyFilter(safety or SafetyConfig(), model)
        self.safety = safety
        self._fixed_rotation = Rotation.from_euler("xyz", self.config.fixed_tool_rpy_rad).as_matrix()
        # With a tool, traces become tasks (planning.task.TaskPlanner, set by whoever builds the planner).
        self.task_planner: Any = None
        parent = calibration.transform.parent
        if calibration.mode == "eye_to_hand" and parent and parent != model.base_frame:
            raise ConfigError(
                f"the calibration gives the camera in {parent!r} but {model.name} plans in {model.base_frame!r}; "
                f"recalibrate against {model.base_frame!r} (UR: RTDE's base frame is base_link rotated by pi about z)"
            )
        if calibration.mode == "eye_in_hand" and parent and parent != model.tool_frame:
            raise ConfigError(
                f"eye-in-hand calibration is relative to {parent!r} but {model.name}'s tool frame is "
                f"{model.tool_frame!r}; recalibrate against {model.tool_frame!r}"
            )

    # -- public API -----------------------------------------------------------------------------------
    def plan(
        self, trace: Trace, q_now: np.ndarray | None, base_T_tool_at_capture: np.ndarray | None = None,
        now_s: float | None = None, trace_made_s: float | None = None, seed_joints: np.ndarray | None = None,
        max_trace_age_s: float | None = None,
    ) -> tuple[Plan | None, SafetyReport]:
        """The plan for ``trace`` (None when refused) and the safety report saying why."""
        result = self.plan_detailed(trace, q_now, base_T_tool_at_capture, now_s, trace_made_s, seed_joints,
                                    max_trace_age_s)
        return result.plan, result.report

    def plan_detailed(
        self, trace: Trace, q_now: np.ndarray | None, base_T_tool_at_capture: np.ndarray | None = None,
        now_s: float | None = None, trace_made_s: float | None = None, seed_joints: np.ndarray | None = None,
        max_trace_age_s: float | None = None, seed_label: str = "initial_joints_rad", task: str = "",
    ) -> PlanResult:
        """Like ``plan`` but also returns the trace and waypoints in the base frame (for RViz).

        ``q_now`` is the measured joint state (None if none is current); then ``seed_joints`` (described
        by ``seed_label`` in the report) seeds IK and the plan starts at the approach point. With
        ``now_s`` the frame's age is measured from its capture stamp (``trace.stamp_s``) and the trace's
        from ``trace_made_s`` (the capture stamp when None); stamps from the future are refused
        (CLOCK_SKEW). Without ``now_s`` ages are not checked. ``trace.metadata`` may carry what the
        trace stage knew: ``valid_fraction`` (of all points it found, before invalid ones were dropped),
        ``agreement`` and ``n_samples``.
        With a task planner (a tool) the trace becomes a task of kind ``task`` (``planning.task``; empty:
        place).
        """
        model, cfg = self.model, self.config
        notes: list[SafetyReason] = []
        if q_now is None:
            if seed_joints is None:
                raise ConfigError("no joint state and no seed joints: give q_now or seed_joints (initial_joints_rad)")
            seed = np.asarray(seed_joints, float)
            notes.append(reason(SafetyCode.NO_JOINT_STATE,
                                f"no current joint state: IK seeded from {seed_label} and the plan starts at the "
                                "approach point, not at the robot's current pose"))
        else:
            seed = np.asarray(q_now, float)
        if seed.shape != (model.dof,) or not np.all(np.isfinite(seed)):
            raise ConfigError(
                f"joint positions for {model.name} must be {model.dof} finite numbers, got {seed.tolist()}"
            )

        base_T_camera = self._base_T_camera(trace, base_T_tool_at_capture)
        if isinstance(base_T_camera, SafetyReason):
            return _refused(*notes, base_T_camera)
        valid = trace.points[trace.valid]
        points = base_T_camera.apply(valid) if len(valid) else np.zeros((0, 3))
        ages = None if now_s is None else input_ages(trace.stamp_s, trace_made_s, now_s)
        valid_fraction = trace.valid_fraction if len(trace) else None
        if "valid_fraction" in trace.metadata:
            stage = float(trace.metadata["valid_fraction"])
            valid_fraction = stage if valid_fraction is None else min(valid_fraction, stage)
        facts = TraceFacts(
            n_points=len(points),
            depth_valid_fraction=valid_fraction,
            max_point_step_m=float(pathlib.spacing(points).max()) if len(points) > 1 else None,
            frame_age_s=None if ages is None else ages.frame_age_s,
            trace_age_s=None if ages is None else ages.trace_age_s,
            model_agreement=trace.metadata.get("agreement"),
            n_samples=int(trace.metadata.get("n_samples", 2 if trace.metadata.get("agreement") is not None else 1)),
        )
        input_reasons = self.safety.check_inputs(facts, max_trace_age_s)
        if now_s is not None:
            skew_s = self.safety.config.freshness.max_clock_skew_s
            input_reasons = clock_skew_reasons(trace.stamp_s, trace_made_s, now_s, skew_s) + input_reasons
        if input_reasons or len(points) < 2:
            if not input_reasons:
                input_reasons = [reason(SafetyCode.TRACE_TOO_SHORT, "the trace has fewer than 2 valid points")]
            return _refused(*notes, *input_reasons, trace_base=points)

        q_start = seed if q_now is not None else None
        if self.task_planner is not None:
            result = self.task_planner.plan(points, task or "place", q_start, seed, trace.stamp_s, "", tuple(notes))
        else:
            poses = self.build_path(points, q_start, seed)
            joints = model.ik_path(poses, seed)
            candidate = CandidatePath(
                poses=poses, joints=joints, q_seed=seed, speed_mps=cfg.max_tcp_speed_mps,
                accel_mps2=cfg.max_tcp_accel_mps2, stamp_s=trace.stamp_s, notes=tuple(notes),
            )
            plan, report = self.safety.filter(candidate)
            result = PlanResult(plan, report, points, plan.poses if plan is not None else poses, tuple(notes))
        if result.plan is None:
            return result
        plan = replace(result.plan, expires_s=trace.stamp_s + cfg.plan_max_age_s)
        return replace(result, plan=replace(plan, plan_id=identify(plan)))

    # -- steps ----------------------------------------------------------------------------------------
    def _base_T_camera(self, trace: Trace, base_T_tool_at_capture: np.ndarray | None) -> Transform | SafetyReason:
        cal, model = self.calibration, self.model
        if trace.frame_id and cal.camera_frame and trace.frame_id != cal.camera_frame:
            return reason(SafetyCode.WRONG_FRAME,
                          f"the trace is in frame {trace.frame_id!r} but the calibration is for "
                          f"{cal.camera_frame!r}; use the calibration of the camera that took the frame")
        if cal.mode == "eye_to_hand":
            return cal.base_T_camera()
        if base_T_tool_at_capture is None:
            return reason(SafetyCode.NO_TCP_POSE,
                          "eye-in-hand calibration needs the TCP pose at the frame's capture time, and none is known "
                          "for that time; is the controller publishing /spatial_trace/tcp_pose (or joint states)?")
        tool = Transform(np.asarray(base_T_tool_at_capture, float), model.base_frame, cal.transform.parent)
        return cal.base_T_camera(tool)

    def fixed_rotation(self) -> np.ndarray:
        return self._fixed_rotation.copy()

    def orientations(self, points: np.ndarray, current: np.ndarray | None) -> np.ndarray:
        """A tool rotation (M, 3, 3) for each path point under the configured policy."""
        policy = self.config.orientation_policy
        if policy == "keep_current" and current is not None:
            return np.repeat(current[None], len(points), axis=0)
        base = self.fixed_rotation()
        if policy != "follow_tangent" or len(points) < 2:
            return np.repeat(base[None], len(points), axis=0)
        # Yaw about the tool axis so that tool x follows the heading, averaged over tangent_window_m.
        z = base[:, 2]
        x0 = base[:, 0]
        tangent = np.gradient(points, axis=0)
        flat = tangent - np.outer(tangent @ z, z)
        norm = np.linalg.norm(flat, axis=1)
        y0 = np.cross(z, x0)
        yaw = np.arctan2(flat @ y0, flat @ x0)
        known = norm > 1e-9
        if not np.any(known):
            return np.repeat(base[None], len(points), axis=0)
        idx = np.arange(len(points))
        yaw = np.interp(idx, idx[known], np.unwrap(yaw[known]))  # hold the heading through vertical moves
        window = max(1, round(self.config.tangent_window_m / self.config.spacing_m))
        if window > 1:
            yaw = uniform_filter1d(yaw, size=window, mode="nearest")
        # Turn no faster than MAX_ROTATION_STEP_RAD per waypoint: at a sharp corner the heading lags
        # and catches up along the next waypoints instead of spinning the wrist in one step.
        limited = yaw.copy()
        step = MAX_ROTATION_STEP_RAD
        for i in range(1, len(limited)):
            limited[i] = limited[i - 1] + np.clip(yaw[i] - limited[i - 1], -step, step)
        yaw = limited
        about_z = Rotation.from_rotvec(np.outer(yaw, z)).as_matrix()
        return about_z @ base

    def build_path(self, points: np.ndarray, q_start: np.ndarray | None, seed: np.ndarray) -> np.ndarray:
        """Poses (N, 4, 4): [current pose ->] approach -> resampled trace -> retreat."""
        cfg, model = self.config, self.model
        if cfg.smoothing_window:
            points = pathlib.smooth(points, window=cfg.smoothing_window)
        trace_pts = pathlib.resample_by_spacing(points, cfg.spacing_m)
        current = model.fk(q_start if q_start is not None else seed)
        rot = self.orientations(trace_pts, current[:3, :3])
        segments: list[tuple[np.ndarray, np.ndarray]] = []
        first, last = _pose(rot[0], trace_pts[0]), _pose(rot[-1], trace_pts[-1])
        approach = first.copy()
        approach[:3, 3] -= cfg.approach_offset_m * rot[0][:, 2]
        retreat = last.copy()
        retreat[:3, 3] -= cfg.retreat_offset_m * rot[-1][:, 2]
        if q_start is not None and cfg.start_from_current:
            segments.append(self._line(current, approach))
        if cfg.approach_offset_m > 0:
            segments.append(self._line(approach, first))
        segments.append((trace_pts, rot))
        if cfg.retreat_offset_m > 0:
            segments.append(self._line(last, retreat))
        pts = [segments[0][0]] + [s[0][1:] for s in segments[1:]]
        rots = [segments[0][1]] + [s[1][1:] for s in segments[1:]]
        return _poses(np.concatenate(rots), np.concatenate(pts))

    def _line(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A straight move between two poses at the configured spacing (denser where the tool turns
        more than MAX_ROTATION_STEP_RAD per step); rotation slerped along it."""
        length = float(np.linalg.norm(end[:3, 3] - start[:3, 3]))
        cos = (np.trace(start[:3, :3].T @ end[:3, :3]) - 1.0) / 2.0
        angle = float(np.arccos(np.clip(cos, -1.0, 1.0)))
        count = max(2, int(np.ceil(max(length / self.config.spacing_m, angle / MAX_ROTATION_STEP_RAD) - 1e-9)) + 1)
        w = np.linspace(0.0, 1.0, count)
        pts = start[:3, 3] + np.outer(w, end[:3, 3] - start[:3, 3])
        if np.abs(start[:3, :3] - end[:3, :3]).max() < 1e-12:
            rots = np.repeat(start[None, :3, :3], count, axis=0)
        else:
            rots = _slerp(start[:3, :3], end[:3, :3], w)
        return pts, rots


def _slerp(R0: np.ndarray, R1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotations (len(w), 3, 3) along the shortest arc from R0 (w = 0) to R1 (w = 1) (Rodrigues)."""
    rel = R0.T @ R1
    # The axis from the skew part is exact to round-off while sin(angle) is well away from 0; close
    # to a half turn it is not, and scipy's quaternion route takes over.
    skew = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
    twice_sin = float(np.sqrt(skew @ skew))
    angle = float(np.arctan2(twice_sin / 2.0, (rel[0, 0] + rel[1, 1] + rel[2, 2] - 1.0) / 2.0))
    if angle < 1e-12:
        return np.repeat(R0[None], len(w), axis=0)
    if angle < SKEW_AXIS_MAX_ANGLE_RAD:
        kx, ky, kz = skew / twice_sin
    else:
        rotvec = Rotation.from_matrix(rel).as_rotvec()
        angle = float(np.linalg.norm(rotvec))
        kx, ky, kz = rotvec / angle
    K = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    t = np.asarray(w, float)[:, None, None] * angle
    steps = np.eye(3) + np.sin(t) * K + (1.0 - np.cos(t)) * (K @ K)
    return R0 @ steps


def _pose(R: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = R, p
    return out


def _poses(R: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.tile(np.eye(4), (len(p), 1, 1))
    out[:, :3, :3], out[:, :3, 3] = R, p
    return out
