"""The demo's 3D figure: planned against executed TCP paths inside the safety workspace.

Planned paths are dotted lines with their waypoints, executed ones solid, one colour per instruction;
a refused instruction's trace is drawn in red with crosses, ending where it would have gone. The
workspace box, the table plane and the keep-out zones come from the same ``SafetyConfig`` the
planner and controller enforce. The view is zoomed on the paths and the robot base (the workspace
is much larger than a table-top task); the workspace's edges are drawn where they cross the view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spatial_trace_ros.demo.report import InstructionReport
from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone, SafetyConfig

COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan", "tab:olive")
VIEW_MARGIN_M = 0.1


def box_edges(lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    """The 12 edges (2 x 3 each) of the axis-aligned box [lo, hi]."""
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    return [corners[[i, j]] for i in range(8) for j in range(i + 1, 8)
            if np.count_nonzero(corners[i] != corners[j]) == 1]


def clip_edge(edge: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """The part of an axis-aligned edge inside the view box [lo, hi], or None if it misses the view."""
    axis = int(np.argmax(np.abs(edge[1] - edge[0])))
    fixed = [k for k in range(3) if k != axis]
    if any(edge[0, k] < lo[k] - 1e-9 or edge[0, k] > hi[k] + 1e-9 for k in fixed):
        return None
    a, b = sorted((edge[0, axis], edge[1, axis]))
    a, b = max(a, lo[axis]), min(b, hi[axis])
    if a >= b:
        return None
    out = edge.copy()
    out[0, axis], out[1, axis] = a, b
    return out


def view_bounds(reports: list[InstructionReport], ws_lo: np.ndarray, ws_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every path and the robot base, with a margin, inside the workspace box."""
    clouds = [np.zeros((1, 3))]
    for r in reports:
        clouds += [r.planned_path_m, r.executed_path_m, r.trace_base_m]
    pts = np.vstack([c.reshape(-1, 3) for c in clouds])
    lo = np.maximum(pts.min(axis=0) - VIEW_MARGIN_M, ws_lo)
    hi = np.minimum(pts.max(axis=0) + VIEW_MARGIN_M, ws_hi)
    lo[2] = ws_lo[2]  # always show the table
    return lo, hi


def _cylinder_lines(zone: CylinderZone, z_lo: float, z_hi: float) -> list[np.ndarray]:
    angles = np.linspace(0, 2 * np.pi, 49)
    cx, cy = zone.center_m
    ring = np.stack([cx + zone.radius_m * np.cos(angles), cy + zone.radius_m * np.sin(angles)], axis=1)
    lo, hi = max(zone.z_min_m, z_lo), min(zone.z_max_m, z_hi)
    lines = [np.column_stack([ring, np.full(len(ring), z)]) for z in (lo, hi)]
    lines += [np.array([[*ring[k], lo], [*ring[k], hi]]) for k in range(0, 48, 12)]
    return lines


def plot_paths(reports: list[InstructionReport], safety: SafetyConfig, out_path: Path, title: str) -> Path:
    """Draw every instruction's paths and save a PNG (kept small for the README)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws_lo, ws_hi = np.asarray(safety.workspace.min_m, float), np.asarray(safety.workspace.max_m, float)
    lo, hi = view_bounds(reports, ws_lo, ws_hi)
    fig = plt.figure(figsize=(7.5, 6.0), dpi=90)
    ax = fig.add_subplot(projection="3d")
    for edge in box_edges(ws_lo, ws_hi):
        part = clip_edge(edge, lo, hi)
        if part is not None:
            ax.plot(*part.T, color="0.45", linewidth=1.0)
    ax.plot([], [], color="0.45", linewidth=1.0, label="workspace limits")
    if safety.table.enabled:
        xx, yy = np.meshgrid([lo[0], hi[0]], [lo[1], hi[1]])
        ax.plot_surface(xx, yy, np.full_like(xx, safety.table.z_m), color="0.85", alpha=0.35)
    for zone in safety.keep_out_zones:
        if isinstance(zone, CylinderZone):
            lines = _cylinder_lines(zone, lo[2], hi[2])
        elif isinstance(zone, BoxZone):
            lines = [e for e in (clip_edge(e, lo, hi) for e in box_edges(np.asarray(zone.min_m), np.asarray(zone.max_m)))
                     if e is not None]
        else:
            lines = []
        for line in lines:
            ax.plot(*line.T, color="tab:red", linewidth=0.8, alpha=0.6)
        ax.plot([], [], color="tab:red", linewidth=0.8, alpha=0.6, label=f"keep-out zone '{zone.name}'")
    for r in reports:
        colour = COLOURS[(r.index - 1) % len(COLOURS)]
        label = f"#{r.index} {r.instruction}"
        if len(r.planned_path_m):
            ax.plot(*r.planned_path_m.T, ":", marker=".", markersize=3, color=colour, linewidth=1.0,
                    label=f"{label}: planned")
        if len(r.executed_path_m):
            ax.plot(*r.executed_path_m.T, "-", color=colour, linewidth=2.2, alpha=0.7, label=f"{label}: executed")
        if r.verdict == "REJECT" and len(r.trace_base_m):
            ax.plot(*r.trace_base_m.T, "x-", color="red", linewidth=1.2, markersize=5, label=f"{label}: REFUSED")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_box_aspect(tuple(hi - lo))
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.view_init(elev=30, azim=-130)
    ax.set_title(title, fontsize=10)
    fig.legend(loc="lower center", fontsize=7, ncol=2, frameon=False)
    fig.subplots_adjust(left=0.0, right=1.0, top=0.95, bottom=0.2)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
