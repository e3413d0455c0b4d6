"""Plan identity, expiry and freshness as plain Python: the id the planner computes is the id the
controller computes from the message; any change to the plan changes it; a plan carries its frame's
capture stamp and expiry; ages count from the capture stamp; stamps from the future are clock skew;
a trace and its status pair by exact stamp in either order."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_planner import DOWN_CAMERA, HOME, MODEL, camera_trace, line

from spatial_trace_ros.planning.freshness import clock_skew_reasons, input_ages
from spatial_trace_ros.planning.plan_identity import PlanFreshness, identify
from spatial_trace_ros.planning.planner import Planner, PlannerConfig
from spatial_trace_ros.planning.trace_pairing import TracePairing, TraceStageFacts
from spatial_trace_ros.ros.plan_msgs import joint_trajectory_to_plan, plan_id_of_msg, plan_to_joint_trajectory

NOW = 1_796_000_000.25  # a wall-clock stamp of the size real ones have


def make_plan(stamp_s: float = NOW - 1.0):
    trace = camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.05, 0.2]), stamp_s=stamp_s)
    plan, report = Planner(MODEL, DOWN_CAMERA, PlannerConfig(plan_max_age_s=30.0)).plan(trace, HOME, now_s=NOW)
    assert plan is not None, report.summary()
    return plan


def test_the_plan_id_survives_the_wire_and_any_change_changes_it() -> None:
    plan = make_plan()
    msg = plan_to_joint_trajectory(plan)
    assert len(plan.plan_id) == 16 and plan.plan_id == identify(plan) == plan_id_of_msg(msg)
    assert joint_trajectory_to_plan(msg, MODEL).plan_id == plan.plan_id  # what the controller computes
    nudged = plan.joints.copy()
    nudged[3, 2] += 1e-9
    assert identify(replace(plan, joints=nudged)) != plan.plan_id
    assert identify(replace(plan, times_s=plan.times_s * 1.001)) != plan.plan_id
    assert identify(replace(plan, stamp_s=plan.stamp_s + 1e-6)) != plan.plan_id
    msg.points[-1].positions[0] += 1e-6  # changed on the way
    assert plan_id_of_msg(msg) != plan.plan_id


def test_a_plan_carries_its_frames_capture_stamp_and_expiry() -> None:
    plan = make_plan(stamp_s=NOW - 2.0)
    assert plan.stamp_s == NOW - 2.0 and plan.expires_s == pytest.approx(NOW - 2.0 + 30.0)


def test_freshness_at_execution_counts_from_the_capture_stamp() -> None:
    fresh = PlanFreshness(plan_max_age_s=60.0, max_clock_skew_s=0.5)
    assert fresh.refusal(NOW - 10.0, NOW + 20.0, NOW) is None
    assert "expired" in fresh.refusal(NOW - 61.0, float("inf"), NOW)
    assert "expired" in fresh.refusal(NOW - 10.0, NOW - 1.0, NOW)  # the planner's expiry
    assert "clock skew" in fresh.refusal(NOW + 2.0, float("inf"), NOW)
    assert fresh.refusal(NOW + 0.4, float("inf"), NOW) is None
    assert "no capture stamp" in fresh.refusal(0.0, float("inf"), NOW)


def test_trace_age_counts_from_when_it_was_made_and_future_stamps_are_skew() -> None:
    ages = input_ages(NOW - 9.0, NOW - 8.0, NOW)
    assert (ages.frame_age_s, ages.trace_age_s) == (9.0, 8.0)
    assert input_ages(NOW - 9.0, None, NOW).trace_age_s == 9.0
    assert [r.code for r in clock_skew_reasons(NOW + 3.0, None, NOW, 0.5)] == ["CLOCK_SKEW"]
    assert [r.code for r in clock_skew_reasons(NOW - 1.0, NOW + 3.0, NOW, 0.5)] == ["CLOCK_SKEW"]
    assert [r.code for r in clock_skew_reasons(NOW - 1.0, NOW - 5.0, NOW, 0.5)] == ["CLOCK_SKEW"]  # made before capture
    assert clock_skew_reasons(NOW - 1.0, NOW - 0.5, NOW, 0.5) == []


def test_planner_refuses_old_traces_and_future_stamps() -> None:
    planner = Planner(MODEL, DOWN_CAMERA)
    trace = camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.05, 0.2]), stamp_s=NOW - 9.0)
    _, report = planner.plan(trace, HOME, now_s=NOW, trace_made_s=NOW - 8.0)
    assert [r.code for r in report.reasons] == ["TRACE_TOO_OLD"]
    future = camera_trace(line([-0.35, -0.25, 0.2], [-0.35, 0.05, 0.2]), stamp_s=NOW + 5.0)
    plan, report = planner.plan(future, HOME, now_s=NOW)
    assert plan is None and [r.code for r in report.reasons] == ["CLOCK_SKEW"]
    # The stage's valid fraction (before invalid points were dropped) decides DEPTH_INVALID.
    valid_only = replace(trace, stamp_s=NOW, metadata={"valid_fraction": 0.4})
    _, report = planner.plan(valid_only, HOME, now_s=NOW)
    assert [r.code for r in report.reasons] == ["DEPTH_INVALID"]


def facts(stamp_ns: int, agreement: float | None = None) -> TraceStageFacts:
    return TraceStageFacts(stamp_ns, 10, 9, 1 if agreement is None else 3, agreement)


def test_a_trace_and_its_status_pair_by_exact_stamp_in_either_order() -> None:
    pairing = TracePairing(timeout_s=1.0)
    assert pairing.add_trace(100, "trace A", now_s=0.0) is None
    assert pairing.add_status(facts(101)) is None  # another frame's status: 1 ns off is not a match
    assert pairing.add_status(facts(100, 0.8)) == ("trace A", facts(100, 0.8))
    assert pairing.add_trace(101, "trace B", now_s=0.0) == ("trace B", facts(101))  # status came first
    assert pairing.add_trace(102, "trace C", now_s=0.0) is None
    assert pairing.overdue(now_s=0.5) == [] and pairing.overdue(now_s=1.5) == ["trace C"]
    assert pairing.overdue(now_s=3.0) == []


def test_status_facts_need_the_exact_stamp_and_counts() -> None:
    ok = {"state": "ok", "frame_stamp_ns": 5, "n_points_total": 10, "n_points": 4, "n_samples": 3, "agreement": 0.7}
    got = TraceStageFacts.from_status(ok)
    assert got is not None and got.valid_fraction == 0.4 and got.metadata()["agreement"] == 0.7
    assert TraceStageFacts.from_status({**ok, "state": "refused"}) is None
    assert TraceStageFacts.from_status({k: v for k, v in ok.items() if k != "frame_stamp_ns"}) is None
