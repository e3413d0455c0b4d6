"""``Plan`` <-> trajectory_msgs/JointTrajectory, the plan's wire format on ``/spatial_trace/plan``.

The header carries the base frame and the capture stamp of the camera frame the plan came from. The
plan's id is not sent: it is a digest of the message itself (``plan_id_of_msg``), which the planner and
the controller compute alike, so a plan that changed on the way has another id. A trajectory without
points withdraws the previous plan (the planner refused the latest trace). The poses are not sent (the
receiver recomputes them with the same robot model's FK), so the two can never disagree.
A task plan's tool actions travel as one more column, the joint ``GRIPPER_JOINT``: the finger
opening commanded from each waypoint on (``planning.plan_identity.wire_columns``), which the
receiver decodes with its own tool description; the id covers it like any joint.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from spatial_trace_ros.planning.plan import Plan, SafetyReport, Verdict
from spatial_trace_ros.planning.plan_identity import GRIPPER_JOINT, duration_ns, plan_id_of, wire_columns, wire_ns
from spatial_trace_ros.planning.task import decode_actions
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.ros.conversions import make_header, stamp_to_seconds
from spatial_trace_ros.tools.description import ToolDescription


def _duration(t_s: float) -> Duration:
    sec, nanosec = duration_ns(t_s)
    return Duration(sec=sec, nanosec=nanosec)


def plan_id_of_msg(msg: JointTrajectory) -> str:
    """The id of the plan this message carries (see ``planning.plan_identity``)."""
    joints = np.array([list(p.positions) for p in msg.points], float).reshape(len(msg.points), -1)
    times = [(p.time_from_start.sec, p.time_from_start.nanosec) for p in msg.points]
    return plan_id_of(msg.header.frame_id, list(msg.joint_names), (msg.header.stamp.sec, msg.header.stamp.nanosec),
                      times, joints)


def plan_to_joint_trajectory(plan: Plan) -> JointTrajectory:
    msg = JointTrajectory()
    sec, nanosec = wire_ns(plan.stamp_s)
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    msg.header.frame_id = plan.frame_id
    msg.joint_names, joints = wire_columns(plan)
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


def joint_trajectory_to_plan(msg: JointTrajectory, model: RobotModel, tool: ToolDescription | None = None) -> Plan:
    """Rebuild a plan for ``model`` with its id; joint names must match the model's (in any order). A gripper column
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
        plan_id=plan_id_of_msg(msg),
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
