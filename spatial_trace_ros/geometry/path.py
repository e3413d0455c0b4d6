"""Polyline utilities on (N, D) point arrays: arc length, resampling, smoothing."""

from __future__ import annotations

import numpy as np


def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"a path must be a non-empty (N, D) array, got shape {p.shape}")
    return p


def spacing(points: np.ndarray) -> np.ndarray:
    """Length of each of the N-1 segments."""
    return np.linalg.norm(np.diff(_points(points), axis=0), axis=1)


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative distance along the path at each of the N points (starts at 0)."""
    return np.concatenate([[0.0], np.cumsum(spacing(points))])


def path_length(points: np.ndarray) -> float:
    return float(arc_length(points)[-1])


def _distinct(points: np.ndarray) -> np.ndarray:
    """Drop points that repeat the previous one (zero-length segments break interpolation)."""
    p = _points(points)
    keep = np.concatenate([[True], spacing(p) > 1e-12])
    return p[keep]


def resample_by_count(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along the path, first and last points kept."""
    if count < 2:
        raise ValueError(f"resampling needs at least 2 points, got {count}")
    p = _distinct(points)
    if len(p) == 1:
        return np.repeat(p, count, axis=0)
    s = arc_length(p)
    targets = np.linspace(0.0, s[-1], count)
    return np.column_stack([np.interp(targets, s, p[:, k]) for k in range(p.shape[1])])


def resample_by_spacing(points: np.ndarray, spacing_m: float) -> np.ndarray:
    """Evenly spaced points no further apart than ``spacing_m``, both ends kept."""
    if not spacing_m > 0:
        raise ValueError(f"spacing must be positive, got {spacing_m}")
    length = path_length(_distinct(points))
    count = max(2, int(np.ceil(length / spacing_m - 1e-9)) + 1)
    return resample_by_count(points, count)


def smooth(points: np.ndarray, window: int = 5, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing with both end points held where they were."""
    p = _points(points)
    window = min(window, len(p) if len(p) % 2 == 1 else len(p) - 1)
    if window <= polyorder:
        return p.copy()
    from scipy.signal import savgol_filter  # imported here: scipy.signal costs seconds at start-up

    out = savgol_filter(p, window, polyorder, axis=0, mode="interp")
    out[0], out[-1] = p[0], p[-1]
    return out
