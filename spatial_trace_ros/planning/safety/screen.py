"""A fast screen of one configuration for the run-time guard: "certainly clear" or "look closer".

The guard checks one configuration per control period, and the array form of ``WaypointChecks``
spends most of its time in numpy's per-call overhead on arrays of one row (hundreds of microseconds
against a 2 ms period). The screen computes the same quantities for one pose and one joint row in
plain Python floats (the link frames once, 8-15 pair distances, one 6x6 eigenproblem) and answers
True only when every check passes with a margin (``SCREEN_MARGIN``): then the full check would find
nothing, not even a slow-down note, and the guard skips it. Anything else (a limit near or crossed, a
zone marked for the links, a model without capsules) answers False and the full check runs and says
why, so the guard's answers are exactly the full check's.
"""

from __future__ import annotations

import math

import numpy as np

from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone, SafetyConfig
from spatial_trace_ros.robots.model import RobotModel

# Relative / absolute margin by which every quantity must clear its limit (round-off between the
# scalar and the array arithmetic is ~1e-15; this is far above it and far below any physical meaning).
SCREEN_MARGIN = 1e-9


def segment_distance(a0: list[float], a1: list[float], b0: list[float], b1: list[float]) -> float:
    """Closest distance between two segments (the formulas of ``volumes.segment_distances``)."""
    d1 = (a1[0] - a0[0], a1[1] - a0[1], a1[2] - a0[2])
    d2 = (b1[0] - b0[0], b1[1] - b0[1], b1[2] - b0[2])
    r = (a0[0] - b0[0], a0[1] - b0[1], a0[2] - b0[2])
    a = d1[0] * d1[0] + d1[1] * d1[1] + d1[2] * d1[2]
    e = d2[0] * d2[0] + d2[1] * d2[1] + d2[2] * d2[2]
    f = d2[0] * r[0] + d2[1] * r[1] + d2[2] * r[2]
    eps = 1e-12
    if a <= eps and e <= eps:
        s = t = 0.0
    elif a <= eps:
        s, t = 0.0, min(max(f / e, 0.0), 1.0)
    else:
        c = d1[0] * r[0] + d1[1] * r[1] + d1[2] * r[2]
        if e <= eps:
            s, t = min(max(-c / a, 0.0), 1.0), 0.0
        else:
            b = d1[0] * d2[0] + d1[1] * d2[1] + d1[2] * d2[2]
            denom = a * e - b * b
            s = min(max((b * f - c * e) / denom, 0.0), 1.0) if denom > eps else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                s, t = min(max(-c / a, 0.0), 1.0), 0.0
            elif t > 1.0:
                s, t = min(max((b - c) / a, 0.0), 1.0), 1.0
    return math.dist((a0[0] + d1[0] * s, a0[1] + d1[1] * s, a0[2] + d1[2] * s),
                     (b0[0] + d2[0] * t, b0[1] + d2[1] * t, b0[2] + d2[2] * t))


def bounding_spheres(a: list[list[float]], b: list[list[float]]) -> list[tuple[list[float], float]]:
    """Centre and radius of the sphere around each segment a[k]-b[k] (for a cheap first distance test)."""
    return [([(p[0] + q[0]) / 2, (p[1] + q[1]) / 2, (p[2] + q[2]) / 2], math.dist(p, q) / 2)
            for p, q in zip(a, b, strict=True)]


def segments_apart(a0: list[float], a1: list[float], b0: list[float], b1: list[float],
                   sa: tuple[list[float], float], sb: tuple[list[float], float], gap_m: float) -> bool:
    """True when segments a0-a1 and b0-b1 (bounding spheres ``sa``, ``sb``) are more than ``gap_m``
    apart: the spheres decide far pairs, the exact distance the rest."""
    if math.dist(sa[0], sb[0]) - sa[1] - sb[1] > gap_m:
        return True
    return segment_distance(a0, a1, b0, b1) > gap_m


