"""The plan-time safety filter: a geometric path in, a timed ``Plan`` with a verdict out.

``SafetyFilter.filter`` returns ACCEPT, ADJUSTED (made safer: slower, or clipped into the workspace
when configured to) or REJECT (no plan). Geometry and configuration go through ``WaypointChecks``
(shared with the run-time guard), timing through ``planning.timing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.planning.plan import Plan, SafetyReason, SafetyReport, Verdict
from spatial_trace_ros.planning.safety.codes import (
    ROUNDOFF,
    SafetyCode,
    count,
    ordered_report,
    reason,
    refusals,
    verdict_of,
)
from spatial_trace_ros.planning.safety.configuration import WaypointChecks
from spatial_trace_ros.planning.safety.inputs import TraceFacts, check_inputs
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.planning.timing import (
    TimingLimits,
    rotation_angles,
    segment_velocities,
    time_parameterize,
    waypoint_accelerations,
)
from spatial_trace_ros.robots.model import RobotModel


@dataclass(frozen=True, eq=False)
class CandidatePath:
    """A geometric path the planner proposes: poses (N, 4, 4) base_T_tool in the model's base frame,
    the joint solution (N, dof; NaN rows where IK failed) and the motion the planner asks for."""

    poses: np.ndarray
    joints: np.ndarray
    q_seed: np.ndarray
    speed_mps: float
    accel_mps2: float
    stamp_s: float = 0.0
    plan_id: str = ""
    notes: tuple[SafetyReason, ...] = field(default=())


class SafetyFilter:
    """Plan-time checks of a whole path; see the module docstring. The tool and a held object are
    checked along task paths by ``planning.tool_geometry`` (``planning.task``)."""

    def __init__(self, config: SafetyConfig, model: RobotModel) -> None:
        self.config = config
        self.model = model
        self.waypoints = WaypointChecks(config, model)

    def check_inputs(self, facts: TraceFacts, max_trace_age_s: float | None = None) -> list[SafetyReason]:
        """Freshness and quality of the trace (see ``safety.inputs``)."""
        return check_inputs(self.config, facts, max_trace_age_s)

    def clip_to_workspace(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poses with positions moved onto the workspace box, and the distance each moved."""
        lo, hi = self.config.workspace_min, self.config.workspace_max
        out = poses.copy()
        out[:, :3, 3] = np.clip(poses[:, :3, 3], lo, hi)
        return out, np.linalg.norm(out[:, :3, 3] - poses[:, :3, 3], axis=1)

    def check_waypoints(self, poses: np.ndarray, joints: np.ndarray) -> tuple[list[SafetyReason], np.ndarray]:
        """Every position- and configuration-dependent check; also the speed factor (N,) near singularities."""
        return self.waypoints.check(poses, joints)

    # -- timing ---------------------------------------------------------------------------------------
    def timing_limits(self, speed_mps: float, accel_mps2: float) -> tuple[TimingLimits, list[SafetyReason]]:
        """The limits a plan is timed with: the request, never above the configured ceilings."""
        m, out = self.config.motion, []
        speed, accel = speed_mps, accel_mps2
        if speed > m.max_tcp_speed_mps:
            out.append(reason(SafetyCode.SPEED_LIMITED,
                              f"requested TCP speed {speed:.3f} m/s is above the safety limit; limited to "
                              f"{m.max_tcp_speed_mps:.3f} m/s", value=speed, limit=m.max_tcp_speed_mps))
            speed = m.max_tcp_speed_mps
        if accel > m.max_tcp_accel_mps2:
            out.append(reason(SafetyCode.ACCEL_LIMITED,
                              f"requested TCP acceleration {accel:.3f} m/s^2 is above the safety limit; limited to "
                              f"{m.max_tcp_accel_mps2:.3f} m/s^2", value=accel, limit=m.max_tcp_accel_mps2))
            accel = m.max_tcp_accel_mps2
        limits = TimingLimits(speed, accel, m.max_tool_angular_speed_radps,
                              self.model.max_velocity_radps * m.joint_speed_fraction)
        return limits, out

    def check_timing(self, plan: Plan, rel_tolerance: float = ROUNDOFF) -> list[SafetyReason]:
        """Speed and acceleration of a timed plan against the configured ceilings."""
        m, out = self.config.motion, []
        pos, t = plan.positions, plan.times_s
        tol = 1.0 + rel_tolerance
        speed = np.linalg.norm(segment_velocities(pos, t), axis=1)
        if np.any(speed > m.max_tcp_speed_mps * tol):
            k = int(np.argmax(speed))
            out.append(reason(SafetyCode.TCP_SPEED,
                              f"TCP speed {speed[k]:.3f} m/s between waypoints #{k} and #{k + 1} is above "
                              f"{m.max_tcp_speed_mps:.3f} m/s", waypoint=k, value=speed[k], limit=m.max_tcp_speed_mps))
        acc = np.linalg.norm(waypoint_accelerations(pos, t), axis=1)
        if np.any(acc > m.max_tcp_accel_mps2 * tol):
            k = int(np.argmax(acc))
            out.append(reason(SafetyCode.TCP_ACCEL,
                              f"TCP acceleration {acc[k]:.3f} m/s^2 at waypoint #{k} is above "
                              f"{m.max_tcp_accel_mps2:.3f} m/s^2", waypoint=k, value=acc[k],
                              limit=m.max_tcp_accel_mps2))
        dt = np.diff(t)
        ang = rotation_angles(plan.poses) / dt
        if np.any(ang > m.max_tool_angular_speed_radps * tol):
            k = int(np.argmax(ang))
            out.append(reason(SafetyCode.TOOL_ANGULAR_SPEED,
                              f"tool rotation {ang[k]:.3f} rad/s between waypoints #{k} and #{k + 1} is above "
                              f"{m.max_tool_angular_speed_radps:.3f} rad/s", waypoint=k, value=ang[k],
                              limit=m.max_tool_angular_speed_radps))
        qd_max = self.model.max_velocity_radps * m.joint_speed_fraction
        qd = np.abs(np.diff(plan.joints, axis=0)) / dt[:, None]
        over = qd > qd_max * tol
        if np.any(over):
            k, j = np.argwhere(over)[0]
            out.append(reason(SafetyCode.JOINT_SPEED,
                              f"joint {self.model.joint_names[j]} would move at {qd[k, j]:.3f} rad/s between "
                              f"waypoints #{k} and #{k + 1}, above {qd_max[j]:.3f} rad/s", waypoint=int(k),
                              value=qd[k, j], limit=qd_max[j]))
        return out

    # -- the filter -----------------------------------------------------------------------------------
    def filter(self, candidate: CandidatePath, facts: TraceFacts | None = None,
               max_trace_age_s: float | None = None) -> tuple[Plan | None, SafetyReport]:
        """Check, adjust (only ever towards safer) and time a candidate path."""
        reasons = list(candidate.notes)
        if facts is not None:
            reasons += self.check_inputs(facts, max_trace_age_s)
        poses = np.asarray(candidate.poses, float)
        joints = np.asarray(candidate.joints, float)
        if len(poses) < 2:
            reasons.append(reason(SafetyCode.TRACE_TOO_SHORT, "the path has fewer than 2 waypoints; ask again"))
            return None, ordered_report(reasons)
        ws = self.config.workspace
        if ws.clip_to_workspace:
            clipped, moved = self.clip_to_workspace(poses)
            if np.any(moved > 1e-9) and moved.max() <= ws.max_clip_m:
                reasons.append(reason(SafetyCode.CLIPPED_TO_WORKSPACE,
                                      f"{count(moved > 1e-9)} were moved back inside the workspace box, by up to "
                                      f"{moved.max():.3f} m", waypoint=int(np.argmax(moved > 1e-9)),
                                      value=moved.max(), limit=ws.max_clip_m))
                poses = clipped
                joints = self.model.ik_path(poses, candidate.q_seed)
        keep = distinct_poses(poses)
        poses, joints = poses[keep], joints[keep]
        if len(poses) < 2:
            reasons.append(reason(SafetyCode.TRACE_TOO_SHORT, "the path has no length; ask again"))
            return None, ordered_report(reasons)
        geo, scale = self.check_waypoints(poses, joints)
        reasons += geo
        if verdict_of(reasons) is Verdict.REJECT:
            return None, ordered_report(reasons)
        limits, adjusted = self.timing_limits(candidate.speed_mps, candidate.accel_mps2)
        reasons += adjusted
        times = time_parameterize(poses, joints, limits, np.minimum(scale[:-1], scale[1:]))
        plan = Plan(robot=self.model.name, frame_id=self.model.base_frame, joint_names=self.model.joint_names,
                    times_s=times, joints=joints, poses=poses, plan_id=candidate.plan_id, stamp_s=candidate.stamp_s)
        reasons += self.check_timing(plan)
        report = ordered_report(reasons)
        if not report.allowed:
            return None, report
        return Plan(robot=plan.robot, frame_id=plan.frame_id, joint_names=plan.joint_names, times_s=plan.times_s,
                    joints=plan.joints, poses=plan.poses, plan_id=plan.plan_id, stamp_s=plan.stamp_s,
                    report=report), report

    def verify(self, plan: Plan, rel_tolerance: float = ROUNDOFF) -> SafetyReport:
        """Re-check a finished plan (e.g. one received over ROS): geometry, configuration and timing.
        ``rel_tolerance`` allows for the rounding of a plan that travelled as a message (nanosecond
        stamps, poses recomputed from joints) on the speed and acceleration limits."""
        reasons, _ = self.check_waypoints(plan.poses, plan.joints)
        fk = self.model.fk_many(plan.joints)
        drift = np.abs(fk - plan.poses).max(axis=(1, 2))
        if np.any(drift > 1e-6):
            i = int(np.argmax(drift))
            reasons.append(reason(SafetyCode.UNREACHABLE,
                                  f"waypoint #{i}'s pose does not match its joints ({drift[i]:.2g} off); the plan was "
                                  f"made for another robot than {self.model.name}", waypoint=i))
        reasons += self.check_timing(plan, rel_tolerance)
        # Adjustments were already applied when the plan was made; here only refusals count.
        return ordered_report(refusals(reasons))


def distinct_poses(poses: np.ndarray) -> np.ndarray:
    """Mask keeping the first of each run of identical consecutive poses."""
    same = np.all(np.abs(np.diff(poses, axis=0)) < 1e-12, axis=(1, 2))
    return np.concatenate([[True], ~same])
