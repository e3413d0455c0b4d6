"""The whole cell as one MJCF document: floor, table, objects, receptacles, lights, camera and arm.

Objects and receptacles are free bodies with mass and friction, resting on the table; the arm
carries the two-finger gripper of its tool description (``sim.gripper_mjcf``). Only the table, the
objects and the finger pads collide (geom class ``contact``); the arm's links pass through
everything, because keeping them clear is the safety checks' job and contacts cost CPU.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
from transforms3d import quaternions

from spatial_trace_ros.sim.gripper_mjcf import build_grasp_welds, build_gripper
from spatial_trace_ros.sim.scene import ObjectSpec, SceneSpec
from spatial_trace_ros.sim.ur_arm import build_arm, wrist3_T_tool0
from spatial_trace_ros.tools.description import ToolDescription

CAMERA_NAME = "camera"
TIMESTEP_S = 0.002
# Depth is valid between these distances; MuJoCo's near/far clip planes are set to match.
NEAR_CLIP_M = 0.02
FAR_CLIP_M = 10.0
MODEL_EXTENT_M = 2.0
BOWL_SEGMENTS = 16
CONTACT_CLASS = "contact"
OBJECT_FRICTION = "1 0.005 0.0001"
# [kg/m^3]: a 5.5 cm cube weighs about 0.1 kg; receptacles are heavier per volume so a placed object
# does not push them around
DENSITY_KG_M3 = {"cube": 600.0, "cylinder": 600.0, "bowl": 1500.0, "tray": 1500.0}

# MuJoCo cameras look along -z with y up; the optical frame looks along +z with y down.
MUJOCO_T_OPTICAL = np.diag([1.0, -1.0, -1.0])


def body_name(object_name: str) -> str:
    return object_name.replace(" ", "_")


def _fmt(values: object) -> str:
    return " ".join(f"{float(v):.10g}" for v in np.ravel(values))


def _yaw_quat(yaw: float) -> str:
    return _fmt([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _mat_quat(R: np.ndarray) -> str:
    q = quaternions.mat2quat(R)
    return _fmt(q if q[0] >= 0 else -q)


def _add_object(worldbody: ET.Element, obj: ObjectSpec) -> None:
    body = ET.SubElement(
        worldbody, "body", name=body_name(obj.name), pos=_fmt(obj.position_m), quat=_yaw_quat(obj.yaw_rad),
        childclass=CONTACT_CLASS,
    )
    ET.SubElement(body, "freejoint", name=f"{body_name(obj.name)}_free")
    rgba = _fmt(obj.rgba)
    sx, sy, sz = (v / 2 for v in obj.size_m)
    prefix = body_name(obj.name)
    if obj.kind == "cube":
        ET.SubElement(body, "geom", name=f"{prefix}_geom", type="box", size=_fmt([sx, sy, sz]), rgba=rgba)
    elif obj.kind == "cylinder":
        ET.SubElement(body, "geom", name=f"{prefix}_geom", type="cylinder", size=_fmt([sx, sz]), rgba=rgba)
    elif obj.kind == "bowl":
        w = obj.wall_m
        ET.SubElement(
            body, "geom", name=f"{prefix}_floor", type="cylinder", size=_fmt([sx, w / 2]),
            pos=_fmt([0, 0, -sz + w / 2]), rgba=rgba,
        )
        chord = 2 * sx * math.tan(math.pi / BOWL_SEGMENTS) + 0.002
        for k in range(BOWL_SEGMENTS):
            a = 2 * math.pi * k / BOWL_SEGMENTS
            ET.SubElement(
                body, "geom", name=f"{prefix}_wall{k}", type="box", size=_fmt([w / 2, chord / 2, sz]),
                pos=_fmt([(sx - w / 2) * math.cos(a), (sx - w / 2) * math.sin(a), 0.0]), quat=_yaw_quat(a), rgba=rgba,
            )
    else:  # tray
        w = obj.wall_m
        ET.SubElement(
            body, "geom", name=f"{prefix}_floor", type="box", size=_fmt([sx, sy, w / 2]), pos=_fmt([0, 0, -sz + w / 2]),
            rgba=rgba,
        )
        walls = [(sx - w / 2, 0, w / 2, sy), (-sx + w / 2, 0, w / 2, sy), (0, sy - w / 2, sx, w / 2),
                 (0, -sy + w / 2, sx, w / 2)]
        for k, (px, py, hx, hy) in enumerate(walls):
            ET.SubElement(
                body, "geom", name=f"{prefix}_wall{k}", type="box", size=_fmt([hx, hy, sz]), pos=_fmt([px, py, 0]),
                rgba=rgba,
            )

    for geom in body.iter("geom"):
        geom.set("density", _fmt([DENSITY_KG_M3[obj.kind]]))


def _add_table(worldbody: ET.Element, scene: SceneSpec) -> None:
    t = scene.table
    cx, cy = (t.x_m[0] + t.x_m[1]) / 2, (t.y_m[0] + t.y_m[1]) / 2
    hx, hy = (t.x_m[1] - t.x_m[0]) / 2, (t.y_m[1] - t.y_m[0]) / 2
    ET.SubElement(
        worldbody, "geom", name="table_top", type="box", size=_fmt([hx, hy, t.thickness_m / 2]),
        pos=_fmt([cx, cy, -t.thickness_m / 2]), rgba=_fmt(t.rgba), **{"class": CONTACT_CLASS},
    )
    leg_h = (t.height_m - t.thickness_m) / 2
    for k, (sx, sy) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        ET.SubElement(
            worldbody, "geom", name=f"table_leg{k}", type="box", size=_fmt([0.03, 0.03, leg_h]),
            pos=_fmt([cx + sx * (hx - 0.05), cy + sy * (hy - 0.05), -t.thickness_m - leg_h]), rgba="0.35 0.33 0.3 1",
        )
    ET.SubElement(
        worldbody, "geom", name="floor", type="plane", size="4 4 0.1", pos=_fmt([0, 0, -t.height_m]),
        rgba="0.32 0.34 0.36 1",
    )


def _camera_element(parent: ET.Element, parent_T_optical: np.ndarray, fovy_deg: float) -> None:
    R = parent_T_optical[:3, :3] @ MUJOCO_T_OPTICAL
    ET.SubElement(
        parent, "camera", name=CAMERA_NAME, pos=_fmt(parent_T_optical[:3, 3]), quat=_mat_quat(R), fovy=_fmt([fovy_deg]),
    )


def _add_defaults(root: ET.Element) -> None:
    """Geoms collide with nothing unless they are of class ``contact`` (table, objects, finger pads)."""
    default = ET.SubElement(root, "default")
    ET.SubElement(default, "geom", contype="0", conaffinity="0")
    contact = ET.SubElement(default, "default", **{"class": CONTACT_CLASS})
    ET.SubElement(contact, "geom", contype="1", conaffinity="1", friction=OBJECT_FRICTION, condim="4")


def build_world_xml(scene: SceneSpec, robot: str, tool: ToolDescription | None) -> str:
    """The MJCF text of the cell with ``robot`` (ur5 or ur5e) standing at the base-frame origin, its
    gripper built from ``tool`` (None: the bare flange, e.g. to carry a calibration board)."""
    cam = scene.camera
    root = ET.Element("mujoco", model=f"spatial_trace_cell_{robot}_seed{scene.seed}")
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    ET.SubElement(root, "option", timestep=_fmt([TIMESTEP_S]), integrator="implicitfast", cone="elliptic",
                  impratio="10")
    _add_defaults(root)
    ET.SubElement(root, "statistic", extent=_fmt([MODEL_EXTENT_M]), center="0.3 0 0")
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth=str(max(640, cam.width)), offheight=str(max(480, cam.height)))
    ET.SubElement(visual, "map", znear=_fmt([NEAR_CLIP_M / MODEL_EXTENT_M]), zfar=_fmt([FAR_CLIP_M / MODEL_EXTENT_M]))
    ET.SubElement(visual, "quality", shadowsize="0")
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.25 0.25 0.25", specular="0 0 0")
    worldbody = ET.SubElement(root, "worldbody")
    for k, light in enumerate(scene.lights):
        d = np.asarray(light.direction, float)
        ET.SubElement(
            worldbody, "light", name=f"light{k}", directional="true", castshadow="false",
            pos=_fmt(-2.0 * d / np.linalg.norm(d)), dir=_fmt(d), diffuse=_fmt([light.diffuse] * 3),
            specular="0.1 0.1 0.1",
        )
    _add_table(worldbody, scene)
    for obj in scene.objects:
        _add_object(worldbody, obj)
    actuators = ET.Element("actuator")
    wrist3 = build_arm(worldbody, actuators, robot)
    if tool is not None:
        build_gripper(wrist3, wrist3_T_tool0(robot)[:3, 3], actuators, tool)
    parent_T_optical = cam.parent_T_camera.matrix
    if cam.mount == "eye_to_hand":
        _camera_element(worldbody, parent_T_optical, cam.fovy_deg)
    else:
        _camera_element(wrist3, wrist3_T_tool0(robot) @ parent_T_optical, cam.fovy_deg)
    root.append(actuators)
    if tool is not None:
        build_grasp_welds(root, [body_name(o.name) for o in scene.objects if not o.is_receptacle])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")
