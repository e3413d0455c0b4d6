"""The demo's 3D figure: planned against executed TCP paths inside the safety workspace.

Planned paths are dashed, executed ones solid, one colour per instruction; a refused instruction's
trace is drawn in red with crosses, ending where it would have gone. The workspace box and the
keep-out zones come from the same ``SafetyConfig`` the planner and controller enforce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spatial_trace_ros.demo.report import InstructionReport
from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone, SafetyConfig

COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan", "tab:olive")


def _box_edges(lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    edges = []
    for i in range(8):
        for j in range(i + 1, 8):
            if np.count_nonzero(corners[i] != corners[j]) == 1:
                edges.append(corners[[i, j]])
    return edges


def _cylinder_lines(zone: CylinderZone, z_lo: float, z_hi: float) -> list[np.ndarray]:
    angles = np.linspace(0, 2 * np.pi, 49)
    cx, cy = zone.center_m
    ring = np.stack([cx + zone.radius_m * np.cos(angles), cy + zone.radius_m * np.sin(angles)], axis=1)
    lo, hi = max(zone.z_min_m, z_lo), min(zone.z_max_m, z_hi)
    lines = [np.column_stack([ring, np.full(len(ring), z)]) for z in (lo, hi)]
    for k in range(0, 48, 12):
        lines.append(np.array([[*ring[k], lo], [*ring[k], hi]]))
    return lines


def plot_paths(reports: list[InstructionReport], safety: SafetyConfig, out_path: Path, title: str) -> Path:
    """Draw every instruction's paths and save a PNG (kept small for the README)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws_lo, ws_hi = np.asarray(safety.workspace.min_m, float), np.asarray(safety.workspace.max_m, float)
    fig = plt.figure(figsize=(7.0, 6.0), dpi=90)
    ax = fig.add_subplot(projection="3d")
    for edge in _box_edges(ws_lo, ws_hi):
        ax.plot(*edge.T, color="0.6", linewidth=0.8)
    ax.plot([], [], color="0.6", linewidth=0.8, label="workspace")
    for zone in safety.keep_out_zones:
        lines = (_cylinder_lines(zone, ws_lo[2], ws_hi[2]) if isinstance(zone, CylinderZone)
                 else _box_edges(np.asarray(zone.min_m), np.asarray(zone.max_m)) if isinstance(zone, BoxZone) else [])
        for line in lines:
            ax.plot(*line.T, color="tab:red", linewidth=0.7, alpha=0.6)
        ax.plot([], [], color="tab:red", linewidth=0.7, alpha=0.6, label=f"keep-out: {zone.name}")
    for r in reports:
        colour = COLOURS[(r.index - 1) % len(COLOURS)]
        label = f"#{r.index} {r.instruction}"
        if len(r.planned_path_m):
            ax.plot(*r.planned_path_m.T, "--", color=colour, linewidth=1.2, label=f"{label} (planned)")
        if len(r.executed_path_m):
            ax.plot(*r.executed_path_m.T, "-", color=colour, linewidth=2.0, alpha=0.8, label=f"{label} (executed)")
        if r.verdict == "REJECT" and len(r.trace_base_m):
            ax.plot(*r.trace_base_m.T, "x-", color="red", linewidth=1.0, markersize=4, label=f"{label} (REFUSED)")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.set_box_aspect(tuple(ws_hi - ws_lo))
    ax.view_init(elev=28, azim=-60)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=6.5, bbox_to_anchor=(0.0, 1.0), frameon=False)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
