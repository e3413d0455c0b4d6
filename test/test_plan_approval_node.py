"""What the operator approved is exactly what runs: controller_node in its own process against a fake UR,
operated over ROS. ~/execute runs only the held plan whose id was approved, and refuses a plan that
changed since, expired, is stamped in the future, or starts where the robot no longer is; a restarted
controller, handed the last plan again by the latched plan topic, does not run it until it is approved
again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.controller_operator import Operator
from helpers.plans import offset_plan
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur

pytestmark = pytest.mark.integration
MODEL = make_robot_model("ur5")


def start_controller(procs, ros_env, tmp_path: Path, fake: FakeUrClient, name: str = "controller_node"):
    values = {"robot": "ur5", "robot_ip": fake.host, "driver_options_json": json.dumps({"watchdog_min_hz": 5.0})}
    params_file = tmp_path / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": values}}))
    return procs.start_python(name, "spatial_trace_ros.nodes.controller_node",
                              ["--ros-args", "--params-file", str(params_file)], env=ros_env)


def plan_from(fake: FakeUrClient, dx_m: float = 0.06, stamp_s: float | None = None):
    return offset_plan(MODEL, np.array(fake.state()["q"]), [(dx_m, 0.0, 0.0)], 2.0, trapezoid=True, stamp_s=stamp_s)


def hold(op: Operator, plan) -> None:
    op.send_plan(plan)
    op.wait_status(lambda s: s["state"] == "waiting_for_execute" and s.get("plan_id") == plan.plan_id,
                   f"plan {plan.plan_id} to be held")


def test_execute_runs_only_the_approved_unexpired_plan_from_where_the_robot_is(
        procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    start_controller(procs, ros_env, tmp_path, fake)
    op.wait_connected()

    # Not approved: nothing runs.
    first = plan_from(fake)
    hold(op, first)
    refused = op.call("execute")
    assert not refused.success and "has not been approved" in refused.message, refused.message

    # Approved, then replaced by another plan: the approval does not carry over, and the old id is refused.
    assert op.approve(first.plan_id)["approved_plan_id"] == first.plan_id
    second = plan_from(fake, dx_m=0.07)
    hold(op, second)
    refused = op.call("execute")
    assert not refused.success and "has not been approved" in refused.message, refused.message
    status = op.approve(first.plan_id)
    assert status["approved_plan_id"] == "" and f"holds plan {second.plan_id}, not {first.plan_id}" in status["reason"]

    # Expired (its frame captured 100 s ago) and from the future (clock skew): approved, still refused.
    expired = plan_from(fake, stamp_s=time.time() - 100.0)
    hold(op, expired)
    refused = op.approve_and_execute(expired)
    assert not refused.success and "expired" in refused.message and "plan_max_age_s" in refused.message
    future = plan_from(fake, stamp_s=time.time() + 10.0)
    hold(op, future)
    refused = op.approve_and_execute(future)
    assert not refused.success and "clock skew" in refused.message, refused.message

    # The robot moved since planning.
    moved = plan_from(fake)
    hold(op, moved)
    q = np.array(fake.state()["q"])
    fake.set_joints(q + np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0]))
    op.h.wait(lambda: op.joint_states and abs(op.joint_states[-1].position[0] - (q[0] + 0.2)) < 1e-3, 10.0,
              "the moved arm on /joint_states")
    refused = op.approve_and_execute(moved)
    assert not refused.success and "moved since planning" in refused.message, refused.message
    assert fake.commands()["motion_packages"] == 0  # none of these moved the arm

    # The approved, fresh plan from where the robot is runs.
    good = plan_from(fake)
    hold(op, good)
    started = op.approve_and_execute(good)
    assert started.success and good.plan_id in started.message, started.message
    final = op.wait_status(lambda s: s["state"] in ("succeeded", "aborted", "stopped"), "the run to end")
    assert final["state"] == "succeeded" and final["plan_id"] == good.plan_id, final


def test_a_restarted_controller_does_not_run_the_latched_plan_without_a_new_approval(
        procs, ros_env, harness, tmp_path: Path) -> None:
    fake = start_fake_ur(procs, "ur5")
    op = Operator(harness)
    node = start_controller(procs, ros_env, tmp_path, fake)
    op.wait_connected()
    plan = plan_from(fake)
    hold(op, plan)
    assert op.approve(plan.plan_id)["approved_plan_id"] == plan.plan_id
    node.stop()

    n, n_states = len(op.statuses), len(op.joint_states)
    start_controller(procs, ros_env, tmp_path, fake, name="controller_node_again")
    op.wait_status(lambda s: len(op.statuses) > n and s["state"] == "waiting_for_execute"
                   and s.get("plan_id") == plan.plan_id, "the restarted node to hold the latched plan", 60.0)
    op.h.wait(lambda: len(op.joint_states) > n_states + 10, 60.0, "the restarted node connected to the robot")
    refused = op.call("execute")
    assert not refused.success and "has not been approved" in refused.message, refused.message
    assert fake.commands()["motion_packages"] == 0
    started = op.approve_and_execute(plan)  # approved after the restart: it may run
    assert started.success, started.message
