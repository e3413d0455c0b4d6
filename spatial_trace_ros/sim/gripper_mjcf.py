"""MJCF of a two-finger parallel gripper on the simulated arm's flange, built from the tool description.

A palm (the coupling) on the flange and two fingers on slide joints along the flange x axis, each
driven by a force-limited position servo to half the commanded opening. Only the finger pads take
part in contacts (with the table, the objects and the receptacles); the arm and the palm never do,
as the safety checks keep them clear. One inactive weld per movable object lets the simulated gripper
hold what both pads touch (``sim.gripper``): the weld engages only while both pads are in contact.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from spatial_trace_ros.tools.description import ToolDescription

GRIPPER_BODY = "gripper_palm"
FINGER_BODIES = ("finger_left", "finger_right")
FINGER_JOINTS = ("finger_left_joint", "finger_right_joint")
FINGER_ACTUATORS = ("finger_left_servo", "finger_right_servo")
PAD_GEOMS = ("finger_left_pad", "finger_right_pad")
TCP_SITE = "tcp"
PAD_HALF_DEPTH_M = 0.011  # half the pad's extent across the closing direction
PAD_FRICTION = "1.5 0.02 0.001"
FINGER_KP = 400.0  # [N/m] servo stiffness; the tool's force_n caps what it pushes with
PALM_RGBA = "0.15 0.15 0.17 1"
FINGER_RGBA = "0.30 0.30 0.33 1"


def _fmt(values: object) -> str:
    return " ".join(f"{float(v):.10g}" for v in np.ravel(values))


def weld_name(object_body: str) -> str:
    return f"grasp_{object_body}"


def build_gripper(flange_parent: ET.Element, flange_pos: np.ndarray, actuators: ET.Element,
                  tool: ToolDescription) -> ET.Element:
    """Append the gripper to ``flange_parent`` (the wrist 3 body) at ``flange_pos``; returns the palm body."""
    g = tool.gripper
    tcp = np.asarray(tool.tcp.translation_m, float)
    palm = ET.SubElement(flange_parent, "body", name=GRIPPER_BODY, pos=_fmt(flange_pos), gravcomp="1")
    palm_len = max(0.01, tcp[2] - g.finger_length_m)
    ET.SubElement(palm, "geom", name="gripper_palm_geom", type="cylinder", size=_fmt([0.035, palm_len / 2]),
                  pos=_fmt([0, 0, palm_len / 2]), rgba=PALM_RGBA, mass="0.6")
    ET.SubElement(palm, "site", name=TCP_SITE, pos=_fmt(tcp), size="0.004", rgba="1 1 1 0")
    half_len = g.finger_length_m / 2
    pad_z = tcp[2] - half_len + 0.01  # pads end 1 cm past the TCP
    travel = g.max_width_m / 2
    for side, (body, joint, act, pad) in zip((1.0, -1.0), zip(FINGER_BODIES, FINGER_JOINTS, FINGER_ACTUATORS,
                                                                PAD_GEOMS)):
        finger = ET.SubElement(palm, "body", name=body, pos="0 0 0", gravcomp="1")
        ET.SubElement(finger, "joint", name=joint, type="slide", axis=_fmt([side, 0, 0]),
                      range=_fmt([g.min_width_m / 2, travel]), damping="2", armature="0.01")
        ET.SubElement(finger, "geom", name=pad, type="box",
                      size=_fmt([g.finger_thickness_m / 2, PAD_HALF_DEPTH_M, half_len]),
                      pos=_fmt([side * g.finger_thickness_m / 2, 0, pad_z]), rgba=FINGER_RGBA, mass="0.05",
                      contype="1", conaffinity="1", condim="4", friction=PAD_FRICTION)
        ET.SubElement(actuators, "position", name=act, joint=joint, kp=_fmt([FINGER_KP]),
                      forcerange=_fmt([-g.force_n, g.force_n]), ctrlrange=_fmt([g.min_width_m / 2, travel]))
    return palm


def build_grasp_welds(root: ET.Element, object_bodies: list[str]) -> None:
    """One inactive weld palm-object per movable object; the simulated gripper switches them."""
    equality = ET.SubElement(root, "equality")
    for body in object_bodies:
        ET.SubElement(equality, "weld", name=weld_name(body), body1=GRIPPER_BODY, body2=body, active="false",
                      solref="0.01 1")
