"""Link transforms from joint positions: what robot_state_publisher computes, in plain Python.

``robot_state_node`` publishes ``fixed_transforms`` once on ``/tf_static`` and ``joint_transforms``
on ``/tf`` for every ``/joint_states`` message; tests check them against the planner's FK.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spatial_trace_ros.robots.description.urdf import Joint, RobotDescription


def axis_rotation(axis: tuple[float, float, float], angle_rad: float) -> np.ndarray:
    """4x4 rotation by ``angle_rad`` about the unit ``axis`` (Rodrigues)."""
    k = np.asarray(axis, float)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + np.sin(angle_rad) * kx + (1.0 - np.cos(angle_rad)) * (kx @ kx)
    return m


def joint_transform(joint: Joint, position_rad: float = 0.0) -> np.ndarray:
    """``parent_T_child`` of ``joint`` at ``position_rad``."""
    if joint.fixed:
        return joint.origin
    return joint.origin @ axis_rotation(joint.axis, position_rad)


def fixed_transforms(description: RobotDescription) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, parent_T_child) of every fixed joint."""
    return [(j.parent, j.child, j.origin) for j in description.joints if j.fixed]


def joint_transforms(description: RobotDescription,
                     positions: Mapping[str, float]) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, parent_T_child) of every movable joint named in ``positions`` (others are left
    out, as robot_state_publisher does: an unmeasured joint is not drawn at a guessed angle)."""
    return [(j.parent, j.child, joint_transform(j, positions[j.name]))
            for j in description.movable_joints if j.name in positions]


def link_poses(description: RobotDescription, positions: Mapping[str, float], root: str) -> dict[str, np.ndarray]:
    """``root_T_link`` of every link reachable from ``root`` downwards, at ``positions`` (missing
    movable joints at 0): the forward kinematics of the URDF tree."""
    poses = {root: np.eye(4)}
    for joint in description.joints:  # tree order: a joint's parent is placed before its child
        if joint.parent in poses:
            poses[joint.child] = poses[joint.parent] @ joint_transform(joint, positions.get(joint.name, 0.0))
    return poses
