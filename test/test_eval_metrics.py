"""Trace metrics: hand-computed known answers, agreement with plain-loop definitions, and properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spatial_trace_ros.eval.metrics import (
    compare_traces,
    discrete_frechet,
    dtw_distance,
    end_error,
    hausdorff,
    maptrace_dtw,
    ndtw,
    resampled_errors,
    sdtw,
    start_error,
)

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
SHIFTED = LINE + np.array([0.0, 1.0])


def _loop_table(a: np.ndarray, b: np.ndarray, frechet: bool) -> float:
    """The textbook recurrences, cell by cell, as the independent reference."""
    n, m = len(a), len(b)
    table = [[math.inf] * (m + 1) for _ in range(n + 1)]
    table[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = math.dist(a[i - 1], b[j - 1])
            best = min(table[i - 1][j - 1], table[i - 1][j], table[i][j - 1])
            table[i][j] = max(cost, best) if frechet else cost + best
    return table[n][m]


# -- known answers ------------------------------------------------------------------------------
def test_parallel_lines_known_answers() -> None:
    assert dtw_distance(LINE, SHIFTED) == pytest.approx(3.0)  # three pairs, 1 apart each
    assert discrete_frechet(LINE, SHIFTED) == pytest.approx(1.0)
    assert hausdorff(LINE, SHIFTED) == pytest.approx(1.0)
    assert start_error(LINE, SHIFTED) == pytest.approx(1.0)
    assert end_error(LINE, SHIFTED) == pytest.approx(1.0)


def test_dtw_warps_over_an_extra_point() -> None:
    a = np.array([[0.0, 0.0], [2.0, 0.0]])
    b = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    # The middle point of b must be matched to an end of a (cost 1); the ends match exactly.
    assert dtw_distance(a, b) == pytest.approx(1.0)
    assert discrete_frechet(a, b) == pytest.approx(1.0)
    assert hausdorff(a, b) == pytest.approx(1.0)


def test_frechet_respects_order_where_hausdorff_does_not() -> None:
    forward = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    backward = forward[::-1]
    assert hausdorff(forward, backward) == pytest.approx(0.0)  # same point set
    assert discrete_frechet(forward, backward) == pytest.approx(2.0)  # walking it backwards: leash 2
    # Cheapest alignment: (0-2) costs 2, then (1-1) costs 0, then (2-0) costs 2.
    assert dtw_distance(forward, backward) == pytest.approx(4.0)


def test_ndtw_and_sdtw_known_answers() -> None:
    assert ndtw(LINE, SHIFTED, threshold=1.0) == pytest.approx(math.exp(-3.0 / (3 * 1.0)))
    assert ndtw(LINE, SHIFTED, threshold=0.5) == pytest.approx(math.exp(-3.0 / (3 * 0.5)))
    assert sdtw(LINE, SHIFTED, threshold=1.0) == pytest.approx(math.exp(-1.0))  # ends 1.0 apart: success
    assert sdtw(LINE, SHIFTED, threshold=0.5) == 0.0  # ends 1.0 apart > 0.5: failure
    assert sdtw(LINE, SHIFTED, threshold=0.5, success=True) == pytest.approx(math.exp(-2.0))
    # |R| is the reference's length: nDTW is not symmetric when the lengths differ.
    short = np.array([[0.0, 1.0], [2.0, 1.0]])
    dtw = dtw_distance(LINE, short)
    assert ndtw(LINE, short, 1.0) == pytest.approx(math.exp(-dtw / 3))
    assert ndtw(short, LINE, 1.0) == pytest.approx(math.exp(-dtw / 2))


def test_maptrace_dtw_is_plain_dtw_in_the_unit_square() -> None:
    ref = np.array([[0.0, 0.0], [100.0, 0.0]])
    qry = np.array([[0.0, 100.0], [100.0, 100.0]])
    # 640x200 image: each pair is 100/200 = 0.5 apart in unit-square units; two pairs.
    assert maptrace_dtw(ref, qry, 640, 200) == pytest.approx(1.0)
    assert maptrace_dtw(ref, ref, 640, 200) == 0.0
    with pytest.raises(ValueError, match="2-D"):
        maptrace_dtw(np.zeros((2, 3)), np.zeros((2, 3)), 640, 480)


def test_resampled_errors_known_answers() -> None:
    ref = np.array([[0.0, 0.0], [1.0, 0.0]])
    rmse, mae = resampled_errors(ref, ref + np.array([0.0, 0.5]))
    assert rmse == pytest.approx(0.5) and mae == pytest.approx(0.5)
    # Along (t, 0) versus (0, t), t = k/99: distance t*sqrt(2).
    rmse, mae = resampled_errors(ref, np.array([[0.0, 0.0], [0.0, 1.0]]), count=100)
    ts = [k / 99 for k in range(100)]
    assert mae == pytest.approx(math.sqrt(2) * sum(ts) / 100)
    assert rmse == pytest.approx(math.sqrt(2) * math.sqrt(sum(t * t for t in ts) / 100))
    # Resampling by arc length: a trace with a dense first half still pairs points by distance travelled.
    dense = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [0.5, 0.0], [1.0, 0.0]])
    assert resampled_errors(ref, dense) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="NaN"):
        dtw_distance(LINE, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D but query is 3-D"):
        discrete_frechet(LINE, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        hausdorff(LINE, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="positive"):
        ndtw(LINE, LINE, 0.0)


# -- properties -----------------------------------------------------------------------------------
def traces(dim: int = 3, max_len: int = 12) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, st.tuples(st.integers(1, max_len), st.just(dim)),
                  elements=st.floats(-2, 2, allow_nan=False, allow_infinity=False))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(traces(d), traces(d))))
def test_vectorised_tables_match_the_plain_recurrences(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    assert dtw_distance(a, b) == pytest.approx(_loop_table(a, b, frechet=False), rel=1e-9, abs=1e-9)
    assert discrete_frechet(a, b) == pytest.approx(_loop_table(a, b, frechet=True), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(traces(), traces())
def test_symmetry_and_ordering(a: np.ndarray, b: np.ndarray) -> None:
    assert dtw_distance(a, b) == pytest.approx(dtw_distance(b, a), abs=1e-9)
    assert discrete_frechet(a, b) == pytest.approx(discrete_frechet(b, a), abs=1e-9)
    assert hausdorff(a, b) == pytest.approx(hausdorff(b, a), abs=1e-9)
    # A DTW alignment's sum is at least its largest pair, which is at least the best leash (Fréchet),
    # which is at least the Hausdorff distance (every point must be matched to something).
    assert dtw_distance(a, b) >= discrete_frechet(a, b) - 1e-9
    assert discrete_frechet(a, b) >= hausdorff(a, b) - 1e-9


@settings(max_examples=100, deadline=None)
@given(traces())
def test_identity_gives_zero(a: np.ndarray) -> None:
    assert dtw_distance(a, a) == 0.0
    assert discrete_frechet(a, a) == 0.0
    assert hausdorff(a, a) == 0.0
    assert ndtw(a, a, 0.2) == 1.0
    assert sdtw(a, a, 0.2) == 1.0
    cmp = compare_traces(a, a, threshold=0.2)
    assert (cmp.dtw, cmp.frechet, cmp.hausdorff, cmp.rmse, cmp.mae, cmp.start_error, cmp.end_error) == (0,) * 7
    assert cmp.ndtw == 1.0


def _densify(points: np.ndarray, extra: int) -> np.ndarray:
    """The same polyline with ``extra`` points inserted evenly on every segment."""
    out = [points[0]]
    for p, q in itertools.pairwise(points):
        for k in range(1, extra + 2):
            out.append(p + (q - p) * k / (extra + 1))
    return np.array(out)


@settings(max_examples=100, deadline=None)
@given(traces(max_len=8).filter(lambda a: len(a) >= 2), traces(max_len=8).filter(lambda a: len(a) >= 2),
       st.integers(1, 6))
def test_compare_traces_is_invariant_to_sampling_density(a: np.ndarray, b: np.ndarray, extra: int) -> None:
    base = compare_traces(a, b, threshold=0.2)
    dense = compare_traces(_densify(a, extra), _densify(b, extra), threshold=0.2)
    for name in ("dtw", "ndtw", "frechet", "hausdorff", "rmse", "mae", "start_error", "end_error"):
        assert getattr(dense, name) == pytest.approx(getattr(base, name), rel=1e-6, abs=1e-6), name


def test_compare_traces_agrees_with_the_single_metrics() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    cmp = compare_traces(a, b, threshold=0.3, resample_count=50)
    from spatial_trace_ros.geometry.path import resample_by_count

    ra, rb = resample_by_count(a, 50), resample_by_count(b, 50)
    assert cmp.dtw == pytest.approx(_loop_table(ra, rb, frechet=False))
    assert cmp.frechet == pytest.approx(_loop_table(ra, rb, frechet=True))
    assert cmp.ndtw == pytest.approx(math.exp(-cmp.dtw / (50 * 0.3)))
    assert cmp.rmse == pytest.approx(resampled_errors(a, b, 50)[0])
    assert cmp.start_error == pytest.approx(math.dist(a[0], b[0]))
