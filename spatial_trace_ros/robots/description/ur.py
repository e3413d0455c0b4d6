"""UR5 / UR5e description from the DH parameters the planner's ``UrKinematics`` uses.

Link frames are DH frames: the link after joint i is DH frame i-1 turned by q_i about its z axis, and
joint i+1 sits at ``Tz(d_i) Tx(a_i) Rx(alpha_i)`` in it. So the chain ``base`` -> ``tool0`` is the DH
product, term by term, and FK of this URDF is the planner's FK (test_description.py checks it with
Pinocchio). The link names are those of the UR ROS description; their frames are not (that one
places link frames at the motor housings), so use ``base``, ``tool0`` and ``tcp``, which agree.
``base_link`` is ``base`` turned by pi about z, as in the UR description.

Collision geometry is the planner's capsules (one per DH segment, its radii); the visuals add a
joint housing on each joint axis so the arm reads as a UR.
"""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.robots.description.urdf import (
    UR_BLUE,
    UR_GREY,
    Cylinder,
    Joint,
    Link,
    RobotDescription,
    capsule,
    translation,
)
from spatial_trace_ros.robots.ur.kinematics import UR_ALPHA, UrKinematics

UR_LINKS = ("shoulder_link", "upper_arm_link", "forearm_link", "wrist_1_link", "wrist_2_link", "wrist_3_link")
HOUSING_LENGTH_FACTOR = 2.6  # joint housing length / link radius
HOUSING_RADIUS_FACTOR = 1.15
UR_EFFORT_NM = (150.0, 150.0, 150.0, 28.0, 28.0, 28.0)


def dh_step(a_m: float, d_m: float, alpha_rad: float) -> np.ndarray:
    """``Tz(d) Tx(a) Rx(alpha)``: from the link frame of joint i to the origin of joint i+1."""
    ca, sa = np.cos(alpha_rad), np.sin(alpha_rad)
    return np.array([[1.0, 0.0, 0.0, a_m], [0.0, ca, -sa, 0.0], [0.0, sa, ca, d_m], [0.0, 0.0, 0.0, 1.0]])


def ur_description(model: UrKinematics) -> RobotDescription:
    """Links and joints from ``base_link`` to ``tool0`` (the tool is added by ``build_description``)."""
    turn = np.eye(4)
    turn[:2, :2] = [[-1.0, 0.0], [0.0, -1.0]]
    base_disc = Cylinder(0.09, 0.02, translation((0.0, 0.0, 0.01)))
    links = [Link("base_link"), Link("base", visuals=[base_disc], colour=UR_BLUE)]
    joints = [Joint("base_link-base_fixed_joint", "base_link", "base", turn)]
    parent, origin = "base", np.eye(4)
    a, d = model.dh.a, model.dh.d
    for i, (link_name, joint_name) in enumerate(zip(UR_LINKS, model.joint_names)):
        radius = float(model.capsule_radii_m[i])
        segment = capsule((0.0, 0.0, 0.0), (a[i], 0.0, d[i]), radius)
        housing = Cylinder(HOUSING_RADIUS_FACTOR * radius, HOUSING_LENGTH_FACTOR * radius)
        links.append(Link(link_name, visuals=[housing, *segment], collisions=segment,
                          colour=UR_BLUE if i in (0, 3, 4) else UR_GREY))
        joints.append(Joint(joint_name, parent, link_name, origin, (0.0, 0.0, 1.0), float(model.lower_rad[i]),
                            float(model.upper_rad[i]), float(model.max_velocity_radps[i]), UR_EFFORT_NM[i]))
        parent, origin = link_name, dh_step(a[i], d[i], UR_ALPHA[i])
    links.append(Link("tool0"))
    joints.append(Joint("wrist_3-tool0_fixed_joint", parent, "tool0", origin))
    return RobotDescription(model.name, links, joints)
