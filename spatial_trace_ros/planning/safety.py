"""The safety filter (plan time) and the setpoint guard (run time).

Nothing moves unless every check passes, and every refusal says why in words a person can act on.
``SafetyFilter.filter`` takes a geometric path with its joint solution and returns a timed ``Plan``
with a verdict: ACCEPT, ADJUSTED (made safer: slower, or clipped into the workspace when configured
to) or REJECT (no plan). ``SetpointGuard`` applies the same limits to each setpoint a controller is
about to send. Both read one ``SafetyConfig`` (``config/safety.yaml``) and one ``RobotModel``.

Each finding is a ``SafetyReason`` with a stable code from ``SafetyCode`` (one per kind of check;
at most one reason per code, naming the first offending waypoint and how many there are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from spatial_trace_ros.planning import volumes
from spatial_trace_ros.planning.plan import Plan, SafetyReason, SafetyReport, Verdict
from spatial_trace_ros.planning.safety_config import (
    BoxZone,
    CylinderZone,
    SafetyConfig,
    load_safety_config,
    safety_config_from_dict,
)
from spatial_trace_ros.planning.timing import (
    TimingLimits,
    rotation_angles,
    segment_velocities,
    time_parameterize,
    waypoint_accelerations,
)
from spatial_trace_ros.robots.model import RobotModel

__all__ = [
    "SafetyCode",
    "SafetyConfig",
    "SafetyFilter",
    "SetpointGuard",
    "TraceFacts",
    "load_safety_config",
    "safety_config_from_dict",
    "verdict_of",
]

# Relative slack for floating-point round-off when comparing a computed value with its limit.
ROUNDOFF = 1e-9


class SafetyCode(str, Enum):
    """Machine-readable reason codes. ``severity`` says what each does to the verdict."""

    # data the plan came from
    INVALID_INPUT = "INVALID_INPUT"
    TRACE_TOO_SHORT = "TRACE_TOO_SHORT"
    DEPTH_INVALID = "DEPTH_INVALID"
    MODEL_DISAGREEMENT = "MODEL_DISAGREEMENT"
    FRAME_TOO_OLD = "FRAME_TOO_OLD"
    TRACE_TOO_OLD = "TRACE_TOO_OLD"
    TRACE_JUMP = "TRACE_JUMP"
    WRONG_FRAME = "WRONG_FRAME"
    NO_TCP_POSE = "NO_TCP_POSE"
    # where the robot would go
    OUTSIDE_WORKSPACE = "OUTSIDE_WORKSPACE"
    KEEP_OUT_ZONE = "KEEP_OUT_ZONE"
    BELOW_TABLE = "BELOW_TABLE"
    LINK_BELOW_TABLE = "LINK_BELOW_TABLE"
    UNREACHABLE = "UNREACHABLE"
    JOINT_LIMIT = "JOINT_LIMIT"
    JOINT_JUMP = "JOINT_JUMP"
    STEP_TOO_LARGE = "STEP_TOO_LARGE"
    SINGULARITY = "SINGULARITY"
    SELF_COLLISION = "SELF_COLLISION"
    TOOL_COLLISION = "TOOL_COLLISION"  # the tool's geometry (planning.tool_geometry)
    HELD_OBJECT_COLLISION = "HELD_OBJECT_COLLISION"  # the envelope of a held object
    # how fast it would go
    TCP_SPEED = "TCP_SPEED"
    TCP_ACCEL = "TCP_ACCEL"
    TOOL_ANGULAR_SPEED = "TOOL_ANGULAR_SPEED"
    JOINT_SPEED = "JOINT_SPEED"
    # run-time input problems
    NON_FINITE = "NON_FINITE"
    BAD_TIMING = "BAD_TIMING"
    # adjustments (motion made safer)
    SPEED_LIMITED = "SPEED_LIMITED"
    ACCEL_LIMITED = "ACCEL_LIMITED"
    SINGULARITY_SLOWED = "SINGULARITY_SLOWED"
    CLIPPED_TO_WORKSPACE = "CLIPPED_TO_WORKSPACE"
    # information only
    NO_JOINT_STATE = "NO_JOINT_STATE"

    @property
    def severity(self) -> str:
        if self in _ADJUST_CODES:
            return "adjust"
        if self in _INFO_CODES:
            return "info"
        return "reject"


_ADJUST_CODES = frozenset(
    {SafetyCode.SPEED_LIMITED, SafetyCode.ACCEL_LIMITED, SafetyCode.SINGULARITY_SLOWED, SafetyCode.CLIPPED_TO_WORKSPACE}
)
_INFO_CODES = frozenset({SafetyCode.NO_JOINT_STATE})


def reason(
    code: SafetyCode, message: str, waypoint: int | None = None, value: float | None = None,
    limit: float | None = None,
) -> SafetyReason:
    return SafetyReason(
        code.value, message, None if waypoint is None else int(waypoint),
        None if value is None else float(value), None if limit is None else float(limit),
    )


def verdict_of(reasons: Sequence[SafetyReason]) -> Verdict:
    """REJECT if any reason rejects, ADJUSTED if any adjusts, else ACCEPT (info reasons are neutral)."""
    severities = {SafetyCode(r.code).severity for r in reasons}
    if "reject" in severities:
        return Verdict.REJECT
    if "adjust" in severities:
        return Verdict.ADJUSTED
    return Verdict.ACCEPT


def _ordered_report(reasons: Sequence[SafetyReason]) -> SafetyReport:
    """Refusals first, then adjustments, then information."""
    rank = {"reject": 0, "adjust": 1, "info": 2}
    ordered = sorted(reasons, key=lambda r: rank[SafetyCode(r.code).severity])
    return SafetyReport(verdict_of(ordered), tuple(ordered))


def _xyz(p: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in p) + ") m"


def _count(mask: np.ndarray, noun: str = "waypoint") -> str:
    n = int(np.count_nonzero(mask))
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _zone_label(zone: BoxZone | CylinderZone) -> str:
    return f"keep-out {zone.shape} {zone.name!r}"


@dataclass(frozen=True)
class TraceFacts:
    """What the filter needs to know about the data a path came from. ``None`` = not known."""

    n_points: int
    depth_valid_fraction: float | None = None
    max_point_step_m: float | None = None
    frame_age_s: float | None = None
    trace_age_s: float | None = None
    model_agreement: float | None = None
    n_samples: int = 1


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
    """Plan-time checks of a whole path; see the module docstring."""

    def __init__(self, config: SafetyConfig, model: RobotModel) -> None:
        self.config = config
        self.model = model
        self._pairs = model.self_collision_pairs()
        self._capsule_names = [c.link for c in model.capsules(np.clip(np.zeros(model.dof), model.lower_rad,
                                                                       model.upper_rad))]

    # -- inputs ---------------------------------------------------------------------------------------
    def check_inputs(self, facts: TraceFacts, max_trace_age_s: float | None = None) -> list[SafetyReason]:
        """Freshness and quality of the trace. ``max_trace_age_s`` may only tighten the configured limit."""
        cfg, out = self.config, []
        q = cfg.trace_quality
        if facts.n_points < q.min_points:
            out.append(reason(SafetyCode.TRACE_TOO_SHORT,
                              f"the trace has {facts.n_points} valid point(s), at least {q.min_points} are needed; "
                              "ask again with a clearer instruction or check the depth image",
                              value=facts.n_points, limit=q.min_points))
        if facts.depth_valid_fraction is not None and facts.depth_valid_fraction < q.min_depth_valid_fraction:
            out.append(reason(SafetyCode.DEPTH_INVALID,
                              f"only {facts.depth_valid_fraction:.0%} of the trace points have valid depth "
                              f"(need {q.min_depth_valid_fraction:.0%}); check the depth camera (range, reflections) "
                              "and ask again", value=facts.depth_valid_fraction, limit=q.min_depth_valid_fraction))
        if (facts.model_agreement is not None and facts.n_samples > 1
                and facts.model_agreement < q.min_model_agreement):
            out.append(reason(SafetyCode.MODEL_DISAGREEMENT,
                              f"the {facts.n_samples} model samples agree only {facts.model_agreement:.0%} "
                              f"(need {q.min_model_agreement:.0%}); the model is unsure: rephrase the instruction",
                              value=facts.model_agreement, limit=q.min_model_agreement))
        fr = cfg.freshness
        if facts.frame_age_s is not None and facts.frame_age_s > fr.max_frame_age_s:
            out.append(reason(SafetyCode.FRAME_TOO_OLD,
                              f"the camera frame is {facts.frame_age_s:.1f} s old (limit {fr.max_frame_age_s:.1f} s); "
                              "the scene may have changed: ask again", value=facts.frame_age_s,
                              limit=fr.max_frame_age_s))
        age_limit = fr.max_trace_age_s if max_trace_age_s is None else min(fr.max_trace_age_s, max_trace_age_s)
        if facts.trace_age_s is not None and facts.trace_age_s > age_limit:
            out.append(reason(SafetyCode.TRACE_TOO_OLD,
                              f"the trace is {facts.trace_age_s:.1f} s old (limit {age_limit:.1f} s); ask again",
                              value=facts.trace_age_s, limit=age_limit))
        step = cfg.motion.max_trace_step_m
        if facts.max_point_step_m is not None and facts.max_point_step_m > step:
            out.append(reason(SafetyCode.TRACE_JUMP,
                              f"two consecutive trace points are {facts.max_point_step_m:.3f} m apart (limit "
                              f"{step:.3f} m), likely a depth outlier; check the depth image and ask again",
                              value=facts.max_point_step_m, limit=step))
        return out

    # -- geometry -------------------------------------------------------------------------------------
    def clip_to_workspace(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poses with positions moved onto the workspace box, and the distance each moved."""
        lo, hi = self.config.workspace_min, self.config.workspace_max
        out = poses.copy()
        out[:, :3, 3] = np.clip(poses[:, :3, 3], lo, hi)
        return out, np.linalg.norm(out[:, :3, 3] - poses[:, :3, 3], axis=1)

    def check_waypoints(self, poses: np.ndarray, joints: np.ndarray) -> tuple[list[SafetyReason], np.ndarray]:
        """Every position- and configuration-dependent check; also the speed factor (N,) near singularities."""
        cfg, model = self.config, self.model
        out: list[SafetyReason] = []
        pos = poses[:, :3, 3]
        lo, hi = cfg.workspace_min, cfg.workspace_max
        off = volumes.outside_box_distance(pos, lo, hi)
        if np.any(off > 1e-9):
            i = int(np.argmax(off > 1e-9))
            out.append(reason(SafetyCode.OUTSIDE_WORKSPACE,
                              f"{_count(off > 1e-9)} leave the workspace box {_xyz(lo)}..{_xyz(hi)}, first #{i} at "
                              f"{_xyz(pos[i])}, up to {off.max():.3f} m outside; move the target inside or widen "
                              "workspace in safety.yaml", waypoint=i, value=off.max(), limit=0.0))
        for zone in cfg.keep_out_zones:
            inside = volumes.inside_zone(pos, zone)
            if np.any(inside):
                i = int(np.argmax(inside))
                out.append(reason(SafetyCode.KEEP_OUT_ZONE,
                                  f"{_count(inside)} enter the {_zone_label(zone)}, first #{i} at {_xyz(pos[i])}; "
                                  "choose a target away from it", waypoint=i))
        if cfg.table.enabled:
            floor = cfg.table.z_m + cfg.table.tcp_clearance_m
            low = pos[:, 2] < floor
            if np.any(low):
                i = int(np.argmax(low))
                out.append(reason(SafetyCode.BELOW_TABLE,
                                  f"{_count(low)} go below the table plane plus clearance (z = {floor:.3f} m), first "
                                  f"#{i} at z = {pos[i, 2]:.3f} m; check the depth and calibration or raise the target",
                                  waypoint=i, value=pos[i, 2], limit=floor))
        reachable = np.all(np.isfinite(joints), axis=1)
        if not np.all(reachable):
            i = int(np.argmin(reachable))
            out.append(reason(SafetyCode.UNREACHABLE,
                              f"{_count(~reachable)} cannot be reached by {model.name} without changing arm "
                              f"configuration, first #{i} at {_xyz(pos[i])}; move the target closer to the robot or "
                              "start from another configuration", waypoint=i))
        scale = np.ones(len(poses))
        if not np.any(reachable):
            return out, scale
        q = joints[reachable]
        idx = np.flatnonzero(reachable)
        out += self._joint_limit_reasons(q, idx)
        steps = np.abs(np.diff(joints, axis=0))
        with np.errstate(invalid="ignore"):
            big = steps > cfg.motion.max_joint_step_rad  # NaN (unreachable) rows compare False
        if np.any(big):
            k, j = np.argwhere(big)[0]
            out.append(reason(SafetyCode.JOINT_JUMP,
                              f"joint {model.joint_names[j]} would jump {steps[k, j]:.2f} rad between waypoints #{k} "
                              f"and #{k + 1} (limit {cfg.motion.max_joint_step_rad:.2f} rad): the arm changes "
                              "configuration or passes near a singularity; move the path away from it",
                              waypoint=k, value=steps[k, j], limit=cfg.motion.max_joint_step_rad))
        cart = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        if np.any(cart > cfg.motion.max_step_m):
            k = int(np.argmax(cart > cfg.motion.max_step_m))
            out.append(reason(SafetyCode.STEP_TOO_LARGE,
                              f"waypoints #{k} and #{k + 1} are {cart[k]:.3f} m apart (limit "
                              f"{cfg.motion.max_step_m:.3f} m); lower the planner's spacing_m",
                              waypoint=k, value=cart[k], limit=cfg.motion.max_step_m))
        # A cheap exact certificate that every waypoint is below the slow-down threshold: then neither
        # singularity check can fire and the eigenvalues are not needed.
        if not model.condition_numbers_below(q, cfg.singularity.slow_down_condition):
            out += self._singularity_reasons(q, idx, scale)
        if cfg.self_collision.enabled:
            gap, pair = volumes.self_collision_clearance(model, q)
            hit = gap < cfg.self_collision.margin_m
            if np.any(hit):
                k = int(np.argmax(hit))
                a, b = self._pairs[pair[k]]
                out.append(reason(SafetyCode.SELF_COLLISION,
                                  f"links {self._capsule_names[a]} and {self._capsule_names[b]} would come within "
                                  f"{max(gap[k], 0.0):.3f} m of each other at waypoint #{idx[k]} ({_count(hit)} "
                                  "affected); choose another path or start configuration",
                                  waypoint=int(idx[k]), value=gap[k], limit=cfg.self_collision.margin_m))
        if cfg.table.enabled and cfg.table.check_links:
            lowest = volumes.lowest_link_points(model, q)
            low = lowest < cfg.table.z_m
            if np.any(low):
                k = int(np.argmax(low))
                out.append(reason(SafetyCode.LINK_BELOW_TABLE,
                                  f"the arm would reach z = {lowest[k]:.3f} m, below the table plane "
                                  f"(z = {cfg.table.z_m:.3f} m), at waypoint #{idx[k]} ({_count(low)} affected); "
                                  "choose a higher target or another arm configuration",
                                  waypoint=int(idx[k]), value=lowest[k], limit=cfg.table.z_m))
        return out, scale

    def _singularity_reasons(self, q: np.ndarray, idx: np.ndarray, scale: np.ndarray) -> list[SafetyReason]:
        """Refusal at the stop condition number, slow-down (written into ``scale``) above the slow one."""
        out: list[SafetyReason] = []
        cond = self.model.condition_numbers(q)
        sc = self.config.singularity
        stop = cond >= sc.stop_condition
        if np.any(stop):
            i = int(idx[np.argmax(stop)])
            out.append(reason(SafetyCode.SINGULARITY,
                              f"{_count(stop)} are too close to a singularity (Jacobian condition number up to "
                              f"{np.max(cond):.1f}, limit {sc.stop_condition:.0f}), first #{i}; keep the path away "
                              "from full stretch, the base axis and wrist alignment",
                              waypoint=i, value=float(np.max(cond)), limit=sc.stop_condition))
        slow = (cond > sc.slow_down_condition) & ~stop
        if np.any(slow):
            frac = (cond[slow] - sc.slow_down_condition) / (sc.stop_condition - sc.slow_down_condition)
            factors = np.maximum(sc.min_speed_scale, 1.0 - frac)
            scale[idx[slow]] = factors
            out.append(reason(SafetyCode.SINGULARITY_SLOWED,
                              f"slowed to {factors.min():.0%} of the speed near a singularity at {_count(slow)} "
                              f"(condition number up to {cond[slow].max():.1f}, slowing from "
                              f"{sc.slow_down_condition:.0f})", waypoint=int(idx[np.argmax(slow)]),
                              value=float(factors.min()), limit=1.0))
        return out

    def _joint_limit_reasons(self, q: np.ndarray, idx: np.ndarray) -> list[SafetyReason]:
        model, margin = self.model, self.config.joint_limits.margin_rad
        low = q < model.lower_rad + margin
        high = q > model.upper_rad - margin
        bad = low | high
        if not np.any(bad):
            return []
        k, j = np.argwhere(bad)[0]
        limit = model.lower_rad[j] if low[k, j] else model.upper_rad[j]
        return [reason(SafetyCode.JOINT_LIMIT,
                       f"joint {model.joint_names[j]} would reach {q[k, j]:.2f} rad at waypoint #{idx[k]}, within "
                       f"{margin:.2f} rad of its limit {limit:.2f} rad ({_count(np.any(bad, axis=1))} affected); "
                       "unwind that joint before planning or choose another target",
                       waypoint=int(idx[k]), value=q[k, j], limit=limit)]

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
            return None, _ordered_report(reasons)
        ws = self.config.workspace
        if ws.clip_to_workspace:
            clipped, moved = self.clip_to_workspace(poses)
            if np.any(moved > 1e-9) and moved.max() <= ws.max_clip_m:
                reasons.append(reason(SafetyCode.CLIPPED_TO_WORKSPACE,
                                      f"{_count(moved > 1e-9)} were moved back inside the workspace box, by up to "
                                      f"{moved.max():.3f} m", waypoint=int(np.argmax(moved > 1e-9)),
                                      value=moved.max(), limit=ws.max_clip_m))
                poses = clipped
                joints = self.model.ik_path(poses, candidate.q_seed)
        keep = _distinct_poses(poses)
        poses, joints = poses[keep], joints[keep]
        if len(poses) < 2:
            reasons.append(reason(SafetyCode.TRACE_TOO_SHORT, "the path has no length; ask again"))
            return None, _ordered_report(reasons)
        geo, scale = self.check_waypoints(poses, joints)
        reasons += geo
        if verdict_of(reasons) is Verdict.REJECT:
            return None, _ordered_report(reasons)
        limits, adjusted = self.timing_limits(candidate.speed_mps, candidate.accel_mps2)
        reasons += adjusted
        times = time_parameterize(poses, joints, limits, np.minimum(scale[:-1], scale[1:]))
        plan = Plan(robot=self.model.name, frame_id=self.model.base_frame, joint_names=self.model.joint_names,
                    times_s=times, joints=joints, poses=poses, plan_id=candidate.plan_id, stamp_s=candidate.stamp_s)
        reasons += self.check_timing(plan)
        report = _ordered_report(reasons)
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
        return _ordered_report([r for r in reasons if SafetyCode(r.code).severity == "reject"])


