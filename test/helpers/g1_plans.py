"""Plans for the G1 left arm made by the real planner, as planner_node would make them: the head
camera's calibration (config/calibration.g1_head.yaml) and the G1 safety limits (config/safety.g1.yaml)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from spatial_trace_ros.geometry.calibration import load_calibration
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.safety_config import load_safety_config
from spatial_trace_ros.robots.g1.kinematics import head_camera_extrinsic
from spatial_trace_ros.robots.g1.motors import LEFT_ARM_JOINTS
from spatial_trace_ros.robots.model import make_robot_model

REPO = Path(__file__).resolve().parents[2]
MODEL = make_robot_model("g1_left_arm")
# The fake G1's own pose of the left arm: forearm forward, hand in front of the body.
READY = dict(zip(LEFT_ARM_JOINTS, (-0.6, 0.3, 0.0, -0.3, 0.0, 0.0, 0.0)))
READY_Q = np.array(list(READY.values()))


def planner() -> Planner:
    return Planner(
        MODEL, load_calibration(REPO / "config" / "calibration.g1_head.yaml"),
        PlannerConfig(orientation_policy="keep_current", approach_offset_m=0.0, retreat_offset_m=0.0),
        load_safety_config(REPO / "config" / "safety.g1.yaml"),
    )


def trace_from_base(points_base: np.ndarray) -> Trace:
    """What the head camera would have seen: the points in its optical frame."""
    cam = head_camera_extrinsic()
    return Trace(cam.inverse().apply(points_base), cam.child, stamp_s=time.time())


def arc_plan(q_now: np.ndarray) -> Plan:
    """A 10 cm arc in front of the hand, planned by the real planner from ``q_now``."""
    start = MODEL.fk(q_now)[:3, 3]
    s = np.linspace(0.0, 1.0, 12)
    points = start + np.stack([0.05 * s, 0.08 * s, 0.04 * np.sin(np.pi * s)], axis=1)
    plan, report = planner().plan(trace_from_base(points), q_now, now_s=time.time())
    assert plan is not None, report.summary()
    return plan


def distance_to_polyline(point: np.ndarray, path: np.ndarray) -> float:
    """Distance from ``point`` to the polyline through ``path``'s rows (any dimension: positions or
    joints; a late sample leaves a longer segment, not a hole)."""
    point, path = np.asarray(point, float), np.asarray(path, float)
    if len(path) == 1:
        return float(np.linalg.norm(path[0] - point))
    a, b = path[:-1], path[1:]
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", point - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - point, axis=1)))
