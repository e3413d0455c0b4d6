"""controller_node driving a Unitree G1 left arm, end to end: the fake G1 in its own process on loopback
Cyclone DDS, controller_node in its own process (``robot:=g1_left_arm`` from config/g1_left_arm.yaml, its
real-time worker running the g1_arm_sdk driver), operated over ROS like the UR: plan topic, approval, ~/execute,
e-stop. Plans come from the real planner with the G1 model, as planner_node makes them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("cyclonedds", reason="the G1 DDS layer is the optional [g1] extra")

from test_robot_state_node import chain, edges

from helpers.controller_operator import Operator
from helpers.g1_plans import MODEL, READY, READY_Q, REPO, arc_plan, distance_to_polyline
from spatial_trace_ros.nodes.robot_state_node import TF_QOS, TF_STATIC_QOS
from spatial_trace_ros.robots.description import build_description
from spatial_trace_ros.robots.description.state import link_poses
from spatial_trace_ros.robots.g1.config import load_g1_config
from spatial_trace_ros.robots.g1.motors import ARM_SDK_JOINTS, LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS
from spatial_trace_ros.ros.tf import TF_MISSING_HINT, TFMessage
from spatial_trace_ros.testing.fake_g1 import FakeG1Process
from spatial_trace_ros.testing.processes import ProcessGroup

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ARM = [2 + ARM_SDK_JOINTS.index(n) for n in LEFT_ARM_JOINTS]  # left-arm columns of the fake's command log
G1_CONFIG = load_g1_config(REPO / "config" / "g1.yaml")
# A gentler hand-over than config/g1.yaml's 2 s: every take-over before a run then keeps the worker
# silent for longer than the controller's 3 s liveness limit, which the driver's prepare time allows.
WEIGHT_RAMP_S = 3.5
WEIGHT_STEP = 1.0 / (G1_CONFIG.rate_hz * WEIGHT_RAMP_S)  # the driver's most per command
JOINT_TOLERANCE_RAD = 0.01


def start_controller(procs: ProcessGroup, ros_env: dict[str, str], tmp_path: Path, domain_id: int) -> None:
    """controller_node as on a robot (config/g1_left_arm.yaml, the G1 safety file), pointed at the fake:
    loopback DDS in the fake's domain. rt/lowstate may be late by more than the robot's 0.1 s here
    (two shared cores), so the silence limit is 0.5 s."""
    options = {"config_path": str(REPO / "config" / "g1.yaml"), "network_interface": "lo",
               "dds_domain_id": domain_id, "lowstate_timeout_s": 0.5, "weight_ramp_s": WEIGHT_RAMP_S}
    # The G1 safety file, with staleness after 10 periods (0.2 s) instead of 3: the same allowance.
    safety = yaml.safe_load((REPO / "config" / "safety.g1.yaml").read_text())
    safety["runtime"]["max_stale_periods"] = 10
    safety_file = tmp_path / "safety.g1.yaml"
    safety_file.write_text(yaml.safe_dump(safety))
    overrides = tmp_path / "g1_overrides.yaml"
    overrides.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": {
        "driver_options_json": json.dumps(options),
        "safety_file": str(safety_file),
    }}}))
    procs.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                       ["--ros-args", "--params-file", str(REPO / "config" / "g1_left_arm.yaml"),
                        "--params-file", str(overrides)], env=ros_env)


def joints_now(op: Operator) -> np.ndarray:
    """The arm's joints from the newest /joint_states (the left arm first, then the waist and right arm)."""
    msg = op.joint_states[-1]
    assert list(msg.name[:7]) == list(LEFT_ARM_JOINTS)
    return np.array(msg.position[:7])


def wait_at_rest(op: Operator, q: np.ndarray) -> np.ndarray:
    """Wait until /joint_states shows the arm at ``q`` (the robot's own pose after a release)."""
    op.h.wait(lambda: op.joint_states and np.abs(joints_now(op) - q).max() < 2e-3, 10.0,
              f"the arm back at its own pose {q}")
    return joints_now(op)


def execute(op: Operator, fake: FakeG1Process, q_now: np.ndarray) -> tuple:
    """Plan from ``q_now``, publish it, wait until it is held, approve it and call ~/execute."""
    plan = arc_plan(q_now)
    op.send_plan(plan)
    op.wait_status(lambda s: s["state"] == "waiting_for_execute" and s["plan_stamp_s"] == pytest.approx(plan.stamp_s),
                   "the plan to be held")
    logged_before = len(fake.commands())
    started = op.approve_and_execute(plan)
    assert started.success, started.message
    return plan, logged_before


