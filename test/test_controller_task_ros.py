"""A pick-and-place task run by controller_node in its own process, with the simulated arm and gripper
(driver sim, tool default), operated over ROS as an operator would: the gripper's state on
/joint_states and /spatial_trace/gripper_status while the worker owns it, ~/stop mid-task keeps the
object held, ~/resume finishes the task, ~/abort forgets a stopped one (the gripper keeps what it holds),
and the manual gripper commands are refused while the arm executes or a stopped task owns the gripper."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from helpers.controller_operator import Operator
from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.ros.plan_msgs import plan_id_of_msg, plan_to_joint_trajectory
from spatial_trace_ros.ros.qos import STATE
from spatial_trace_ros.sim.task_eval import SimTaskExecutor
from spatial_trace_ros.sim.tasks import plan_task
from spatial_trace_ros.testing.processes import wait_for

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[1] / "config"
INTO_BOWL = "move the yellow cylinder into the blue bowl"  # scene seed 0 has both
PICK_UP = "pick up the red cylinder"
FINGER = "gripper_finger_joint"
MODEL = make_robot_model("ur5e")


def start_controller(procs, ros_env, tmp_path: Path):
    values = yaml.safe_load((CONFIG / "sim_ur5e.yaml").read_text())["controller_node"]["ros__parameters"]
    values["estop_latch_file"] = str(tmp_path / "estop.json")
    params = tmp_path / "controller.yaml"
    params.write_text(yaml.safe_dump({"controller_node": {"ros__parameters": values}}))
    return procs.start_python("controller_node", "spatial_trace_ros.nodes.controller_node",
                              ["--ros-args", "--params-file", str(params)], env=ros_env)


def task_plan(cell: SimTaskExecutor, instruction: str, q_now: np.ndarray) -> Plan:
    """The instruction's oracle trace planned as a task from where the arm stands, stamped now, with the
    id the controller computes from the message."""
    truth = plan_task(instruction, cell.scene, cell.base_T_camera)
    plan = cell.tasks.plan(truth.points_m, "pick_up" if "pick up" in instruction else "place", q_now, q_now,
                           stamp_s=time.time()).plan
    assert plan is not None
    return replace(plan, plan_id=plan_id_of_msg(plan_to_joint_trajectory(plan)))


def gripper_values(statuses: list[DiagnosticArray]) -> dict[str, str]:
    return {v.key: v.value for v in statuses[-1].status[0].values} if statuses else {}


def arm_joints(op: Operator) -> np.ndarray:
    msg = op.joint_states[-1]
    return np.array([msg.position[list(msg.name).index(n)] for n in MODEL.joint_names])


def test_task_stop_resume_abort_and_the_gripper_over_ros(procs, ros_env, harness, tmp_path: Path) -> None:
    op = Operator(harness)
    gripper = harness.collect(DiagnosticArray, "/spatial_trace/gripper_status", STATE)
    node = start_controller(procs, ros_env, tmp_path)
    cell = SimTaskExecutor("ur5e", seed=0)  # the same cell, for planning
    op.wait_connected(120.0)
    wait_for(lambda: gripper_values(gripper).get("activated") == "true", 30.0, "the gripper's state",
             on_timeout=node.output)
    assert gripper[-1].status[0].message.endswith("nothing held"), gripper[-1].status[0].message
    harness.wait(lambda: FINGER in op.joint_states[-1].name, 10.0, "the finger joint on /joint_states")
    msg = op.joint_states[-1]  # the arm's joints and the finger's opening in one message
    assert list(msg.name) == [*MODEL.joint_names, FINGER]
    assert msg.position[-1] == pytest.approx(float(gripper_values(gripper)["width_m"]), abs=1e-3)

    # Place: stopped once the object is held, the gripper keeps it; resume finishes the task.
    plan = task_plan(cell, INTO_BOWL, arm_joints(op))
    op.send_plan(plan)
    started = op.approve_and_execute(plan)
    assert started.success, started.message
    refused = op.call("gripper_open")
    assert not refused.success and "executing" in refused.message, refused.message
    harness.wait(lambda: gripper_values(gripper).get("object_detected") == "true", 120.0, "the grasp")
    stopped = op.call("stop")
    assert stopped.success, stopped.message
    status = op.wait_status(lambda s: s["state"] == "stopped", "the task to stop")
    assert status["task"]["holding"] and status["task"]["resumable"], status
    refused = op.call("gripper_open")
    assert not refused.success and "a stopped task owns the gripper" in refused.message, refused.message
    held_width = float(gripper_values(gripper)["width_m"])
    assert 0.01 < held_width < 0.08 and gripper_values(gripper)["object_detected"] == "true"
    resumed = op.call("resume")
    assert resumed.success, resumed.message
    # the status of the stop is still the last one until the resume's own arrives (in order, reliable)
    op.wait_status(lambda s: s["state"] != "stopped", "the task to resume")
    status = op.wait_status(lambda s: s["state"] in ("succeeded", "aborted", "stopped"), "the resumed task", 180.0)
    assert status["state"] == "succeeded", status
    assert [a["action"] for a in status["task"]["actions"]] == ["open", "grasp", "release"]
    assert all(a["ok"] for a in status["task"]["actions"]) and not status["task"]["holding"]
    objects = status["task"]["sim_objects_m"]
    assert np.linalg.norm(np.subtract(objects["yellow cylinder"][:2], objects["blue bowl"][:2])) < 0.05, objects
    assert not op.call("resume").success  # nothing left to resume

    # Pick up: stopped holding the object, aborted: the task is forgotten, the gripper keeps the object.
    plan = task_plan(cell, PICK_UP, arm_joints(op))
    op.send_plan(plan)
    assert op.approve_and_execute(plan).success
    harness.wait(lambda: gripper_values(gripper).get("object_detected") == "true", 120.0, "the second grasp")
    assert op.call("stop").success
    op.wait_status(lambda s: s["state"] == "stopped", "the pick-up to stop")
    aborted = op.call("abort")
    assert aborted.success and "keeps what it holds" in aborted.message, aborted.message
    assert op.wait_status(lambda s: s["state"] == "aborted", "the abort")["reason"].startswith("task aborted")
    refused = op.call("resume")
    assert not refused.success and "no stopped task" in refused.message, refused.message
    time.sleep(0.5)  # a dropped object would fall in this time; the weld holds it only between the fingers
    assert gripper_values(gripper)["object_detected"] == "true", gripper[-1].status[0].message

    # The operator puts it down by hand: the manual open goes through the worker and says what it did.
    opened = op.call("gripper_open")
    assert opened.success and opened.message.startswith("opened: at 8"), opened.message
    assert opened.message.endswith("nothing held"), opened.message
    harness.wait(lambda: gripper_values(gripper).get("last_command") == "open"
                 and gripper_values(gripper).get("object_detected") == "false", 10.0, "the open in the status")
