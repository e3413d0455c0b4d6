"""The tool description, task planning with tool actions and tool geometry, and pick-and-place by the
simulated gripper (physics, lockstep) judged from the simulated world."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.planning.task import check_task_plan, decode_actions, encode_actions, task_kind
from spatial_trace_ros.ros.plan_msgs import joint_trajectory_to_plan, plan_to_joint_trajectory
from spatial_trace_ros.sim.task_eval import SimTaskExecutor
from spatial_trace_ros.sim.tasks import plan_task
from spatial_trace_ros.tools.description import default_tool, tool_from_dict

INTO_BOWL = "move the yellow cylinder into the blue bowl"  # scene seed 0 has both


@pytest.fixture(scope="module")
def cell() -> SimTaskExecutor:
    return SimTaskExecutor("ur5e", seed=0)


def test_tool_description_validates_with_field_names() -> None:
    tool = default_tool("ur5e")
    assert tool.flange_T_tcp[2, 3] == pytest.approx(0.15)
    data = tool.model_dump()
    data["gripper"]["min_width_m"] = 0.2
    with pytest.raises(ConfigError, match="min_width_m"):
        tool_from_dict(data)
    with pytest.raises(ConfigError, match="ur5e"):
        tool.check_robot("g1_left_arm")


def test_task_kind_follows_the_instruction() -> None:
    assert task_kind("pick up the red cube") == "pick_up"
    assert task_kind("move the red cube into the blue bowl") == "place"
    assert task_kind("slide the red cube to the left of the green cube") == "push"


def test_task_plan_carries_actions_through_the_message(cell: SimTaskExecutor) -> None:
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    cell.reset()
    q = cell.world.joint_positions()
    plan = cell.tasks.plan(truth.points_m, "place", q, q).plan
    assert plan is not None
    assert [a.action for a in plan.tool_actions] == ["open", "grasp", "release"]
    # the arm is at rest at every action: the segments are timed rest to rest
    grasp = plan.tool_actions[1].waypoint
    speed = np.linalg.norm(np.diff(plan.positions, axis=0), axis=1) / np.diff(plan.times_s)
    assert speed[grasp - 1] < 0.05 and speed[grasp] < 0.05
    back = joint_trajectory_to_plan(plan_to_joint_trajectory(plan), cell.model, tool=cell.world.tool)
    assert back.tool_actions == plan.tool_actions and back.task == "place"
    assert check_task_plan(back, cell.tasks.geometry) == []
    width = encode_actions(plan.tool_actions, len(plan), plan.tool_actions[0].width_m)
    assert decode_actions(width, cell.world.tool) == plan.tool_actions
    with pytest.raises(ValueError, match="tool"):
        joint_trajectory_to_plan(plan_to_joint_trajectory(plan), cell.model)


def test_dragging_the_held_object_through_the_table_is_refused(cell: SimTaskExecutor) -> None:
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    points = truth.points_m.copy()
    points[len(points) // 2:, 2] -= 0.05  # the second half of the carry 5 cm lower: through the table
    q = cell.world.joint_positions()
    result = cell.tasks.plan(points, "place", q, q)
    assert result.plan is None
    codes = [r.code for r in result.report.reasons]
    assert "HELD_OBJECT_COLLISION" in codes
    message = next(r.message for r in result.report.reasons if r.code == "HELD_OBJECT_COLLISION")
    assert "held object" in message and "table" in message


def test_pick_and_place_into_the_bowl_by_physics(cell: SimTaskExecutor) -> None:
    cell.reset()
    bowl_before = cell.world.object_pose("blue bowl")[:3, 3].copy()
    out = cell.run(INTO_BOWL)
    assert out.execution == "succeeded" and out.grasp == "held", out.as_dict()
    assert out.success, out.as_dict()
    end = np.array(out.object_end_m)
    assert np.linalg.norm(end[:2] - bowl_before[:2]) < 0.05  # inside the bowl
    assert cell.gripper.held_object == ""  # released


def test_grasp_on_nothing_fails_and_stops_the_task(cell: SimTaskExecutor) -> None:
    cell.reset()
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    points = truth.points_m + np.array([0.0, 0.0, 0.12])  # the trace floats 12 cm above the object
    out = cell.run(INTO_BOWL, points)
    assert out.grasp == "failed" and out.execution == "aborted", out.as_dict()
    assert "grasp failed" in out.reason and not out.success