def test_g1_left_arm_executes_stops_and_executes_again(procs: ProcessGroup, ros_env: dict[str, str], harness,
                                                       tmp_path: Path) -> None:
    domain_id = random.SystemRandom().randint(100, 229)  # the G1's own DDS domain (ROS tests use 10-99)
    fake = FakeG1Process(procs, tmp_path, domain_id, q0=READY)
    op = Operator(harness)
    start_controller(procs, ros_env, tmp_path, domain_id)
    op.wait_connected()
    q0 = wait_at_rest(op, READY_Q)  # /joint_states: the 7 left-arm joints first, in the model's order
    assert fake.status()["weight"] == 0.0 and fake.status()["commands"] == 0  # connected, the arm not taken

    # 1. a planned arc, executed with servo_stream: the robot is commanded along the plan's joints.
    plan, first_row = execute(op, fake, q0)
    final = op.wait_status(lambda s: s["state"] in ("succeeded", "aborted", "stopped"), "the run to end")
    assert final["state"] == "succeeded", final["reason"]
    assert final["policy"] == "servo_stream" and final["progress"] == 1.0
    assert final["tracking_error_m"] < 0.005
    rows = fake.commands()[first_row:]
    run = rows[rows[:, 1] == 1.0][:, ARM]  # at full weight: the plan streamed, then the end held
    for i, waypoint in enumerate(plan.joints):
        gap = distance_to_polyline(waypoint, run)
        assert gap < JOINT_TOLERANCE_RAD, f"plan waypoint #{i} missed by {gap:.4f} rad"
    off_path = max(distance_to_polyline(q, plan.joints) for q in run)
    assert off_path < JOINT_TOLERANCE_RAD, f"a command left the planned joint path by {off_path:.4f} rad"
    end_gap = np.linalg.norm(MODEL.fk(run[-1])[:3, 3] - plan.positions[-1])
    assert end_gap < 0.002, f"the last command ends {end_gap * 1000:.1f} mm from the plan's end"

    # The end of the run hands the arm back (weight to 0); it glides to the robot's own pose.
    op.h.wait(lambda: fake.status()["weight"] == 0.0, 10.0, "the release after the run")
    q1 = wait_at_rest(op, READY_Q)

    # 2. the next plan takes the arm over again (prepare_motion, longer than the liveness limit), and an
    # e-stop stops it mid-path.
    plan, run2_row = execute(op, fake, q1)
    status = op.wait_status(lambda s: s["state"] not in ("waiting_for_execute", "executing") or s["progress"] > 0.3,
                            "a third of the plan")
    assert status["state"] == "executing", status
    op.estop(True)
    final = op.wait_status(lambda s: s["state"] != "executing", "the e-stop to end the run", 10.0)
    assert final["state"] == "stopped" and "e-stop" in final["reason"], final
    stopped_short = plan.positions[-1]
    refused = op.call("execute")
    assert not refused.success and "e-stop is engaged" in refused.message
    assert op.set_param("estop_reset_note", "test operator: arm clear").successful
    assert op.call("reset_estop").success
    op.wait_status(lambda s: "released" in s["reason"], "the e-stop release")

    # 3. released, a new plan from the robot's own pose that the hand-back glides to. While the arm is
    # still on its way there ~/execute refuses the plan (the robot is not where it starts); once it has
    # arrived, the run takes the arm over again and runs to the end.
    early = arc_plan(READY_Q)
    op.send_plan(early)
    op.wait_status(lambda s: s.get("plan_id") == early.plan_id, "the plan to be held")
    if np.abs(joints_now(op) - READY_Q).max() > 0.05:
        refused = op.approve_and_execute(early)
        assert not refused.success and "moved since planning" in refused.message, refused.message
    wait_at_rest(op, READY_Q)
    plan, run3_row = execute(op, fake, READY_Q)
    final = op.wait_status(lambda s: s["state"] in ("succeeded", "aborted", "stopped"), "the third run to end")
    assert final["state"] == "succeeded", final["reason"]
    run = fake.commands()[run3_row:]
    run = run[run[:, 1] == 1.0][:, ARM]
    assert max(distance_to_polyline(q, run) for q in plan.joints) < JOINT_TOLERANCE_RAD

    # The e-stop's hand-back, as the fake saw it: one pose held mid-path while the weight went to 0.
    rows = fake.commands()[run2_row:]
    weights = rows[:, 1]
    assert weights[0] <= WEIGHT_STEP + 1e-6  # run 2 took over from weight 0, not in one go
    engaged = int(np.flatnonzero(weights == 1.0)[0])
    released = engaged + int(np.flatnonzero(weights[engaged:] == 0.0)[0])
    last_full = int(np.flatnonzero(weights[:released] == 1.0)[-1])
    ramp, held = weights[last_full:released + 1], rows[last_full:released + 1][:, ARM]
    assert np.all(np.diff(ramp) <= 1e-9)  # down only
    # Without a jump: one command lost in transit on a loaded machine doubles a step; letting go in
    # one go would be 1.0.
    assert -np.diff(ramp).min() <= 2 * WEIGHT_STEP + 1e-6
    assert np.abs(held - held[0]).max() < 1e-6
    assert np.abs(held[0] - q1).max() > 0.02  # ... where the e-stop caught it, mid-path
    assert np.linalg.norm(MODEL.fk(held[0])[:3, 3] - stopped_short) > 0.02
    assert fake.status()["bad_crc"] == 0


