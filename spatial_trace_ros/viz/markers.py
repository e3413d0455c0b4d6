"""What RViz should draw for one planning attempt, as plain data (no ROS imports).

``plan_markers`` describes the trace (line strip), the waypoints (spheres coloured by verdict, the
offending ones enlarged in red), the workspace box, the table plane, the keep-out zones and the
verdict as text. ``spatial_trace_ros.ros.markers`` turns the list into a visualization_msgs/MarkerArray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from spatial_trace_ros.planning.plan import SafetyReport, Verdict
from spatial_trace_ros.planning.safety_config import BoxZone, SafetyConfig

MarkerKind = Literal["line_strip", "line_list", "sphere_list", "cube", "cylinder", "text"]
Rgba = tuple[float, float, float, float]

VERDICT_COLORS: dict[Verdict, Rgba] = {
    Verdict.ACCEPT: (0.1, 0.8, 0.2, 1.0),
    Verdict.ADJUSTED: (1.0, 0.7, 0.0, 1.0),
    Verdict.REJECT: (0.9, 0.1, 0.1, 1.0),
}
TRACE_COLOR: Rgba = (0.2, 0.5, 1.0, 1.0)
WORKSPACE_COLOR: Rgba = (0.7, 0.7, 0.7, 0.8)
ZONE_COLOR: Rgba = (1.0, 0.4, 0.0, 0.3)
TABLE_COLOR: Rgba = (0.5, 0.35, 0.2, 0.25)
PROBLEM_COLOR: Rgba = (1.0, 0.0, 0.3, 1.0)
WAYPOINT_DIAMETER_M = 0.008
TRACE_WIDTH_M = 0.004


@dataclass(frozen=True, eq=False)
class MarkerSpec:
    """One RViz marker. ``points`` (K, 3) for lines/lists; ``pose`` (4x4) places shapes and text;
    ``scale`` follows visualization_msgs/Marker (line width in x; shape size in x, y, z)."""

    ns: str
    marker_id: int
    kind: MarkerKind
    color: Rgba
    scale: tuple[float, float, float]
    points: np.ndarray | None = None
    colors: np.ndarray | None = None
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    text: str = ""


def _translation(p: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, 3] = p
    return out


def box_edges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 12 edges of an axis-aligned box as 24 line-list points."""
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    edges = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]
    return np.array([corners[i] for edge in edges for i in edge])


def cell_markers(config: SafetyConfig) -> list[MarkerSpec]:
    """The fixed parts of the cell: workspace box, table plane, keep-out zones."""
    lo, hi = config.workspace_min, config.workspace_max
    out = [MarkerSpec("workspace", 0, "line_list", WORKSPACE_COLOR, (0.003, 0.0, 0.0), points=box_edges(lo, hi))]
    if config.table.enabled:
        size = hi - lo
        center = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, config.table.z_m - 0.005])
        out.append(MarkerSpec("table", 0, "cube", TABLE_COLOR, (float(size[0]), float(size[1]), 0.01),
                              pose=_translation(center)))
    for k, zone in enumerate(config.keep_out_zones):
        if isinstance(zone, BoxZone):
            zlo, zhi = np.asarray(zone.min_m), np.asarray(zone.max_m)
            out.append(MarkerSpec("keep_out", k, "cube", ZONE_COLOR, tuple(float(v) for v in zhi - zlo),
                                  pose=_translation((zlo + zhi) / 2)))
        else:
            center = np.array([zone.center_m[0], zone.center_m[1], (zone.z_min_m + zone.z_max_m) / 2])
            d = 2 * zone.radius_m
            out.append(MarkerSpec("keep_out", k, "cylinder", ZONE_COLOR, (d, d, zone.z_max_m - zone.z_min_m),
                                  pose=_translation(center)))
    return out


def plan_markers(
    trace_base: np.ndarray, waypoints: np.ndarray, report: SafetyReport, config: SafetyConfig
) -> list[MarkerSpec]:
    """Everything for one attempt: cell, trace, waypoints coloured by verdict, problems, verdict text."""
    out = cell_markers(config)
    if len(trace_base) >= 2:
        out.append(MarkerSpec("trace", 0, "line_strip", TRACE_COLOR, (TRACE_WIDTH_M, 0.0, 0.0),
                              points=np.asarray(trace_base, float)))
    positions = np.asarray(waypoints, float)[:, :3, 3] if len(waypoints) else np.zeros((0, 3))
    color = VERDICT_COLORS[report.verdict]
    if len(positions):
        d = WAYPOINT_DIAMETER_M
        out.append(MarkerSpec("waypoints", 0, "sphere_list", color, (d, d, d), points=positions,
                              colors=np.tile(color, (len(positions), 1))))
    flagged = sorted({r.waypoint for r in report.reasons if r.waypoint is not None and r.waypoint < len(positions)})
    if flagged and report.verdict is Verdict.REJECT:
        d = 3 * WAYPOINT_DIAMETER_M
        out.append(MarkerSpec("problems", 0, "sphere_list", PROBLEM_COLOR, (d, d, d), points=positions[flagged]))
    anchor = positions[0] if len(positions) else (trace_base[0] if len(trace_base) else config.workspace_max)
    text_pose = _translation(np.asarray(anchor, float) + np.array([0.0, 0.0, 0.12]))
    out.append(MarkerSpec("verdict", 0, "text", color, (0.0, 0.0, 0.03), pose=text_pose, text=_wrap(report.summary())))
    return out


def _wrap(text: str, width: int = 60) -> str:
    """Break long verdict text into lines RViz can show."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)
