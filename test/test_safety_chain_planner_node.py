"""The safety chain between trace_node and planner_node over ROS: planner_node in its own process, the
test publishing what trace_node would (a trace and its status). Validity and agreement reach the planner
whatever order the two messages arrive in (DEPTH_INVALID, MODEL_DISAGREEMENT), a trace without its status
is refused, the trace's age is measured from when it was made (TRACE_TOO_OLD), stamps from the future are
refused (CLOCK_SKEW), and an accepted plan carries its id, its frame's capture stamp and its expiry."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from test_planner_node import BASE_T_CAMERA, write_configs
from trajectory_msgs.msg import JointTrajectory

from helpers.trace_messages import TraceSender
from spatial_trace_ros.ros.conversions import stamp_to_seconds
from spatial_trace_ros.ros.plan_msgs import plan_id_of_msg
from spatial_trace_ros.ros.qos import LATCHED
from spatial_trace_ros.ros.safety_msgs import diagnostics_safety_values

pytestmark = pytest.mark.integration
GOOD = np.c_[np.full(16, -0.35), np.linspace(-0.25, 0.05, 16), np.full(16, 0.2)]
STATUS_TIMEOUT_S = 1.0


class PlannerUnderTest:
    """planner_node in its own process and the test's side of its topics."""

    def __init__(self, procs, ros_env, harness, tmp_path: Path) -> None:
        cal, safety = write_configs(tmp_path)
        self.h = harness
        self.plans = harness.collect(JointTrajectory, "/spatial_trace/plan", LATCHED)
        self.verdicts = harness.collect(DiagnosticArray, "/spatial_trace/safety", LATCHED)
        self.sender = TraceSender(harness, BASE_T_CAMERA)
        self.node = procs.start("planner_node", [
            sys.executable, "-m", "spatial_trace_ros.nodes.planner_node", "--ros-args",
            "-p", f"calibration_file:={cal}", "-p", f"safety_file:={safety}",
            "-p", f"trace_status_timeout_s:={STATUS_TIMEOUT_S}",
        ], env=ros_env)
        self.sender.wait_for_planner()

    def verdict_after(self, send: Callable[[], object]) -> dict[str, str]:
        """The planner's verdict on what ``send`` publishes."""
        n = len(self.verdicts)
        send()
        self.h.wait(lambda: len(self.verdicts) > n or not self.node.alive(), 30.0, "the planner's verdict")
        assert self.node.alive(), self.node.output()
        values = diagnostics_safety_values(self.verdicts[n])
        assert values is not None
        return values


def test_accepted_plan_carries_its_id_capture_stamp_and_expiry(procs, ros_env, harness, tmp_path: Path) -> None:
    planner = PlannerUnderTest(procs, ros_env, harness, tmp_path)
    captured: list[float] = []
    ok = planner.verdict_after(lambda: captured.append(planner.sender.send(GOOD)))
    assert ok["verdict"] == "ACCEPT", ok
    harness.wait(lambda: planner.plans and len(planner.plans[-1].points) > 0, 10.0, "the plan")
    msg = planner.plans[-1]
    # The plan's stamp is the frame's capture stamp; its id is the digest of the message (what the
    # controller computes); it expires plan_max_age_s (60 s) after the capture.
    assert stamp_to_seconds(msg.header.stamp) == pytest.approx(captured[0], abs=1e-6)
    assert ok["plan_id"] == plan_id_of_msg(msg) and len(ok["plan_id"]) == 16
    assert float(ok["expires_s"]) == pytest.approx(captured[0] + 60.0, abs=1e-3)


def test_validity_and_agreement_reach_the_planner_in_any_order(procs, ros_env, harness, tmp_path: Path) -> None:
    planner = PlannerUnderTest(procs, ros_env, harness, tmp_path)
    send = planner.sender.send
    # 16 valid points of 40 found is 40 % valid depth (need 70 %), though every point sent is valid.
    invalid = planner.verdict_after(lambda: send(GOOD, n_total=40))
    assert invalid["verdict"] == "REJECT" and "DEPTH_INVALID" in invalid["codes"].split(","), invalid
    assert "40%" in invalid["message"]
    for status_first in (False, True):
        unsure = planner.verdict_after(lambda f=status_first: send(GOOD, n_samples=5, agreement=0.2, status_first=f))
        assert unsure["verdict"] == "REJECT" and "MODEL_DISAGREEMENT" in unsure["codes"].split(","), unsure
    # A trace whose status never comes is refused, not planned unchecked.
    lost = planner.verdict_after(lambda: send(GOOD, with_status=False))
    assert lost["verdict"] == "REJECT" and "INVALID_INPUT" in lost["codes"], lost
    assert "no trace_status" in lost["message"] and "trace_status_timeout_s" in lost["message"]


def test_trace_age_and_clock_skew_from_the_capture_stamp(procs, ros_env, harness, tmp_path: Path) -> None:
    planner = PlannerUnderTest(procs, ros_env, harness, tmp_path)
    sender = planner.sender
    # The trace's age counts from when it was made (its pose stamps), not from when it arrived; its
    # frame (9 s) is within max_frame_age_s (15 s).
    now = sender.now_s()
    old = planner.verdict_after(lambda: sender.send(GOOD, stamp_s=now - 9.0, made_s=now - 8.0))
    codes = old["codes"].split(",")
    assert old["verdict"] == "REJECT" and "TRACE_TOO_OLD" in codes and "FRAME_TOO_OLD" not in codes, old
    # A trace whose poses carry no later stamp of their own is as old as its frame.
    replayed = planner.verdict_after(lambda: sender.send(GOOD, stamp_s=sender.now_s() - 6.0))
    assert "TRACE_TOO_OLD" in replayed["codes"].split(","), replayed
    # Stamps from the future are clock skew, not "fresh".
    skewed = planner.verdict_after(lambda: sender.send(GOOD, stamp_s=sender.now_s() + 5.0))
    assert skewed["verdict"] == "REJECT" and "CLOCK_SKEW" in skewed["codes"].split(","), skewed
    assert "in the future" in skewed["message"]
    made_later = planner.verdict_after(lambda: sender.send(GOOD, made_s=sender.now_s() + 5.0))
    assert "CLOCK_SKEW" in made_later["codes"].split(","), made_later
