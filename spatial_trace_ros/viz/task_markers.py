"""RViz markers of a task plan: where the tool acts (a labelled sphere per tool action) and the tool
path (the TCP, not the flange, along the plan). Plain data, like ``viz.markers``."""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.tools.description import ToolDescription
from spatial_trace_ros.viz.markers import MarkerSpec, Rgba

ACTION_COLORS: dict[str, Rgba] = {
    "open": (0.2, 0.7, 1.0, 1.0),
    "release": (0.2, 0.7, 1.0, 1.0),
    "grasp": (1.0, 0.8, 0.0, 1.0),
    "close": (0.8, 0.4, 1.0, 1.0),
}
TCP_PATH_COLOR: Rgba = (1.0, 1.0, 1.0, 0.8)
ACTION_DIAMETER_M = 0.025


def task_markers(plan: Plan, tool: ToolDescription) -> list[MarkerSpec]:
    """The TCP path and one sphere and label per tool action (empty for a plan without actions)."""
    if not plan.tool_actions:
        return []
    tcp = (plan.poses @ tool.flange_T_tcp)[:, :3, 3]
    specs = [MarkerSpec("task_tcp_path", 0, "line_strip", TCP_PATH_COLOR, (0.003, 0.0, 0.0), points=tcp)]
    for k, action in enumerate(plan.tool_actions):
        at = np.eye(4)
        at[:3, 3] = tcp[action.waypoint]
        colour = ACTION_COLORS.get(action.action, (1.0, 1.0, 1.0, 1.0))
        specs.append(MarkerSpec("task_actions", k, "sphere_list", colour, (ACTION_DIAMETER_M,) * 3,
                                points=tcp[action.waypoint][None]))
        label = at.copy()
        label[2, 3] += 0.04
        specs.append(MarkerSpec("task_labels", k, "text", colour, (0.0, 0.0, 0.025), pose=label,
                                text=f"{k + 1}. {action.action} ({plan.task})"))
    return specs
