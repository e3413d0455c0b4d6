"""What the description needs to know about the tool on the flange: its TCP and its shapes.

The tool description (TCP offset, collision capsules and boxes) is its own module; this is the small
shape the URDF builder takes, so any tool description converts to it in a few lines. Without a tool
the TCP is the flange itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.robots.description.urdf import Box, Shape, capsule, translation
from spatial_trace_ros.tools.description import ToolDescription


@dataclass(frozen=True)
class ToolGeometry:
    """A tool on the flange: ``flange_T_tcp`` (4x4) and its shapes in the flange frame."""

    name: str = "flange"
    flange_T_tcp: np.ndarray = field(default_factory=lambda: np.eye(4))  # noqa: N815
    shapes: tuple[Shape, ...] = ()


BARE_FLANGE = ToolGeometry()


def tool_geometry(tool: ToolDescription | None) -> ToolGeometry:
    """The URDF tool of a tool description (``tools/description.py``): its TCP, and its collision
    capsules (a cylinder and two spheres each) and boxes; ``None`` is the bare flange."""
    if tool is None:
        return BARE_FLANGE
    shapes: list[Shape] = []
    for shape in tool.collision:
        if shape.shape == "capsule":
            shapes.extend(capsule(shape.start_m, shape.end_m, shape.radius_m))
        else:
            size = tuple(2.0 * h for h in shape.half_extents_m)
            shapes.append(Box((size[0], size[1], size[2]), translation(shape.center_m)))
    return ToolGeometry(tool.name, tool.flange_T_tcp, tuple(shapes))
