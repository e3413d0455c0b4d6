"""MJCF of a UR5 / UR5e arm built directly from its DH parameters, with simple geometry.

Each body frame is a DH frame, so the MuJoCo world frame *is* the UR controller's ``base`` frame
(the one RTDE poses and ``robots.ur.kinematics`` use) and the ``tool0`` site is the flange: the
simulation's TCP pose equals the kinematics' FK to numerical precision (tested). Joints are
position-controlled (a stiff position servo plus a velocity feed-forward actuator per joint, with
gravity compensation) the way a UR controller tracks servoj targets.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.errors import ConfigError, format_choices
from spatial_trace_ros.robots.ur.kinematics import UR5_DH, UR5E_DH, UR_ALPHA, UR_JOINT_NAMES, UrDh

JOINT_NAMES: tuple[str, ...] = UR_JOINT_NAMES
LINK_NAMES: tuple[str, ...] = (
    "shoulder_link",
    "upper_arm_link",
    "forearm_link",
    "wrist_1_link",
    "wrist_2_link",
    "wrist_3_link",
)
TOOL_SITE = "tool0"
LINK_RGBA = "0.78 0.80 0.82 1"
JOINT_RGBA = "0.18 0.26 0.40 1"


@dataclass(frozen=True)
class ArmSpec:
    """DH lengths (from ``robots.ur.kinematics``, the one source of the facts) and simulated drive
    settings of one UR arm."""

    name: str
    dh: UrDh
    max_velocity_radps: float
    torque_limit_nm: tuple[float, ...]
    link_radius_m: tuple[float, ...]
    control_period_s: float  # the real controller's servo period

    @property
    def d_m(self) -> np.ndarray:
        return self.dh.d

    @property
    def a_m(self) -> np.ndarray:
        return self.dh.a

    @property
    def limits_rad(self) -> tuple[float, ...]:
        """Symmetric +- limit per joint: 360 deg, the elbow 180 deg (as the UR description)."""
        return (2 * math.pi, 2 * math.pi, math.pi, 2 * math.pi, 2 * math.pi, 2 * math.pi)


ARMS: dict[str, ArmSpec] = {
    "ur5": ArmSpec(
        name="ur5",
        dh=UR5_DH,
        max_velocity_radps=math.pi,
        torque_limit_nm=(150.0, 150.0, 150.0, 28.0, 28.0, 28.0),
        link_radius_m=(0.06, 0.055, 0.045, 0.04, 0.04, 0.035),
        control_period_s=0.008,
    ),
    "ur5e": ArmSpec(
        name="ur5e",
        dh=UR5E_DH,
        max_velocity_radps=math.pi,
        torque_limit_nm=(150.0, 150.0, 150.0, 28.0, 28.0, 28.0),
        link_radius_m=(0.06, 0.055, 0.045, 0.04, 0.04, 0.035),
        control_period_s=0.002,
    ),
}

# Tool pointing straight down 0.4 m above the table's near half, elbow up, tool x along base x
# (the planner's default fixed orientation, roll pi), clear of the camera's view of the objects.
HOME_Q_RAD: dict[str, tuple[float, ...]] = {
    "ur5": (math.pi, -1.75, 1.85, -math.pi / 2 - 0.1, -math.pi / 2, -math.pi / 2),
    "ur5e": (math.pi, -1.75, 1.85, -math.pi / 2 - 0.1, -math.pi / 2, -math.pi / 2),
}

# Position servo stiffness [N m / rad] and velocity feed-forward gain [N m s / rad] per joint.
KP = (6000.0, 6000.0, 4000.0, 600.0, 600.0, 300.0)
KV = (300.0, 300.0, 200.0, 30.0, 30.0, 15.0)
ARMATURE = (0.4, 0.4, 0.2, 0.05, 0.05, 0.03)


def arm_spec(robot: str) -> ArmSpec:
    if robot not in ARMS:
        raise ConfigError(format_choices("simulated robot", robot, list(ARMS)))
    return ARMS[robot]


def _fmt(values: object) -> str:
    return " ".join(f"{float(v):.10g}" for v in np.ravel(values))


def _rx_quat(alpha: float) -> str:
    return _fmt([math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0])


def build_arm(worldbody: ET.Element, actuators: ET.Element, robot: str) -> ET.Element:
    """Append the arm's bodies to ``worldbody`` and its actuators to ``actuators``; returns the last
    body (the wrist 3 link, which carries the ``tool0`` site and an eye-in-hand camera)."""
    spec = arm_spec(robot)
    r = spec.link_radius_m
    ET.SubElement(
        worldbody, "geom", name="base_geom", type="cylinder", size=_fmt([r[0] + 0.015, 0.045]),
        pos="0 0 0.045", rgba=JOINT_RGBA,
    )
    parent = worldbody
    pos, quat = "0 0 0", "1 0 0 0"
    for i, (link, joint) in enumerate(zip(LINK_NAMES, JOINT_NAMES)):
        body = ET.SubElement(parent, "body", name=link, pos=pos, quat=quat, gravcomp="1")
        limit = spec.limits_rad[i]
        ET.SubElement(
            body, "joint", name=joint, type="hinge", axis="0 0 1", range=_fmt([-limit, limit]),
            armature=_fmt([ARMATURE[i]]), damping="0.5",
            actuatorfrcrange=_fmt([-spec.torque_limit_nm[i], spec.torque_limit_nm[i]]),
        )
        # Joint housing around the axis, then the link towards the next joint's origin.
        ET.SubElement(
            body, "geom", name=f"{link}_housing", type="cylinder", size=_fmt([r[i], r[i] * 1.1]), rgba=JOINT_RGBA,
        )
        tip = np.array([spec.a_m[i], 0.0, spec.d_m[i]])
        if np.linalg.norm(tip) > 1e-6 and i < 5:
            ET.SubElement(
                body, "geom", name=f"{link}_geom", type="capsule", fromto=_fmt([0, 0, 0, *tip]),
                size=_fmt([r[i] * 0.85]), rgba=LINK_RGBA,
            )
        if i == 5:
            ET.SubElement(
                body, "geom", name="flange_geom", type="cylinder", size=_fmt([0.032, 0.012]),
                pos=_fmt([0, 0, spec.d_m[5] - 0.012]), rgba="0.25 0.25 0.28 1",
            )
            ET.SubElement(body, "site", name=TOOL_SITE, pos=_fmt(tip), size="0.005", rgba="1 1 1 0")
        ET.SubElement(actuators, "position", name=f"{joint}_pos", joint=joint, kp=_fmt([KP[i]]))
        ET.SubElement(actuators, "velocity", name=f"{joint}_vel", joint=joint, kv=_fmt([KV[i]]))
        parent = body
        pos, quat = _fmt(tip), _rx_quat(float(UR_ALPHA[i]))
    return parent


def wrist3_T_tool0(robot: str) -> np.ndarray:
    """Pose of the ``tool0`` site in the wrist 3 body (a pure offset along the flange axis)."""
    out = np.eye(4)
    out[:3, 3] = [arm_spec(robot).a_m[5], 0.0, arm_spec(robot).d_m[5]]
    return out