def segment_clear_of_zone(a: list[float], b: list[float], grow_m: float, zone: BoxZone | CylinderZone) -> bool:
    """True when every point of segment a-b, grown by ``grow_m``, is certainly outside the zone (a box:
    the grown bounding box misses it; a cylinder: the z ranges miss or the xy way passes outside)."""
    g = grow_m + SCREEN_MARGIN
    if isinstance(zone, BoxZone):
        lo, hi = zone.min_m, zone.max_m
        return any(max(a[k], b[k]) + g < lo[k] or min(a[k], b[k]) - g > hi[k] for k in range(3))
    if max(a[2], b[2]) + g < zone.z_min_m or min(a[2], b[2]) - g > zone.z_max_m:
        return True
    cx, cy = zone.center_m[0], zone.center_m[1]
    ax, ay, dx, dy = a[0] - cx, a[1] - cy, b[0] - a[0], b[1] - a[1]
    dd = dx * dx + dy * dy
    t = min(max(-(ax * dx + ay * dy) / dd, 0.0), 1.0) if dd > 1e-12 else 0.0
    return math.hypot(ax + t * dx, ay + t * dy) > zone.radius_m + g


class ConfigurationScreen:
    """``clear(pose, q, start)``: True only when ``WaypointChecks.check`` of that one waypoint (reached
    from TCP position ``start``) would return no reason at all."""

    def __init__(self, config: SafetyConfig, model: RobotModel) -> None:
        self.config = config
        self.model = model
        self._pairs = model.self_collision_pairs()
        self._lo = [float(v) for v in config.workspace_min]
        self._hi = [float(v) for v in config.workspace_max]
        margin = config.joint_limits.margin_rad
        self._q_lo = (model.lower_rad + margin).tolist()
        self._q_hi = (model.upper_rad - margin).tolist()
        self._usable = not any(z.check_links for z in config.keep_out_zones)

    def clear(self, pose: np.ndarray, q: np.ndarray, start: np.ndarray | None) -> bool:
        if not self._usable:
            return False
        q_list = q.tolist()
        if not all(math.isfinite(v) and lo < v < hi for v, lo, hi in zip(q_list, self._q_lo, self._q_hi, strict=True)):
            return False
        p = pose[:3, 3].tolist()
        if start is not None and not self._point_clear(p, start.tolist()):
            return False
        if start is None and not self._point_clear(p, p):
            return False
        return self._arm_clear(q)

    # -- the TCP ---------------------------------------------------------------------------------------
    def _point_clear(self, p: list[float], s: list[float]) -> bool:
        """Inside the workspace, above the table, and the segment s -> p away from every zone."""
        m = SCREEN_MARGIN
        if not all(lo + m < v < hi - m for v, lo, hi in zip(p, self._lo, self._hi, strict=True)):
            return False
        table = self.config.table
        if table.enabled and not p[2] > table.z_m + table.tcp_clearance_m + m:
            return False
        return all(segment_clear_of_zone(s, p, 0.0, zone) for zone in self.config.keep_out_zones)

    # -- the arm ---------------------------------------------------------------------------------------
    def _arm_clear(self, q: np.ndarray) -> bool:
        cfg, model = self.config, self.model
        one = model.one_configuration(q)
        jac = one.jacobian
        eig = np.linalg.eigvalsh(jac.T @ jac if jac.shape[1] <= 6 else jac @ jac.T)
        lo, hi = float(eig[0]), float(eig[-1])
        limit = cfg.singularity.slow_down_condition * (1.0 - SCREEN_MARGIN)
        if not (lo > hi * 1e-14 and hi < lo * limit * limit):
            return False
        a, b, r = one.p0, one.p1, one.radii
        if cfg.table.enabled and cfg.table.check_links:
            floor = cfg.table.z_m + SCREEN_MARGIN
            if any(min(a[k][2], b[k][2]) - r[k] < floor for k in range(1, len(r))):
                return False
        if cfg.self_collision.enabled:
            margin = cfg.self_collision.margin_m + SCREEN_MARGIN
            spheres = bounding_spheres(a, b)
            for i, j in self._pairs:
                if not segments_apart(a[i], b[i], a[j], b[j], spheres[i], spheres[j], margin + r[i] + r[j]):
                    return False
        return True
