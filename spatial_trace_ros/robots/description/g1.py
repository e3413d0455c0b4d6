"""Unitree G1 upper body: pelvis, the three waist joints, ``torso_link``, both 7-DoF arms, head camera.

The arm chains are the planner's (``robots/g1/kinematics.py``: the published g1_29dof joint origins,
axes and limits), so FK from ``torso_link`` to ``{side}_rubber_hand`` is the planner's FK. The waist
joint origins and axes are the same URDF's facts (yaw about z at the pelvis, roll about x 35 mm up,
pitch about y 19 mm above that). Links are named after their joints (``left_elbow_joint`` ->
``left_elbow_link``) as in the G1 description.

Collision geometry follows the planner's volumes: the torso capsule, and per arm link a capsule from
its joint to the next with the planner's upper-arm, forearm and hand radii (the planner's capsules
span shoulder roll -> elbow -> wrist pitch -> hand tip; the per-link pieces cover the same segments
within the chain's small side offsets).
"""

from __future__ import annotations

import numpy as np
from transforms3d.euler import euler2mat

from spatial_trace_ros.robots.description.urdf import (
    G1_DARK,
    G1_LIGHT,
    Box,
    Cylinder,
    Joint,
    Link,
    RobotDescription,
    Sphere,
    capsule,
    translation,
)
from spatial_trace_ros.robots.g1.kinematics import (
    ARM_SDK_MAX_VELOCITY_RADPS,
    FOREARM_RADIUS_M,
    HAND_LENGTH_M,
    HAND_RADIUS_M,
    HEAD_CAMERA_PITCH_RAD,
    HEAD_CAMERA_XYZ_M,
    LEFT_ARM_CHAIN,
    LEFT_HAND_XYZ_M,
    RIGHT_ARM_CHAIN,
    RIGHT_HAND_XYZ_M,
    TORSO_CAPSULE,
    UPPER_ARM_RADIUS_M,
    WAIST_LIMITS_RAD,
    ArmJoint,
)
from spatial_trace_ros.robots.g1.motors import WAIST_JOINTS

# (origin xyz in the parent [m], axis) of waist yaw, roll, pitch: pelvis -> ... -> torso_link.
WAIST_ORIGINS_M = ((0.0, 0.0, 0.0), (-0.0039635, 0.0, 0.035), (0.0, 0.0, 0.019))
WAIST_AXES = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
WAIST_LINKS = ("waist_yaw_link", "waist_roll_link", "torso_link")
AXES = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
# Radius of each arm link's capsule, shoulder pitch .. wrist yaw (the planner's upper arm, forearm, hand).
ARM_LINK_RADII_M = (UPPER_ARM_RADIUS_M, UPPER_ARM_RADIUS_M, UPPER_ARM_RADIUS_M, FOREARM_RADIUS_M,
                    FOREARM_RADIUS_M, HAND_RADIUS_M, HAND_RADIUS_M)
ARM_EFFORT_NM = (25.0, 25.0, 25.0, 25.0, 25.0, 5.0, 5.0)


def _pose(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> np.ndarray:
    m = translation(xyz)
    m[:3, :3] = euler2mat(*rpy, "sxyz")
    return m


def _arm(chain: tuple[ArmJoint, ...], hand_xyz_m: tuple[float, float, float], side: str) -> tuple[list, list]:
    links: list[Link] = []
    joints: list[Joint] = []
    parent = "torso_link"
    next_origins = [j.xyz_m for j in chain[1:]] + [hand_xyz_m]
    for k, (joint, end) in enumerate(zip(chain, next_origins)):
        name = joint.name.replace("_joint", "_link")
        segment = capsule((0.0, 0.0, 0.0), end, ARM_LINK_RADII_M[k])
        # Thinner visuals than the collision volumes, so both can be told apart in RViz.
        visual = capsule((0.0, 0.0, 0.0), end, 0.75 * ARM_LINK_RADII_M[k])
        links.append(Link(name, visuals=visual, collisions=segment, colour=G1_LIGHT if k % 2 else G1_DARK))
        joints.append(Joint(joint.name, parent, name, _pose(joint.xyz_m, joint.rpy_rad), AXES[joint.axis],
                            joint.lower_rad, joint.upper_rad, ARM_SDK_MAX_VELOCITY_RADPS, ARM_EFFORT_NM[k]))
        parent = name
    hand = capsule((0.0, 0.0, 0.0), (HAND_LENGTH_M, 0.0, 0.0), HAND_RADIUS_M)
    links.append(Link(f"{side}_rubber_hand", visuals=[Box((HAND_LENGTH_M, 0.03, 0.06),
                                                          translation((HAND_LENGTH_M / 2, 0.0, 0.0)))],
                      collisions=hand, colour=G1_DARK))
    joints.append(Joint(f"{side}_hand_palm_joint", parent, f"{side}_rubber_hand", translation(hand_xyz_m)))
    return links, joints


def g1_description(name: str) -> RobotDescription:
    """The G1 upper body; ``name`` is the robot model's name (g1_left_arm or g1_right_arm)."""
    pelvis = Link("pelvis", visuals=[Box((0.12, 0.22, 0.10), translation((0.0, 0.0, -0.03)))], colour=G1_DARK)
    links = [pelvis, Link("waist_yaw_link"), Link("waist_roll_link")]
    p0, p1, radius = TORSO_CAPSULE
    torso_visuals = [
        Box((0.13, 0.22, 0.24), translation((0.0, 0.0, 0.14))),
        Sphere(0.075, translation((0.0, 0.0, 0.40))),  # head
        Cylinder(0.03, 0.06, translation((0.0, 0.0, 0.30))),  # neck
    ]
    links.append(Link("torso_link", visuals=torso_visuals, collisions=capsule(p0, p1, radius), colour=G1_LIGHT))
    joints = []
    parent = "pelvis"
    for joint_name, child, xyz, axis in zip(WAIST_JOINTS, WAIST_LINKS, WAIST_ORIGINS_M, WAIST_AXES):
        lower, upper = WAIST_LIMITS_RAD[joint_name]
        joints.append(Joint(joint_name, parent, child, translation(xyz), axis, lower, upper, 1.0, 88.0))
        parent = child
    for chain, hand, side in ((LEFT_ARM_CHAIN, LEFT_HAND_XYZ_M, "left"), (RIGHT_ARM_CHAIN, RIGHT_HAND_XYZ_M, "right")):
        arm_links, arm_joints = _arm(chain, hand, side)
        links += arm_links
        joints += arm_joints
    camera = Box((0.025, 0.09, 0.025))
    links.append(Link("d435_link", visuals=[camera], colour=G1_DARK))
    mount = _pose(HEAD_CAMERA_XYZ_M, (0.0, HEAD_CAMERA_PITCH_RAD, 0.0))
    joints.append(Joint("d435_joint", "torso_link", "d435_link", mount))
    return RobotDescription(name, links, joints)
