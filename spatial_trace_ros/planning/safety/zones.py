"""Keep-out geometry beyond single points: segments (the TCP's way between two waypoints, a link or
tool capsule's axis) against keep-out boxes and vertical cylinders, optionally inflated by a radius.

A straight segment between two waypoints outside a zone can still cut through it (a corner of a
box, the side of the robot-base cylinder); checking the segment closes that gap. The workspace box
and the table half-space are convex, so segments between points inside them stay inside: only the
zones need the swept check.
"""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone

_PARALLEL = 1e-12


def _slab(a: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval [t0, t1] (clipped to [0, 1]) where a + t d lies in every slab lo..hi along the
    last axis; empty where t0 > t1."""
    flat = np.abs(d) < _PARALLEL
    safe = np.where(flat, 1.0, d)
    ta, tb = (lo - a) / safe, (hi - a) / safe
    enter = np.where(flat, np.where((a >= lo) & (a <= hi), -np.inf, np.inf), np.minimum(ta, tb))
    leave = np.where(flat, np.where((a >= lo) & (a <= hi), np.inf, -np.inf), np.maximum(ta, tb))
    return np.maximum(enter.max(axis=-1), 0.0), np.minimum(leave.min(axis=-1), 1.0)


def segments_hit_zone(a: np.ndarray, b: np.ndarray, zone: BoxZone | CylinderZone,
                      inflate_m: np.ndarray | float = 0.0) -> np.ndarray:
    """Mask (...) of segments a -> b (..., 3) that touch the zone grown by ``inflate_m`` (a capsule's
    radius: a box grows into a larger box, which holds the exact rounded one, so the answer errs on the
    safe side by at most (sqrt(3) - 1) x the radius at the corners; a cylinder grows exactly)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    grow = np.broadcast_to(np.asarray(inflate_m, float), a.shape[:-1])[..., None]
    d = b - a
    if isinstance(zone, BoxZone):
        t0, t1 = _slab(a, d, np.asarray(zone.min_m) - grow, np.asarray(zone.max_m) + grow)
        return t0 <= t1
    t0, t1 = _slab(a[..., 2:], d[..., 2:], zone.z_min_m - grow, zone.z_max_m + grow)
    p = a[..., :2] - np.asarray(zone.center_m)
    dxy = d[..., :2]
    dd = np.einsum("...i,...i", dxy, dxy)
    moving = dd > _PARALLEL
    t_star = np.where(moving, -np.einsum("...i,...i", p, dxy) / np.where(moving, dd, 1.0), 0.0)
    t = np.clip(t_star, t0, np.maximum(t0, t1))
    with np.errstate(invalid="ignore"):  # t is +-inf where the z slab is missed: NaN, answered by t0 <= t1
        closest = np.linalg.norm(p + t[..., None] * dxy, axis=-1)
    return (t0 <= t1) & (closest <= zone.radius_m + grow[..., 0])
