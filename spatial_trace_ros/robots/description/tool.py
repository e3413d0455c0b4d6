"""What the description needs to know about the tool on the flange: its TCP and its shapes.

The tool description (TCP offset, collision capsules and boxes) is its own module; this is the small
shape the URDF builder takes, so any tool description converts to it in a few lines. Without a tool
the TCP is the flange itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.robots.description.urdf import Shape


@dataclass(frozen=True)
class ToolGeometry:
    """A tool on the flange: ``flange_T_tcp`` (4x4) and its shapes in the flange frame."""

    name: str = "flange"
    flange_T_tcp: np.ndarray = field(default_factory=lambda: np.eye(4))  # noqa: N815
    shapes: tuple[Shape, ...] = ()


BARE_FLANGE = ToolGeometry()
