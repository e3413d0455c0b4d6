"""``robots.plan_approval`` as plain Python: which approvals are taken, and every reason a held plan may
not start (not approved, changed, expired, skewed, robot moved, no robot state, auto-execute of a plan
from before the start)."""

from __future__ import annotations

import numpy as np

from helpers.plans import HOME_Q, offset_plan
from spatial_trace_ros.planning.plan_identity import PlanFreshness
from spatial_trace_ros.robots.driver import RobotState
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.plan_approval import PlanApproval, StartLimits

MODEL = make_robot_model("ur5")
NOW = 1_796_000_000.0
FRESH = PlanFreshness(plan_max_age_s=60.0, max_clock_skew_s=0.5)
START = StartLimits(start_tolerance_rad=0.05, start_tolerance_m=0.01)


def plan(stamp_s: float = NOW - 5.0, dx_m: float = 0.05):
    return offset_plan(MODEL, HOME_Q, [(dx_m, 0.0, 0.0)], 2.0, stamp_s=stamp_s)


def robot_at(q: np.ndarray) -> RobotState:
    return RobotState(stamp_s=NOW, q=np.asarray(q, float), tcp=MODEL.fk(q))


def test_only_the_held_plan_can_be_approved() -> None:
    gate, held = PlanApproval(started_s=NOW - 100.0), plan()
    assert "no plan is held" in gate.approve(None, held.plan_id)
    assert "names no plan id" in gate.approve(held, "  ")
    assert f"holds plan {held.plan_id}, not abc" in gate.approve(held, "abc")
    assert gate.approved_id == ""
    assert gate.approve(held, held.plan_id) is None and gate.approved_id == held.plan_id


def test_every_reason_a_plan_may_not_start() -> None:
    gate, held = PlanApproval(started_s=NOW - 100.0), plan()
    here = robot_at(held.joints[0])
    assert "has not been approved" in gate.refusal(held, NOW, FRESH, START, here)
    gate.approve(held, held.plan_id)
    assert gate.refusal(held, NOW, FRESH, START, here) is None
    other = plan(dx_m=0.06)
    assert "changed since it was approved" in gate.refusal(other, NOW, FRESH, START, here)
    assert "expired" in gate.refusal(held, NOW + 60.0, FRESH, START, here)
    assert "clock skew" in gate.refusal(held, NOW - 10.0, FRESH, START, here)
    assert "no current robot state" in gate.refusal(held, NOW, FRESH, START, None)
    nudged = held.joints[0] + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.1])
    assert "moved since planning" in gate.refusal(held, NOW, FRESH, START, robot_at(nudged))
    # Joints within a loose tolerance, the TCP 2 cm off: the TCP check catches it.
    loose = StartLimits(start_tolerance_rad=0.5, start_tolerance_m=0.01)
    shoulder = held.joints[0] + np.array([0.0, 0.05, 0.0, 0.0, 0.0, 0.0])
    assert "the TCP is" in gate.refusal(held, NOW, FRESH, loose, robot_at(shoulder))
    gate.clear()
    assert "has not been approved" in gate.refusal(held, NOW, FRESH, START, here)


def test_auto_execute_runs_only_plans_captured_after_the_start() -> None:
    gate = PlanApproval(started_s=NOW - 1.0)
    before, after = plan(stamp_s=NOW - 2.0), plan(stamp_s=NOW - 0.5)
    assert "before this controller started" in gate.refusal(before, NOW, FRESH, START, robot_at(before.joints[0]),
                                                             auto=True)
    assert gate.refusal(after, NOW, FRESH, START, robot_at(after.joints[0]), auto=True) is None
