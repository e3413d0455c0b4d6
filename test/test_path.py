"""Polyline utilities: lengths, resampling and smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spatial_trace_ros.geometry import (
    Trace,
    Transform,
    arc_length,
    path_length,
    resample_by_count,
    resample_by_spacing,
    smooth,
)

L_SHAPE = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.3, 0.4, 0.0]])


def test_lengths_known_answer() -> None:
    np.testing.assert_allclose(arc_length(L_SHAPE), [0.0, 0.3, 0.7])
    assert path_length(L_SHAPE) == pytest.approx(0.7)


def test_resample_by_spacing_known_answer() -> None:
    out = resample_by_spacing(L_SHAPE, 0.1)
    assert len(out) == 8
    np.testing.assert_allclose(out[3], [0.3, 0.0, 0.0])
    np.testing.assert_allclose(out[-1], L_SHAPE[-1])
    np.testing.assert_allclose(np.linalg.norm(np.diff(out, axis=0), axis=1)[[0, 4]], 0.1)


def test_resample_handles_repeated_points() -> None:
    pts = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0]], float)
    np.testing.assert_allclose(resample_by_count(pts, 3), [[0, 0, 0], [0.5, 0, 0], [1, 0, 0]])


paths = arrays(np.float64, st.tuples(st.integers(2, 30), st.just(3)), elements=st.floats(-1, 1))


@settings(max_examples=200, deadline=None)
@given(paths, st.floats(0.01, 0.5))
def test_resampling_keeps_ends_and_never_exceeds_spacing(pts: np.ndarray, step: float) -> None:
    out = resample_by_spacing(pts, step)
    np.testing.assert_allclose(out[0], pts[0])
    np.testing.assert_allclose(out[-1], pts[-1], atol=1e-9)
    assert np.all(np.linalg.norm(np.diff(out, axis=0), axis=1) <= step + 1e-9)
    assert path_length(out) <= path_length(pts) + 1e-9


def test_smooth_keeps_ends_and_reduces_noise() -> None:
    rng = np.random.default_rng(0)
    line = np.column_stack([np.linspace(0, 1, 41), np.zeros(41), np.zeros(41)])
    noisy = line + rng.normal(0, 0.01, line.shape)
    out = smooth(noisy, window=7)
    np.testing.assert_allclose(out[[0, -1]], noisy[[0, -1]])
    assert np.abs(out - line)[1:-1].mean() < np.abs(noisy - line)[1:-1].mean()


def test_trace_transform_checks_frames_and_validity() -> None:
    pts = np.array([[0, 0, 1.0], [np.nan, 0, 1.0], [0.1, 0, 1.0]])
    trace = Trace(pts, frame_id="camera")
    assert trace.valid.tolist() == [True, False, True]
    assert trace.length_m == pytest.approx(0.1)
    moved = trace.transformed(Transform.from_rpy([1, 0, 0], [0, 0, 0], "base", "camera"))
    assert moved.frame_id == "base"
    np.testing.assert_allclose(moved.points[0], [1, 0, 1])
    with pytest.raises(ValueError, match="maps from 'tool0'"):
        trace.transformed(Transform.identity("base", "tool0"))
