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


def view_bounds(
    reports: list[InstructionReport], ws_lo: np.ndarray, ws_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
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


def _inside_only(line: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The polyline with its points outside the view box blanked (matplotlib's 3D axes do not clip)."""
    outside = np.any((line < lo - 1e-9) | (line > hi + 1e-9), axis=1)
    return np.where(outside[:, None], np.nan, line)


def _draw(ax: object, reports: list[InstructionReport], safety: SafetyConfig, lo: np.ndarray, hi: np.ndarray,
          labels: bool) -> None:
    """One 3D panel showing the box [lo, hi]; ``labels`` adds legend entries (once per figure)."""
    ws_lo, ws_hi = np.asarray(safety.workspace.min_m, float), np.asarray(safety.workspace.max_m, float)

    def label(text: str) -> str | None:
        return text if labels else None

    for i, edge in enumerate(box_edges(ws_lo, ws_hi)):
        part = clip_edge(edge, lo, hi)
        if part is not None:
            ax.plot(*part.T, color="0.35", linewidth=1.0, label=label("workspace limits") if i == 0 else None)
    if safety.table.enabled:
        xx, yy = np.meshgrid([lo[0], hi[0]], [lo[1], hi[1]])
        ax.plot_surface(xx, yy, np.full_like(xx, safety.table.z_m), color="0.85", alpha=0.35)
    for zone in safety.keep_out_zones:
        if isinstance(zone, CylinderZone):
            lines = [_inside_only(line, lo, hi) for line in _cylinder_lines(zone, lo[2], hi[2])]
        elif isinstance(zone, BoxZone):
            edges = box_edges(np.asarray(zone.min_m), np.asarray(zone.max_m))
            lines = [e for e in (clip_edge(e, lo, hi) for e in edges) if e is not None]
        else:
            lines = []
        for k, line in enumerate(lines):
            ax.plot(*line.T, color="tab:red", linewidth=0.8, alpha=0.6,
                    label=label(f"keep-out zone '{zone.name}'") if k == 0 else None)
    for r in reports:
        colour = COLOURS[(r.index - 1) % len(COLOURS)]
        name = f"#{r.index} {r.instruction}"
        if len(r.planned_path_m):
            ax.plot(*r.planned_path_m.T, ":", marker=".", markersize=3, color=colour, linewidth=1.0,
                    label=label(f"{name}: planned"))
        if len(r.executed_path_m):
            ax.plot(*r.executed_path_m.T, "-", color=colour, linewidth=2.2, alpha=0.7, label=label(f"{name}: executed"))
        for k, (obj, path) in enumerate(r.object_paths_m.items()):
            path = np.asarray(path, float).reshape(-1, 3)
            ax.plot(*path.T, "--", color=colour, linewidth=1.6, alpha=0.9,
                    label=label(f"{name}: the {obj} (simulated)") if k == 0 else None)
            ax.scatter(*path[-1], color=colour, marker="o", s=30)
        if r.verdict == "REJECT" and len(r.trace_base_m):
            ax.plot(*r.trace_base_m.T, "x-", color="red", linewidth=1.2, markersize=5, label=label(f"{name}: REFUSED"))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_zlim(lo[2], hi[2])
    ax.set_box_aspect(tuple(hi - lo))
    ax.set_xlabel("x [m]", fontsize=8)
    ax.set_ylabel("y [m]", fontsize=8)
    ax.set_zlabel("z [m]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.view_init(elev=30, azim=-130)


def plot_paths(reports: list[InstructionReport], safety: SafetyConfig, out_path: Path, title: str) -> Path:
    """The whole workspace on the left, a close-up of the paths on the right; saved as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws_lo, ws_hi = np.asarray(safety.workspace.min_m, float), np.asarray(safety.workspace.max_m, float)
    fig = plt.figure(figsize=(11.0, 5.6), dpi=80)
    overview = fig.add_subplot(1, 2, 1, projection="3d")
    _draw(overview, reports, safety, ws_lo, ws_hi, labels=True)
    overview.set_title("the workspace", fontsize=9)
    close_up = fig.add_subplot(1, 2, 2, projection="3d")
    _draw(close_up, reports, safety, *view_bounds(reports, ws_lo, ws_hi), labels=False)
    close_up.set_title("close-up", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.legend(loc="lower center", fontsize=7, ncol=2, frameon=False)
    fig.subplots_adjust(left=0.0, right=1.0, top=0.93, bottom=0.2, wspace=0.05)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
