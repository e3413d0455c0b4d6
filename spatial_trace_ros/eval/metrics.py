"""Distances between two traces (ordered point sequences, any dimension): the numbers a lab uses to
say how far a predicted trace is from the true one.

Conventions, so results compare across papers:

- ``reference`` is the ground truth, ``query`` the prediction; both are (N, D) arrays.
- :func:`dtw_distance` is the classic dynamic-time-warping cost: the sum of point distances along the
  cheapest monotone alignment (lower is better, units of the points).
- :func:`ndtw` is Ilharco et al. 2019, ``exp(-DTW / (|R| * d_th))`` in (0, 1], higher is better;
  :func:`sdtw` multiplies it by success.
- :func:`maptrace_dtw` is *plain DTW* on pixel coordinates divided by the image size (the unit square),
  as MapTrace reports it: unitless, lower is better. It is not a normalised DTW; the name says whose
  convention it follows so nobody reads it as nDTW.
- :func:`discrete_frechet` and :func:`hausdorff` are the usual discrete definitions.
- :func:`compare_traces` first resamples both traces to the same number of points evenly spaced along
  their arc length, so every number it returns depends on the traces' shapes, not on how densely a
  model happened to sample them.

The two dynamic programmes (DTW, Fréchet) are vectorised over anti-diagonals: every cell of one
anti-diagonal depends only on the two before it, and in a flattened (N+1) x (M+1) table the cells of
one anti-diagonal are a strided slice, so each step is a handful of numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from spatial_trace_ros.geometry import path as pathlib


def as_trace(points: np.ndarray, name: str = "trace") -> np.ndarray:
    """``points`` as a finite (N, D) float array with N >= 1, or a ValueError naming the problem."""
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (N, D) array of points, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates; drop or fill those points first")
    return arr


def _pair(reference: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = as_trace(reference, "reference")
    qry = as_trace(query, "query")
    if ref.shape[1] != qry.shape[1]:
        raise ValueError(f"reference is {ref.shape[1]}-D but query is {qry.shape[1]}-D; compare like with like")
    return ref, qry


def _alignment_table(cost: np.ndarray, frechet: bool) -> float:
    """Final cell of the DTW (sum) or discrete Fréchet (max) table for a pairwise ``cost`` matrix."""
    n, m = cost.shape
    width = m + 1
    table = np.full((n + 1) * width, np.inf)
    table[0] = 0.0
    padded = np.full((n + 1, width), np.inf)
    padded[1:, 1:] = cost
    flat_cost = padded.ravel()
    # Cell (i, j) sits at i * width + j; on anti-diagonal s = i + j that is s + i * m, step m.
    for s in range(2, n + m + 1):
        i0, i1 = max(1, s - m), min(n, s - 1)
        cells = slice(s + i0 * m, s + i1 * m + 1, m)
        diag = table[s + i0 * m - width - 1: s + i1 * m - width: m]
        up = table[s + i0 * m - width: s + i1 * m - width + 1: m]
        left = table[s + i0 * m - 1: s + i1 * m: m]
        best = np.minimum(np.minimum(diag, up), left)
        table[cells] = np.maximum(flat_cost[cells], best) if frechet else flat_cost[cells] + best
    return float(table[-1])


def dtw_distance(reference: np.ndarray, query: np.ndarray) -> float:
    """Dynamic-time-warping cost: sum of Euclidean distances along the cheapest monotone alignment."""
    ref, qry = _pair(reference, query)
    return _alignment_table(cdist(ref, qry), frechet=False)


def ndtw(reference: np.ndarray, query: np.ndarray, threshold: float) -> float:
    """Normalised DTW (Ilharco et al. 2019): ``exp(-DTW / (|R| * threshold))``, 1 for identical traces.

    ``threshold`` is the success distance d_th in the points' units (e.g. 0.2 m).
    """
    if not threshold > 0:
        raise ValueError(f"nDTW threshold must be positive, got {threshold}")
    ref, qry = _pair(reference, query)
    return float(np.exp(-dtw_distance(ref, qry) / (len(ref) * threshold)))


def sdtw(reference: np.ndarray, query: np.ndarray, threshold: float, success: bool | None = None) -> float:
    """Success-weighted nDTW: nDTW when the query succeeded, else 0.

    By default success means the query ends within ``threshold`` of the reference's end, as in the
    original definition; pass ``success`` to use another rule (e.g. the benchmark's box rule).
    """
    ref, qry = _pair(reference, query)
    if success is None:
        success = end_error(ref, qry) <= threshold
    return ndtw(ref, qry, threshold) if success else 0.0


def maptrace_dtw(reference_uv: np.ndarray, query_uv: np.ndarray, width: float, height: float) -> float:
    """MapTrace's trace score: plain DTW on pixel coordinates scaled to the unit square by the image
    size. Unitless, lower is better, 0 for identical traces. Not nDTW (see the module docstring)."""
    if not (width > 0 and height > 0):
        raise ValueError(f"image size must be positive, got {width}x{height}")
    ref, qry = _pair(reference_uv, query_uv)
    if ref.shape[1] != 2:
        raise ValueError(f"maptrace_dtw compares 2-D pixel traces, got {ref.shape[1]}-D points")
    scale = np.array([width, height], dtype=float)
    return dtw_distance(ref / scale, qry / scale)


def discrete_frechet(reference: np.ndarray, query: np.ndarray) -> float:
    """Discrete Fréchet distance: the shortest leash that lets both walk their points in order."""
    ref, qry = _pair(reference, query)
    return _alignment_table(cdist(ref, qry), frechet=True)


def hausdorff(reference: np.ndarray, query: np.ndarray) -> float:
    """Symmetric Hausdorff distance between the two point sets (order ignored)."""
    ref, qry = _pair(reference, query)
    d = cdist(ref, qry)
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def start_error(reference: np.ndarray, query: np.ndarray) -> float:
    """Distance between the first points."""
    ref, qry = _pair(reference, query)
    return float(np.linalg.norm(ref[0] - qry[0]))


def end_error(reference: np.ndarray, query: np.ndarray) -> float:
    """Distance between the last points."""
    ref, qry = _pair(reference, query)
    return float(np.linalg.norm(ref[-1] - qry[-1]))


def resampled_errors(reference: np.ndarray, query: np.ndarray, count: int = 100) -> tuple[float, float]:
    """RMSE and MAE of point-to-point distances after resampling both traces to ``count`` points
    evenly spaced along their arc length (so the i-th points are at the same fraction of the way)."""
    ref, qry = _pair(reference, query)
    d = np.linalg.norm(pathlib.resample_by_count(ref, count) - pathlib.resample_by_count(qry, count), axis=1)
    return float(np.sqrt(np.mean(d**2))), float(np.mean(d))


@dataclass(frozen=True)
class TraceComparison:
    """Every shape metric of one prediction against its reference, in the points' units.

    All but the start/end errors are computed on both traces resampled to ``resample_count`` points
    evenly spaced along their arc length.
    """

    start_error: float
    end_error: float
    dtw: float
    ndtw: float
    sdtw: float
    frechet: float
    hausdorff: float
    rmse: float
    mae: float
    resample_count: int


def compare_traces(
    reference: np.ndarray, query: np.ndarray, threshold: float, resample_count: int = 100,
    success: bool | None = None,
) -> TraceComparison:
    """All metrics at once. ``threshold`` is d_th for nDTW/SDTW; ``success`` overrides SDTW's rule."""
    ref, qry = _pair(reference, query)
    ref_n = pathlib.resample_by_count(ref, resample_count)
    qry_n = pathlib.resample_by_count(qry, resample_count)
    cost = cdist(ref_n, qry_n)
    dtw = _alignment_table(cost, frechet=False)
    nd = float(np.exp(-dtw / (len(ref_n) * threshold)))
    if success is None:
        success = end_error(ref, qry) <= threshold
    d = np.linalg.norm(ref_n - qry_n, axis=1)
    return TraceComparison(
        start_error=start_error(ref, qry),
        end_error=end_error(ref, qry),
        dtw=dtw,
        ndtw=nd,
        sdtw=nd if success else 0.0,
        frechet=_alignment_table(cost, frechet=True),
        hausdorff=float(max(cost.min(axis=1).max(), cost.min(axis=0).max())),
        rmse=float(np.sqrt(np.mean(d**2))),
        mae=float(np.mean(d)),
        resample_count=resample_count,
    )
