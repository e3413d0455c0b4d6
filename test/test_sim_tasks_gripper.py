"""The tool description, task planning with tool actions and tool geometry, and pick-and-place by the
simulated gripper (physics, lockstep) judged from the simulated world."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.planning.plan_identity import encode_actions
from spatial_trace_ros.planning.task import check_task_plan, decode_actions, task_kind
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


def test_stop_keeps_the_object_held_and_resume_finishes_the_task(cell: SimTaskExecutor) -> None:
    from spatial_trace_ros.robots.execution import ExecutionLoop, StopSignal
    from spatial_trace_ros.robots.task_runner import TaskRunner

    cell.reset()
    resting_z = cell.world.object_pose("yellow cylinder")[2, 3]
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    q = cell.world.joint_positions()
    plan = cell.tasks.plan(truth.points_m, "place", q, q).plan
    stop = StopSignal()
    periods = [0]

    def on_period(_report: object) -> None:
        periods[0] += 1
        if cell.gripper.held_object and periods[0] % 150 == 0 and stop.count == 0:
            stop.request("operator stop mid-carry")

    def make_loop() -> ExecutionLoop:
        loop = cell._loop()
        return ExecutionLoop(loop.driver, loop.policy, loop.guard, stop_signal=stop, on_period=on_period,
                             clock=loop.clock)

    runner = TaskRunner(cell.gripper, cell.world.tool, make_loop, cell.filter)
    result, progress = runner.run(plan)
    assert result.outcome == "stopped" and progress is not None and progress.holding, result.reason
    assert cell.gripper.held_object == "yellow cylinder"  # the stop did not drop it
    cell.world.step(0.5)
    assert cell.world.object_pose("yellow cylinder")[2, 3] > resting_z + 0.01  # still in the air, held
    stop.clear_up_to(stop.count)
    result, progress = runner.resume(cell.world.joint_positions())
    assert result.outcome == "succeeded", result.reason
    assert progress is not None and progress.finished and not progress.holding
    cell.world.step(0.5)
    bowl = cell.world.object_pose("blue bowl")[:3, 3]
    assert np.linalg.norm(cell.world.object_pose("yellow cylinder")[:2, 3] - bowl[:2]) < 0.05


def test_task_markers_label_every_action(cell: SimTaskExecutor) -> None:
    from spatial_trace_ros.viz.task_markers import task_markers

    cell.reset()
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    q = cell.world.joint_positions()
    plan = cell.tasks.plan(truth.points_m, "place", q, q).plan
    specs = task_markers(plan, cell.world.tool)
    labels = [s.text for s in specs if s.kind == "text"]
    assert labels == ["1. open (place)", "2. grasp (place)", "3. release (place)"]
    path = next(s for s in specs if s.ns == "task_tcp_path").points
    np.testing.assert_allclose(path[0], (plan.poses[0] @ cell.world.tool.flange_T_tcp)[:3, 3])


def test_received_task_plan_through_the_table_is_refused_by_the_controller_check(cell: SimTaskExecutor) -> None:
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    cell.reset()
    q = cell.world.joint_positions()
    plan = cell.tasks.plan(truth.points_m, "place", q, q).plan
    grasp, release = plan.tool_actions[1].waypoint, plan.tool_actions[2].waypoint
    poses = plan.poses.copy()
    poses[grasp + 5:release, 2, 3] -= 0.06  # a forged plan: the carry dips 6 cm through the table
    forged = type(plan)(robot=plan.robot, frame_id=plan.frame_id, joint_names=plan.joint_names, times_s=plan.times_s,
                        joints=plan.joints, poses=poses, tool_actions=plan.tool_actions, task=plan.task)
    found = check_task_plan(forged, cell.tasks.geometry)
    assert {r.code for r in found} >= {"HELD_OBJECT_COLLISION"}, found


def test_tool_geometry_sees_keep_out_zones_and_the_guard_checks_the_tool(cell: SimTaskExecutor) -> None:
    from spatial_trace_ros.planning.safety import SetpointGuard
    from spatial_trace_ros.planning.tool_geometry import HeldEnvelope

    geometry = cell.tasks.geometry
    flange = np.eye(4)
    flange[:3, :3] = np.diag([1.0, -1.0, -1.0])  # tool pointing down
    flange[:3, 3] = [0.25, 0.0, 0.30]  # the flange outside the robot_base zone (r 0.2 m), the tool body inside
    found = geometry.check_path(np.stack([flange, flange]))
    assert any(r.code == "TOOL_COLLISION" and "robot_base" in r.message for r in found), found
    flange[:3, 3] = [0.5, 0.0, 0.12]  # the fingers 3 cm into the table
    q = cell.model.ik(flange, cell.world.joint_positions())
    assert q is not None
    assert SetpointGuard(cell.safety, cell.model).check_pose(flange, flange, 0.008, q) is None  # the flange alone
    guard = SetpointGuard(cell.safety, cell.model, tool=geometry)
    refused = guard.check_pose(flange, flange, 0.008, q)
    assert refused is not None and refused.code == "TOOL_COLLISION" and "table" in refused.message
    # held from a grasp 5 cm above the table (the object is 7.5 cm tall): lowered so the tool clears the
    # table but the object's bottom is 2 cm below it; refused only while the object is held
    flange[:3, 3] = [0.5, 0.0, 0.18]
    q = cell.model.ik(flange, q)
    assert guard.check_pose(flange, flange, 0.008, q) is None
    guard.held = HeldEnvelope.from_grasp(cell.world.tool, 0.05, cell.safety.table.z_m)
    refused = guard.check_pose(flange, flange, 0.008, q)
    assert refused is not None and refused.code == "HELD_OBJECT_COLLISION" and "table" in refused.message
    guard.held = None  # released
    assert guard.check_pose(flange, flange, 0.008, q) is None


def test_the_guard_checks_the_held_object_from_the_grasp_to_the_release(cell: SimTaskExecutor) -> None:
    """After a real grasp the run-time guard refuses a setpoint that pushes the held object into the
    table though the TCP and the fingers clear it; after a place (release) nothing is held any more."""
    from spatial_trace_ros.planning.safety import SetpointGuard
    from spatial_trace_ros.robots.task_runner import TaskRunner

    cell.reset()
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    q = cell.world.joint_positions()
    runner = TaskRunner(cell.gripper, cell.world.tool, cell._loop, cell.filter)
    result, progress = runner.run(cell.tasks.plan(truth.points_m, "pick_up", q, q).plan)
    assert result.succeeded and progress is not None and progress.grasp_outcome() == "held", result.reason
    guard = cell.guard
    assert guard.tool is runner.geometry and guard.held is not None
    q_now = cell.world.joint_positions()
    flange = cell.model.fk(q_now)
    tcp_z = (flange @ cell.world.tool.flange_T_tcp)[2, 3]
    bottom_z = tcp_z - (guard.held.size_m[2] - guard.held.grasp_depth_m)
    lower = flange.copy()
    lower[2, 3] -= bottom_z + 0.02  # the object's bottom 2 cm into the table
    assert SetpointGuard(cell.safety, cell.model, tool=runner.geometry).check_pose(flange, lower, 0.2, q_now) is None
    refused = guard.check_pose(flange, lower, 0.2, q_now)
    assert refused is not None and refused.code == "HELD_OBJECT_COLLISION" and "table" in refused.message
    cell.reset()
    out = cell.run(INTO_BOWL)
    assert out.execution == "succeeded" and cell.guard.held is None, out.as_dict()


def test_dry_run_task_moves_neither_arm_nor_fingers(cell: SimTaskExecutor) -> None:
    from spatial_trace_ros.robots.dry_run import DryRunDriver
    from spatial_trace_ros.robots.execution import ExecutionLoop
    from spatial_trace_ros.robots.task_runner import TaskRunner

    cell.reset()
    truth = plan_task(INTO_BOWL, cell.scene, cell.base_T_camera)
    q = cell.world.joint_positions()
    plan = cell.tasks.plan(truth.points_m, "place", q, q).plan
    width, cylinder = cell.gripper.width_m(), cell.world.object_pose("yellow cylinder")[:3, 3].copy()

    def make_loop() -> ExecutionLoop:  # the dry run sends nothing, so the test steps the simulated time itself
        loop = cell._loop()
        period = loop.driver.period_s
        return ExecutionLoop(DryRunDriver(loop.driver, cell.model), loop.policy, loop.guard, clock=loop.clock,
                             on_period=lambda _report: cell.world.step(period))

    _, progress = TaskRunner(cell.gripper, cell.world.tool, make_loop, cell.filter).run(plan, dry_run=True)
    assert progress is not None and all("dry run" in r.message for r in progress.reports)
    assert cell.gripper.width_m() == pytest.approx(width, abs=1e-4)
    np.testing.assert_allclose(cell.world.object_pose("yellow cylinder")[:3, 3], cylinder, atol=1e-3)
    np.testing.assert_allclose(cell.world.joint_positions(), q, atol=1e-3)


def test_a_task_that_would_drop_a_held_object_is_not_started(cell: SimTaskExecutor) -> None:
    cell.reset()
    assert cell.run("pick up the red cylinder").success  # ends holding it, 15 cm up
    out = cell.run(INTO_BOWL)
    assert out.execution == "aborted" and "holds an object" in out.reason, out.as_dict()
    assert cell.gripper.held_object == "red cylinder"


def test_sim_gripper_reports_what_it_did(cell: SimTaskExecutor) -> None:
    from spatial_trace_ros.tools.gripper import GripperError, gripper_factory

    cell.reset()
    gripper, g = cell.gripper, cell.world.tool.gripper
    assert gripper_factory("sim") is type(gripper)
    with pytest.raises(GripperError, match="outside"):
        gripper.move_to_width(0.2, g.speed_mps, g.force_n, g.timeout_s)
    with pytest.raises(GripperError, match="force"):
        gripper.move_to_width(0.05, g.speed_mps, g.max_force_n * 2, g.timeout_s)
    opened = gripper.open(g.speed_mps, g.force_n, g.timeout_s)
    assert opened.width_m == pytest.approx(g.max_width_m, abs=0.003) and not opened.object_detected
    closed = gripper.close(g.speed_mps, g.force_n, g.timeout_s)  # in the air: closes on nothing
    assert closed.width_m < 0.003 and not closed.object_detected and not closed.moving
    assert gripper.held_object == ""
