"""Small plans for controller tests, built with the robot model the controller uses."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.planning.plan_identity import identify
from spatial_trace_ros.planning.timing import TimingLimits, time_parameterize
from spatial_trace_ros.robots.model import RobotModel

# Home pose of the fake UR controller (``spatial_trace_ros.testing.fake_ur``).
HOME_Q = np.array([0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0])


def offset_plan(model: RobotModel, q0: np.ndarray, offsets_m: list[tuple[float, float, float]], duration_s: float,
                spacing_m: float = 0.005, stamp_s: float | None = None, trapezoid: bool = False) -> Plan:
    """A plan from the TCP at ``q0`` through the given offsets (base frame, metres), orientation
    fixed, waypoints every ``spacing_m``, at constant speed over ``duration_s`` — or, with ``trapezoid``,
    timed like the planner does (within the default safety limits, cruising at the speed that covers the
    path in about ``duration_s``), which the controller node's own plan check requires. ``stamp_s`` is the
    capture stamp of the plan's frame (default: now, so the controller's expiry check passes); the plan
    carries the id it will have on the wire."""
    start = model.fk(q0)
    corners = np.vstack([start[:3, 3], start[:3, 3] + np.asarray(offsets_m, float)])
    seg = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / spacing_m)) + 1))
    points = np.stack([np.interp(s, arc, corners[:, k]) for k in range(3)], axis=1)
    poses = np.repeat(start[None], len(points), axis=0)
    poses[:, :3, 3] = points
    joints = model.ik_path(poses, q0)
    if not np.all(np.isfinite(joints)):
        raise ValueError("test plan leaves the reachable space")
    if trapezoid:
        limits = TimingLimits(min(arc[-1] / duration_s, 0.25), 0.5, 1.0, model.max_velocity_radps * 0.5)
        times_s = time_parameterize(poses, joints, limits)
    else:
        times_s = s / arc[-1] * duration_s
    plan = Plan(robot=model.name, frame_id=model.base_frame, joint_names=model.joint_names,
                times_s=times_s, joints=joints, poses=poses, stamp_s=time.time() if stamp_s is None else stamp_s)
    return replace(plan, plan_id=identify(plan))
