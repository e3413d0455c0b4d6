"""A small URDF model (links, joints, primitive shapes) and its XML writer.

URDF has no capsule, so a capsule is written as a cylinder with a sphere on each end: the same volume
the planner's capsule checks use, shown by RViz and loaded by any URDF parser (Pinocchio, coal,
MuJoCo, yourdfpy). Every pose here is a 4x4 matrix in the parent link's frame.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
from transforms3d.euler import mat2euler

# Colours (RGBA) that make the arms recognisable in RViz.
UR_GREY = (0.78, 0.80, 0.82, 1.0)
UR_BLUE = (0.20, 0.45, 0.72, 1.0)
G1_DARK = (0.18, 0.18, 0.20, 1.0)
G1_LIGHT = (0.70, 0.72, 0.75, 1.0)
TOOL_COLOUR = (0.85, 0.55, 0.10, 1.0)


@dataclass(frozen=True)
class Cylinder:
    """A cylinder on the z axis of ``pose`` (centre at the pose's origin)."""

    radius_m: float
    length_m: float
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))


@dataclass(frozen=True)
class Sphere:
    radius_m: float
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))


@dataclass(frozen=True)
class Box:
    size_m: tuple[float, float, float]
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))


Shape = Cylinder | Sphere | Box


def translation(xyz: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = xyz
    return m


def capsule(p0: np.ndarray | tuple, p1: np.ndarray | tuple, radius_m: float) -> list[Shape]:
    """The capsule p0-p1 of ``radius_m`` as a cylinder and two end spheres (a sphere alone if p0 = p1)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    spheres: list[Shape] = [Sphere(radius_m, translation(p0)), Sphere(radius_m, translation(p1))]
    if length < 1e-9:
        return spheres[:1]
    return [Cylinder(radius_m, length, pose_along(p0, p1)), *spheres]


def pose_along(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """A pose at the midpoint of p0-p1 whose z axis points from p0 to p1."""
    z = (p1 - p0) / np.linalg.norm(p1 - p0)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    m[:3, 3] = (p0 + p1) / 2.0
    return m


@dataclass
class Link:
    name: str
    visuals: list[Shape] = field(default_factory=list)
    collisions: list[Shape] = field(default_factory=list)
    colour: tuple[float, float, float, float] = UR_GREY


@dataclass(frozen=True)
class Joint:
    """A revolute joint about ``axis`` (unit vector in the child frame) or a fixed joint (``axis`` None)."""

    name: str
    parent: str
    child: str
    origin: np.ndarray
    axis: tuple[float, float, float] | None = None
    lower_rad: float = 0.0
    upper_rad: float = 0.0
    velocity_radps: float = 0.0
    effort_nm: float = 100.0

    @property
    def fixed(self) -> bool:
        return self.axis is None


@dataclass
class RobotDescription:
    """Links and joints of one robot in tree order (every joint's parent comes before its child)."""

    name: str
    links: list[Link]
    joints: list[Joint]

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(f"{self.name} has no link {name!r}; links: {[lk.name for lk in self.links]}")

    @property
    def movable_joints(self) -> list[Joint]:
        return [j for j in self.joints if not j.fixed]

    def to_urdf(self) -> str:
        return urdf_xml(self)


def _fmt(values: np.ndarray | tuple) -> str:
    return " ".join(f"{float(v):.12g}" for v in values)


def _origin(parent: ET.Element, pose: np.ndarray) -> None:
    # URDF rpy is fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll), transforms3d's "sxyz".
    rpy = mat2euler(pose[:3, :3], "sxyz")
    ET.SubElement(parent, "origin", xyz=_fmt(pose[:3, 3]), rpy=_fmt(rpy))


def _geometry(parent: ET.Element, shape: Shape) -> None:
    _origin(parent, shape.pose)
    geometry = ET.SubElement(parent, "geometry")
    if isinstance(shape, Cylinder):
        ET.SubElement(geometry, "cylinder", radius=_fmt([shape.radius_m]), length=_fmt([shape.length_m]))
    elif isinstance(shape, Sphere):
        ET.SubElement(geometry, "sphere", radius=_fmt([shape.radius_m]))
    else:
        ET.SubElement(geometry, "box", size=_fmt(shape.size_m))


def urdf_xml(description: RobotDescription) -> str:
    """The URDF text of ``description`` (one material per link colour)."""
    robot = ET.Element("robot", name=description.name)
    colours: dict[tuple, str] = {}
    for link in description.links:
        if link.visuals and link.colour not in colours:
            colours[link.colour] = f"colour_{len(colours)}"
            material = ET.SubElement(robot, "material", name=colours[link.colour])
            ET.SubElement(material, "color", rgba=_fmt(link.colour))
    for link in description.links:
        element = ET.SubElement(robot, "link", name=link.name)
        for shape in link.visuals:
            visual = ET.SubElement(element, "visual")
            _geometry(visual, shape)
            ET.SubElement(visual, "material", name=colours[link.colour])
        for shape in link.collisions:
            _geometry(ET.SubElement(element, "collision"), shape)
    for joint in description.joints:
        element = ET.SubElement(robot, "joint", name=joint.name, type="fixed" if joint.fixed else "revolute")
        ET.SubElement(element, "parent", link=joint.parent)
        ET.SubElement(element, "child", link=joint.child)
        _origin(element, joint.origin)
        if not joint.fixed:
            ET.SubElement(element, "axis", xyz=_fmt(joint.axis))
            ET.SubElement(element, "limit", lower=_fmt([joint.lower_rad]), upper=_fmt([joint.upper_rad]),
                          effort=_fmt([joint.effort_nm]), velocity=_fmt([joint.velocity_radps]))
    ET.indent(robot)
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"