def test_g1_joint_states_carry_the_whole_upper_body_and_its_tf(procs: ProcessGroup, ros_env: dict[str, str],
                                                               harness, tmp_path: Path) -> None:
    """/joint_states has every measured arm_sdk joint (waist, both arms), so robot_state_node, in its own
    process, places the waist and the right arm too: the whole upper body moves in RViz."""
    if TFMessage is None:
        pytest.skip(TF_MISSING_HINT)
    domain_id = random.SystemRandom().randint(100, 229)
    pose = {**READY, "waist_yaw_joint": 0.25, "waist_roll_joint": -0.1, "waist_pitch_joint": 0.15,
            **dict(zip(RIGHT_ARM_JOINTS, (0.4, -0.3, 0.2, 0.5, -0.2, 0.1, 0.3)))}
    FakeG1Process(procs, tmp_path, domain_id, q0=pose, log_commands=False)
    op = Operator(harness)
    static = harness.collect(TFMessage, "/tf_static", TF_STATIC_QOS)
    moving = harness.collect(TFMessage, "/tf", TF_QOS)
    start_controller(procs, ros_env, tmp_path, domain_id)
    procs.start_python("robot_state_node", "spatial_trace_ros.nodes.robot_state_node",
                       ["--ros-args", "-p", "robot:=g1_left_arm"], env=ros_env)
    op.wait_connected()
    op.h.wait(lambda: op.joint_states and len(op.joint_states[-1].name) == len(ARM_SDK_JOINTS), 10.0,
              "/joint_states with every waist and arm joint")
    msg = op.joint_states[-1]
    assert list(msg.name[:7]) == list(LEFT_ARM_JOINTS), "the planner's 7 joints first, in the model's order"
    assert sorted(msg.name) == sorted(ARM_SDK_JOINTS)
    measured = dict(zip(msg.name, msg.position, strict=True))
    for name, q in pose.items():
        assert measured[name] == pytest.approx(q, abs=2e-3), name
    assert len(msg.velocity) == len(msg.name)

    # The right hand and the torso placed from the measured waist and right arm, as the URDF's FK has them.
    op.h.wait(lambda: static and {"waist_yaw_link", "right_elbow_link"} <= frames(moving), 30.0,
              "TF of the waist and the right arm")
    tree = edges(static + moving)
    expected = link_poses(build_description("g1_left_arm"), measured, "pelvis")
    for link in ("torso_link", "right_rubber_hand", "left_rubber_hand"):
        np.testing.assert_allclose(chain(tree, "pelvis", link), expected[link], atol=1e-5, err_msg=link)
    assert np.abs(expected["right_rubber_hand"] - link_poses(build_description("g1_left_arm"), READY, "pelvis")[
        "right_rubber_hand"]).max() > 0.05, "the right arm's pose must matter in this check"


def frames(messages: list) -> set[str]:
    return {t.child_frame_id for msg in messages for t in msg.transforms}
