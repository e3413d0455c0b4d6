"""``Plan`` <-> trajectory_msgs/JointTrajectory, the plan's wire format on ``/spatial_trace/plan``.

The header carries the base frame and the plan stamp (which identifies the plan). A trajectory
without points withdraws the previous plan (the planner refused the latest trace). The poses are
not sent (the receiver recomputes them with the same robot model's FK), so the two can never disagree.
A task plan's tool actions travel as one more column, the joint ``GRIPPER_JOINT``: the finger opening
commanded from each waypoint on (``planning.task.encode_actions``), which the receiver decodes with
its own tool description.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from spatial_trace_ros.planning.plan import Plan, SafetyReport, Verdict
from spatial_trace_ros.planning.task import decode_actions, encode_actions
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.ros.conversions import make_header, stamp_to_seconds
from spatial_trace_ros.tools.description import ToolDescription

GRIPPER_JOINT = "gripper_width"  # [m] finger opening commanded from this waypoint on


def _duration(t_s: float) -> Duration:
    ns = round(t_s * 1e9)
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def plan_to_joint_trajectory(plan: Plan) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header = make_header(plan.stamp_s, plan.frame_id)
    msg.joint_names = list(plan.joint_names)
    joints = plan.joints
    if plan.tool_actions:
        msg.joint_names.append(GRIPPER_JOINT)
        start = plan.tool_actions[0].width_m if plan.tool_actions[0].waypoint == 0 else 0.0
        joints = np.column_stack([joints, encode_actions(plan.tool_actions, len(plan), start)])
    for t, q in zip(plan.times_s, joints, strict=True):
        point = JointTrajectoryPoint()
        point.positions = [float(x) for x in q]
        point.time_from_start = _duration(float(t))
        msg.points.append(point)
    return msg


def withdrawn_plan(joint_names: tuple[str, ...], frame_id: str, stamp_s: float) -> JointTrajectory:
    """An empty trajectory: "the latest trace was refused, forget the previous plan"."""
    msg = JointTrajectory()
    msg.header = make_header(stamp_s, frame_id)
    msg.joint_names = list(joint_names)
    return msg


def is_withdrawn(msg: JointTrajectory) -> bool:
    return len(msg.points) == 0


def joint_trajectory_to_plan(msg: JointTrajectory, model: RobotModel, plan_id: str = "",
                             tool: ToolDescription | None = None) -> Plan:
    """Rebuild a plan for ``model``; joint names must match the model's (in any order). A gripper column
    needs ``tool`` (this side's tool description) to become tool actions."""
    names = [n for n in msg.joint_names if n != GRIPPER_JOINT]
    actions: tuple = ()
    if GRIPPER_JOINT in msg.joint_names:
        if tool is None:
            raise ValueError("the plan carries gripper actions but this controller has no tool; set its tool "
                             "parameter (e.g. default) or plan without one")
        col = list(msg.joint_names).index(GRIPPER_JOINT)
        actions = decode_actions(np.array([p.positions[col] for p in msg.points], float), tool)
    if set(names) != set(model.joint_names):
        raise ValueError(
            f"trajectory joints {list(msg.joint_names)} do not match robot {model.name!r} "
            f"joints {list(model.joint_names)}; is the planner configured for the same robot?"
        )
    order = [list(msg.joint_names).index(name) for name in model.joint_names]
    joints = np.array([[p.positions[i] for i in order] for p in msg.points], float)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    poses = np.array([model.fk(q) for q in joints]) if len(joints) else np.zeros((0, 4, 4))
    stamp_s = stamp_to_seconds(msg.header.stamp)
    return Plan(
        robot=model.name,
        frame_id=msg.header.frame_id or model.base_frame,
        joint_names=model.joint_names,
        times_s=times,
        joints=joints,
        poses=poses,
        plan_id=plan_id or f"{stamp_s:.6f}",
        stamp_s=stamp_s,
        report=SafetyReport(Verdict.ACCEPT),
        tool_actions=actions,
        task=_task_of(actions),
    )


def _task_of(actions: tuple) -> str:
    kinds = [a.action for a in actions]
    if not kinds:
        return ""
    if "close" in kinds:
        return "push"
    return "place" if "release" in kinds else "pick_up"