def _distinct_poses(poses: np.ndarray) -> np.ndarray:
    """Mask keeping the first of each run of identical consecutive poses."""
    same = np.all(np.abs(np.diff(poses, axis=0)) < 1e-12, axis=(1, 2))
    return np.concatenate([[True], ~same])


class SetpointGuard:
    """Run-time check of each setpoint, with the same limits as the plan (speed limits get the
    configured tracking tolerance). Every method returns ``None`` when safe, else the reason."""

    def __init__(self, config: SafetyConfig, model: RobotModel) -> None:
        self.config = config
        self.model = model
        self._filter = SafetyFilter(config, model)
        self._speed_factor = 1.0 + config.runtime.speed_tolerance
        # the tool and what it holds at a flange pose (set by robots.task_runner from planning.tool_geometry)
        self.tool_check: Callable[[np.ndarray], SafetyReason | None] | None = None

    def _position_reason(self, p: np.ndarray, what: str) -> SafetyReason | None:
        cfg = self.config
        if volumes.outside_box_distance(p, cfg.workspace_min, cfg.workspace_max)[0] > 1e-9:
            return reason(SafetyCode.OUTSIDE_WORKSPACE, f"{what} {_xyz(p)} is outside the workspace box; stopping")
        for zone in cfg.keep_out_zones:
            if volumes.inside_zone(p, zone)[0]:
                return reason(SafetyCode.KEEP_OUT_ZONE, f"{what} {_xyz(p)} is inside the {_zone_label(zone)}; stopping")
        floor = cfg.table.z_m + cfg.table.tcp_clearance_m
        if cfg.table.enabled and p[2] < floor:
            return reason(SafetyCode.BELOW_TABLE, f"{what} {_xyz(p)} is below the table plane plus clearance "
                          f"(z = {floor:.3f} m); stopping", value=p[2], limit=floor)
        return None

    def _timing_reason(self, dt_s: float) -> SafetyReason | None:
        if not (np.isfinite(dt_s) and dt_s > 0):
            return reason(SafetyCode.BAD_TIMING, f"setpoint period {dt_s} s is not positive; stopping")
        return None

    def check_pose(self, prev_tcp: np.ndarray, target_tcp: np.ndarray, dt_s: float,
                   q_near: np.ndarray | None = None) -> SafetyReason | None:
        """A TCP pose target (base_T_tool) reached from ``prev_tcp`` in ``dt_s``. With ``q_near`` (the
        current joints) the joint solution is checked too (limits, steps, singularity, collision)."""
        prev, target = np.asarray(prev_tcp, float), np.asarray(target_tcp, float)
        if not (np.all(np.isfinite(prev)) and np.all(np.isfinite(target))):
            return reason(SafetyCode.NON_FINITE, "setpoint pose contains NaN or infinity; stopping")
        bad = self._timing_reason(dt_s) or self._position_reason(target[:3, 3], "target TCP")
        if bad is None and self.tool_check is not None:
            bad = self.tool_check(target)
        if bad:
            return bad
        m = self.config.motion
        step = float(np.linalg.norm(target[:3, 3] - prev[:3, 3]))
        if step > m.max_step_m:
            return reason(SafetyCode.STEP_TOO_LARGE, f"TCP step {step:.3f} m is above {m.max_step_m:.3f} m; stopping",
                          value=step, limit=m.max_step_m)
        if step / dt_s > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"TCP speed {step / dt_s:.3f} m/s is above "
                          f"{m.max_tcp_speed_mps:.3f} m/s; stopping", value=step / dt_s, limit=m.max_tcp_speed_mps)
        ang = float(rotation_angles(np.stack([prev, target]))[0]) / dt_s
        if ang > m.max_tool_angular_speed_radps * self._speed_factor:
            return reason(SafetyCode.TOOL_ANGULAR_SPEED, f"tool rotation {ang:.3f} rad/s is above "
                          f"{m.max_tool_angular_speed_radps:.3f} rad/s; stopping", value=ang,
                          limit=m.max_tool_angular_speed_radps)
        if q_near is None:
            return None
        q = self.model.ik(target, np.asarray(q_near, float))
        if q is None:
            return reason(SafetyCode.UNREACHABLE, f"target TCP {_xyz(target[:3, 3])} cannot be reached; stopping")
        return self.check_joints(q_near, q, dt_s)

    def check_joints(self, q_prev: np.ndarray, q: np.ndarray, dt_s: float) -> SafetyReason | None:
        """A joint target reached from ``q_prev`` in ``dt_s``: limits, speeds, steps and where the TCP goes."""
        q_prev, q = np.asarray(q_prev, float), np.asarray(q, float)
        if not (np.all(np.isfinite(q_prev)) and np.all(np.isfinite(q))):
            return reason(SafetyCode.NON_FINITE, "joint setpoint contains NaN or infinity; stopping")
        bad = self._timing_reason(dt_s)
        if bad:
            return bad
        m, model = self.config.motion, self.model
        step = np.abs(q - q_prev)
        j = int(np.argmax(step))
        if step[j] > m.max_joint_step_rad:
            return reason(SafetyCode.JOINT_JUMP, f"joint {model.joint_names[j]} step {step[j]:.3f} rad is above "
                          f"{m.max_joint_step_rad:.3f} rad; stopping", value=step[j], limit=m.max_joint_step_rad)
        qd_max = model.max_velocity_radps * m.joint_speed_fraction * self._speed_factor
        over = step / dt_s > qd_max
        if np.any(over):
            j = int(np.argmax(over))
            return reason(SafetyCode.JOINT_SPEED, f"joint {model.joint_names[j]} would move at "
                          f"{step[j] / dt_s:.3f} rad/s, above {qd_max[j]:.3f} rad/s; stopping",
                          value=step[j] / dt_s, limit=qd_max[j])
        poses = model.fk_many(np.stack([q_prev, q]))
        speed = float(np.linalg.norm(poses[1, :3, 3] - poses[0, :3, 3])) / dt_s
        if speed > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"TCP speed {speed:.3f} m/s is above {m.max_tcp_speed_mps:.3f} m/s; "
                          "stopping", value=speed, limit=m.max_tcp_speed_mps)
        found, _ = self._filter.check_waypoints(poses[1:], q[None, :])
        if self.tool_check is not None:
            found += [r for r in [self.tool_check(poses[1])] if r is not None]
        refusals = [r for r in found if SafetyCode(r.code).severity == "reject"]
        return refusals[0] if refusals else None

    def check_twist(self, tcp: np.ndarray, twist: np.ndarray) -> SafetyReason | None:
        """A TCP velocity command (vx, vy, vz, wx, wy, wz in the base frame) from pose ``tcp``: within the
        speed limits, and the TCP stays safe for the configured horizon if the command is held."""
        tcp, twist = np.asarray(tcp, float), np.asarray(twist, float)
        if twist.shape != (6,) or not (np.all(np.isfinite(tcp)) and np.all(np.isfinite(twist))):
            return reason(SafetyCode.NON_FINITE, "speed command must be 6 finite numbers; stopping")
        m = self.config.motion
        v, w = float(np.linalg.norm(twist[:3])), float(np.linalg.norm(twist[3:]))
        if v > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"commanded TCP speed {v:.3f} m/s is above "
                          f"{m.max_tcp_speed_mps:.3f} m/s; stopping", value=v, limit=m.max_tcp_speed_mps)
        if w > m.max_tool_angular_speed_radps * self._speed_factor:
            return reason(SafetyCode.TOOL_ANGULAR_SPEED, f"commanded tool rotation {w:.3f} rad/s is above "
                          f"{m.max_tool_angular_speed_radps:.3f} rad/s; stopping", value=w,
                          limit=m.max_tool_angular_speed_radps)
        ahead = tcp[:3, 3] + twist[:3] * self.config.runtime.twist_horizon_s
        return self._position_reason(ahead, "TCP heading to")
