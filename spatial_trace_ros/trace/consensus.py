"""Multi-sample consensus (parallel test-time scaling): pick the trace most samples agree with.

Several samples of the same question are drawn at temperature > 0. Each parseable sample becomes a
3D trace; the medoid under dynamic time warping (DTW) is the sample closest to all others, so one
wild outlier cannot pull it away the way an average would. The agreement score says how many of the
requested samples lie within ``agreement_radius_m`` of the medoid; below ``min_agreement`` the caller
refuses the trace rather than act on a coin toss.

Agreement only means something between independent samples. When every parseable sample is the same
trace (a server that decodes greedily, whatever temperature was asked), the samples are one answer
repeated: the result says "no independent samples" and counts them as one (agreement 1/N), never as
N agreeing voices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.geometry.path import resample_by_count

# Traces are resampled to this many points before DTW, so point density does not change the score.
DTW_RESAMPLE_POINTS = 32


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean matched distance of the optimal DTW alignment of two (N, D) and (M, D) polylines.

    The classic DTW sum is divided by the length of the warping path, so the result is in the
    points' unit (metres for traces) and comparable between traces of different lengths.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) == 0 or len(b) == 0:
        raise ValueError(f"DTW needs two non-empty (N, D) arrays of the same D, got {a.shape} and {b.shape}")
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).tolist()
    n, m = len(a), len(b)
    # Row by row with plain floats (fast for the ~32-point traces this sees): (sum, path steps).
    inf = float("inf")
    prev = [(0.0, 0)] + [(inf, 0)] * m
    for i in range(n):
        row = [(inf, 0)]
        ci = cost[i]
        for j in range(m):
            # Predecessors: match (diagonal), step in a only, step in b only; shorter path on ties.
            best = min(prev[j], prev[j + 1], row[j])
            row.append((best[0] + ci[j], best[1] + 1))
        prev = row
    total, steps = prev[m]
    return float(total / steps)


@dataclass(frozen=True, eq=False)
class ConsensusResult:
    """Which candidate won, how many agree with it, and the pairwise DTW distances (metres).
    ``independent`` is False when all candidates (two or more) are one identical trace."""

    index: int
    agreement: float
    n_agreeing: int
    n_requested: int
    distances: np.ndarray
    independent: bool = True

    def describe(self, agreement_radius_m: float) -> str:
        if not self.independent:
            k = len(self.distances)
            return (
                f"no independent samples: all {k} parseable samples of {self.n_requested} are the same trace "
                f"(a server that decodes greedily?), so they count as one answer (agreement {self.agreement:.2f})"
            )
        return (
            f"{self.n_agreeing} of {self.n_requested} samples lie within {agreement_radius_m:.3f} m (DTW) of "
            f"the medoid sample #{self.index} (agreement {self.agreement:.2f})"
        )


def choose_consensus(
    candidates: Sequence[np.ndarray], n_requested: int, agreement_radius_m: float
) -> ConsensusResult:
    """The DTW medoid of ``candidates`` ((N_i, 3) point arrays of the parseable samples).

    ``n_requested`` counts every sample asked for, parseable or not, so unparseable samples lower the
    agreement instead of vanishing from it.
    """
    if not candidates:
        raise ValueError("consensus needs at least one candidate trace")
    if n_requested < len(candidates):
        raise ValueError(f"n_requested ({n_requested}) is smaller than the number of candidates ({len(candidates)})")
    if not agreement_radius_m > 0:
        raise ValueError(f"agreement_radius_m must be positive, got {agreement_radius_m}")
    arrays = [np.asarray(c, dtype=float) for c in candidates]
    if len(arrays) > 1 and all(a.shape == arrays[0].shape and np.array_equal(a, arrays[0]) for a in arrays[1:]):
        return ConsensusResult(0, 1 / n_requested, 1, n_requested, np.zeros((len(arrays), len(arrays))), False)
    resampled = [resample_by_count(c, DTW_RESAMPLE_POINTS) for c in arrays]
    k = len(resampled)
    distances = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            distances[i, j] = distances[j, i] = dtw_distance(resampled[i], resampled[j])
    # Ties (e.g. two samples) go to the earlier sample, so the result is deterministic.
    index = int(np.argmin(distances.sum(axis=1)))
    n_agreeing = int(np.sum(distances[index] <= agreement_radius_m))
    return ConsensusResult(index, n_agreeing / n_requested, n_agreeing, n_requested, distances)
