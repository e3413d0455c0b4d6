"""Geometric tests on many configurations at once: points in keep-out zones and the workspace box,
capsule-to-capsule distances for coarse self-collision."""

from __future__ import annotations

import numpy as np

from spatial_trace_ros.planning.safety_config import BoxZone, CylinderZone
from spatial_trace_ros.robots.model import RobotModel


def inside_zone(points: np.ndarray, zone: BoxZone | CylinderZone) -> np.ndarray:
    """Mask (N,) of points (N, 3) inside the zone (its boundary counts as inside)."""
    p = np.asarray(points, float).reshape(-1, 3)
    if isinstance(zone, BoxZone):
        return np.all((p >= np.asarray(zone.min_m)) & (p <= np.asarray(zone.max_m)), axis=1)
    radial = np.hypot(p[:, 0] - zone.center_m[0], p[:, 1] - zone.center_m[1])
    return (radial <= zone.radius_m) & (p[:, 2] >= zone.z_min_m) & (p[:, 2] <= zone.z_max_m)


def outside_box_distance(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance (N,) from each point to the box (0 inside)."""
    p = np.asarray(points, float).reshape(-1, 3)
    return np.linalg.norm(np.maximum(lo - p, 0.0) + np.maximum(p - hi, 0.0), axis=1)


def segment_distances(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Closest distance between segments a0-a1 and b0-b1, element-wise over leading axes (..., 3)."""
    d1, d2, r = a1 - a0, b1 - b0, a0 - b0
    a = np.einsum("...i,...i", d1, d1)
    e = np.einsum("...i,...i", d2, d2)
    f = np.einsum("...i,...i", d2, r)
    c = np.einsum("...i,...i", d1, r)
    b = np.einsum("...i,...i", d1, d2)
    eps = 1e-12
    a_ok, e_ok = a > eps, e > eps
    safe_a, safe_e = np.where(a_ok, a, 1.0), np.where(e_ok, e, 1.0)
    denom = a * e - b * b
    # General case: closest points of the infinite lines, clamped to the segments (Ericson, 5.1.9).
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.where(denom > eps, denom, 1.0), 0.0, 1.0), 0.0)
    t = (b * s + f) / safe_e
    s = np.where(t < 0.0, np.clip(-c / safe_a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / safe_a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # Degenerate segments (single points).
    s = np.where(a_ok & ~e_ok, np.clip(-c / safe_a, 0.0, 1.0), np.where(a_ok, s, 0.0))
    t = np.where(~a_ok & e_ok, np.clip(f / safe_e, 0.0, 1.0), np.where(e_ok, t, 0.0))
    ca = a0 + d1 * s[..., None]
    cb = b0 + d2 * t[..., None]
    return np.linalg.norm(ca - cb, axis=-1)


def self_collision_clearance(model: RobotModel, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each joint row: the smallest surface gap [m] over the model's self-collision pairs
    (negative = overlap) and the index of that pair in ``model.self_collision_pairs()``."""
    pairs = model.self_collision_pairs()
    p0, p1, radii = model.capsule_segments_many(qs)
    if not pairs:
        return np.full(len(p0), np.inf), np.zeros(len(p0), int)
    i, j = np.array(pairs).T
    dist = segment_distances(p0[:, i], p1[:, i], p0[:, j], p1[:, j]) - (radii[i] + radii[j])
    worst = np.argmin(dist, axis=1)
    return dist[np.arange(len(dist)), worst], worst
