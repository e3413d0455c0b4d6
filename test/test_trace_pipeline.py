"""Answers + RgbdFrame -> camera-frame Trace: model depth for 3D answers, sensor depth for 2D answers,
the depth cross-check, server-given pixel points, DTW and the multi-sample consensus."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_trace_ros.errors import ConfigError, DepthError, TraceParseError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.trace.config import TraceStageConfig
from spatial_trace_ros.trace.consensus import choose_consensus, dtw_distance
from spatial_trace_ros.trace.model import ModelAnswer
from spatial_trace_ros.trace.pipeline import PipelineConfig, answer_to_trace, build_trace

INTR = CameraIntrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)


def make_frame(depth_mm: np.ndarray | None = None, stamp_s: float = 7.5) -> RgbdFrame:
    color = np.full((480, 640, 3), 90, np.uint8)
    if depth_mm is None:
        depth_mm = np.full((480, 640), 1500, np.uint16)  # a wall 1.5 m away
    return RgbdFrame(color, depth_mm, INTR, 0.001, stamp_s, "cam_optical")


def answer(text: str, convention: str = "robotracer") -> ModelAnswer:
    return ModelAnswer(text, convention, "test-model")


def expected_xyz(u: float, v: float, z: float) -> list[float]:
    return [(u - INTR.cx) * z / INTR.fx, (v - INTR.cy) * z / INTR.fy, z]


# -- one answer -----------------------------------------------------------------------------------------


def test_3d_answer_uses_the_model_depth() -> None:
    wall = np.full((480, 640), 2500, np.uint16)  # the points lie in front of it: the depth check passes
    trace = answer_to_trace(answer("[(500, 500, 1.0), (750, 250, 2.0)]"), make_frame(wall))
    np.testing.assert_allclose(trace.points, [expected_xyz(320, 240, 1.0), expected_xyz(480, 120, 2.0)])
    assert trace.frame_id == "cam_optical" and trace.stamp_s == 7.5 and trace.valid.all()
    np.testing.assert_allclose(trace.pixels_uv, [[320, 240], [480, 120]])
    assert trace.metadata["depth_from_model"] == 2 and trace.metadata["depth_from_sensor"] == 0


def test_2d_answer_takes_robust_depth_from_the_sensor() -> None:
    depth = np.full((480, 640), 1200, np.uint16)
    depth[240, 320] = 0  # a hole exactly under the first point: the window median rides over it
    depth[118:123, 478:483] = 2000  # the second point sits on a 2 m patch
    trace = answer_to_trace(answer("[(500, 500), (750, 250)]"), make_frame(depth))
    np.testing.assert_allclose(trace.points, [expected_xyz(320, 240, 1.2), expected_xyz(480, 120, 2.0)])
    assert trace.metadata["depth_from_sensor"] == 2


def test_depth_source_sensor_overrides_the_model_and_model_requires_it() -> None:
    cfg = PipelineConfig(depth_source="sensor")
    trace = answer_to_trace(answer("[(500, 500, 0.7), (750, 250, 0.9)]"), make_frame(), cfg)
    np.testing.assert_allclose(trace.points[:, 2], [1.5, 1.5])
    with pytest.raises(DepthError, match="depth_source is 'model' but the model gave no depth for 2 of 2 points"):
        answer_to_trace(answer("[(500, 500), (750, 250)]"), make_frame(), PipelineConfig(depth_source="model"))


def test_2d_answer_without_a_depth_image_is_refused() -> None:
    frame = RgbdFrame(np.zeros((480, 640, 3), np.uint8), None, INTR)
    with pytest.raises(DepthError, match="no aligned depth image; enable the depth stream"):
        answer_to_trace(answer("[(500, 500), (750, 250)]"), frame)
    # A 3D answer needs no depth image.
    assert len(answer_to_trace(answer("[(500, 500, 1), (750, 250, 2)]"), frame)) == 2


def test_points_over_holes_lower_the_valid_fraction_until_refused() -> None:
    depth = np.full((480, 640), 1500, np.uint16)
    depth[:, 400:] = 0  # no depth on the right part of the image
    text = "[(100, 500), (300, 500), (700, 500), (900, 500)]"
    trace = answer_to_trace(answer(text), make_frame(depth))
    assert trace.valid.tolist() == [True, True, False, False]
    with pytest.raises(DepthError, match=r"only 2 of 4 trace points have a usable depth"):
        answer_to_trace(answer(text), make_frame(depth), PipelineConfig(min_valid_fraction=0.75))


def test_depth_cross_check_flags_or_drops_disagreeing_points() -> None:
    text = "[(500, 500, 1.52), (600, 500, 1.0), (700, 500, 1.48)]"  # the sensor says 1.5 m everywhere
    cfg = PipelineConfig(depth_check_threshold_m=0.1, depth_check_side="both", depth_mismatch_action="flag")
    trace = answer_to_trace(answer(text), make_frame(), cfg)
    check = trace.metadata["depth_check"]
    assert check["flagged"] == [1] and check["compared"] == 3
    assert check["max_abs_diff_m"] == pytest.approx(0.5)
    assert trace.valid.all()  # "flag" keeps the points
    np.testing.assert_allclose(trace.points[:, 2], [1.52, 1.0, 1.48])  # and the model's depth
    invalidate = cfg.model_copy(update={"depth_mismatch_action": "invalidate"})
    dropped = answer_to_trace(answer(text), make_frame(), invalidate)
    assert dropped.valid.tolist() == [True, False, True]
    # By default points may lie in front of the visible surface (a trace through free space).
    default = answer_to_trace(answer(text), make_frame())
    assert default.metadata["depth_check"]["flagged"] == [] and default.valid.all()


def test_model_depth_behind_the_visible_surface_is_dropped_by_default() -> None:
    # The sensor sees a surface at 1.5 m; the model puts two of four points 0.3 m behind it (inside it).
    text = "[(400, 500, 1.5), (500, 500, 1.8), (600, 500, 1.8), (700, 500, 1.49)]"
    trace = answer_to_trace(answer(text), make_frame())
    assert trace.metadata["depth_check"]["flagged"] == [1, 2]
    assert trace.valid.tolist() == [True, False, False, True]
    with pytest.raises(DepthError, match=r"2 dropped by the depth check"):
        answer_to_trace(answer(text), make_frame(), PipelineConfig(min_valid_fraction=0.75))


def test_server_pixel_points_skip_the_parser_and_are_checked() -> None:
    pts = np.array([[320.0, 240.0, 1.0], [480.0, 120.0, np.nan]])
    trace = answer_to_trace(ModelAnswer("", "robotracer", "srv", points_uvd=pts), make_frame())
    np.testing.assert_allclose(trace.points, [expected_xyz(320, 240, 1.0), expected_xyz(480, 120, 1.5)])
    with pytest.raises(TraceParseError, match=r"pixel \(700, 120\) at point #1, outside the 640x480 image"):
        answer_to_trace(ModelAnswer("", "robotracer", points_uvd=np.array([[1, 2, 1], [700, 120, 1]])), make_frame())
    with pytest.raises(TraceParseError, match="at least 2 points"):
        answer_to_trace(ModelAnswer("", "robotracer", points_uvd=np.array([[1, 2, 1.0]])), make_frame())


def test_build_trace_with_one_unusable_sample_reports_the_parser_reason() -> None:
    outcome = build_trace([answer("I cannot do that.")], make_frame())
    assert not outcome.ok and outcome.n_parsed == 0 and "no list of points found" in outcome.reason
    assert outcome.raw_answer == "I cannot do that."


# -- DTW and consensus ------------------------------------------------------------------------------


def test_dtw_known_values() -> None:
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert dtw_distance(line, line) == 0.0
    assert dtw_distance(line, line + np.array([0.0, 0.3])) == pytest.approx(0.3)
    # Ends only vs. ends and middle: 3 matched pairs costing 0, 1 (the middle to an end), 0.
    assert dtw_distance(line[[0, 2]], line) == pytest.approx(1.0 / 3.0)
    assert dtw_distance(line, line[::-1]) > 0.6  # direction matters
    with pytest.raises(ValueError, match="same D"):
        dtw_distance(line, np.zeros((3, 3)))


def _sample(offset_m: float, rng: np.random.Generator | None = None) -> np.ndarray:
    pts = np.column_stack([np.linspace(-0.2, 0.2, 8), np.full(8, offset_m), np.full(8, 1.0)])
    return pts + (rng.normal(0, 0.003, pts.shape) if rng is not None else 0)


def test_consensus_picks_the_majority_when_one_sample_is_an_outlier() -> None:
    rng = np.random.default_rng(3)
    candidates = [_sample(0.0, rng), _sample(0.01, rng), _sample(0.40), _sample(-0.01, rng), _sample(0.005, rng)]
    result = choose_consensus(candidates, n_requested=5, agreement_radius_m=0.05)
    assert result.index != 2
    assert result.n_agreeing == 4 and result.agreement == pytest.approx(0.8)
    assert result.distances[2].min() == 0.0 and np.sort(result.distances[2])[1] > 0.3


def _text_for(points_xyz: np.ndarray) -> str:
    """A RoboTracer 3D answer for camera-frame points (the inverse of the pipeline, written out)."""
    u = points_xyz[:, 0] / points_xyz[:, 2] * INTR.fx + INTR.cx
    v = points_xyz[:, 1] / points_xyz[:, 2] * INTR.fy + INTR.cy
    return "[" + ", ".join(f"({x * 1000 / 640:.2f}, {y * 1000 / 480:.2f}, {z:.4f})"
                           for x, y, z in zip(u, v, points_xyz[:, 2])) + "]"


def test_build_trace_consensus_drops_garbage_and_outliers() -> None:
    rng = np.random.default_rng(5)
    majority = [_sample(0.0, rng), _sample(0.01, rng), _sample(-0.008, rng)]
    texts = [_text_for(majority[0]), "no idea", _text_for(_sample(0.35)), _text_for(majority[1]),
             _text_for(majority[2])]
    outcome = build_trace([answer(t) for t in texts], make_frame(), PipelineConfig(min_agreement=0.5))
    assert outcome.ok and outcome.n_requested == 5 and outcome.n_parsed == 4
    assert outcome.chosen_index in (0, 3, 4)
    assert outcome.agreement == pytest.approx(3 / 5)
    assert len(outcome.failures) == 1 and outcome.failures[0].startswith("sample #1: no list of points")
    assert np.abs(outcome.trace.points[:, 1]).max() < 0.03  # the chosen trace is one of the majority
    assert outcome.trace.metadata["sample_index"] == outcome.chosen_index


def test_build_trace_refuses_below_min_agreement_with_a_reason() -> None:
    texts = [_text_for(_sample(off)) for off in (0.0, 0.2, 0.4, 0.6)]
    outcome = build_trace([answer(t) for t in texts], make_frame(), PipelineConfig(min_agreement=0.5))
    assert not outcome.ok and outcome.agreement == pytest.approx(0.25)
    assert "the samples disagree: 1 of 4 samples lie within 0.050 m" in outcome.reason
    assert "below min_agreement 0.50" in outcome.reason


def test_unparseable_samples_count_against_agreement() -> None:
    texts = [_text_for(_sample(0.0)), "garbage", "more garbage"]
    outcome = build_trace([answer(t) for t in texts], make_frame(), PipelineConfig(min_agreement=0.5))
    assert not outcome.ok and outcome.agreement == pytest.approx(1 / 3) and "2 unusable" in outcome.reason
    outcome = build_trace([answer("x"), answer("y")], make_frame())
    assert not outcome.ok and outcome.reason.startswith("none of the 2 samples gave a usable trace; first: sample #0")


# -- the stage config -----------------------------------------------------------------------------------


def test_stage_config_checks_combinations_and_builds_backend_options() -> None:
    with pytest.raises(ValueError, match="n_samples = 4 needs temperature > 0"):
        TraceStageConfig(n_samples=4)
    cfg = TraceStageConfig(backend="openai", model="qwen", base_url="http://h:1/v1", timeout_s=3,
                           backend_options_json='{"max_tokens": 64}')
    assert cfg.backend_options() == {"timeout_s": 3, "max_retries": 2, "retry_backoff_s": 0.5, "trace_dim": "3d",
                                     "base_url": "http://h:1/v1", "model": "qwen", "max_tokens": 64}
    assert TraceStageConfig(backend="oracle", backend_options_json='{"n_points": 5}').backend_options() == {
        "n_points": 5}
    with pytest.raises(ConfigError, match="backend_options_json is not valid JSON"):
        TraceStageConfig(backend_options_json="{nope").backend_options()
    assert cfg.pipeline_config().min_agreement == 0.5


def test_every_node_parameter_is_documented_with_its_default() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "trace.md").read_text()
    doc = doc[doc.index("### Parameters"):]
    for name, field in TraceStageConfig.model_fields.items():
        default = field.default
        shown = '""' if default == "" else str(default).lower() if isinstance(default, bool) else str(default)
        assert f"| `{name}` | " in doc, f"docs/trace.md lacks parameter {name}"
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` | "))
        assert f"| `{shown}` |" in row, f"docs/trace.md shows the wrong default for {name}: {row}"


def test_rgb_only_backends_get_no_3d_request_that_sensor_depth_cannot_check() -> None:
    assert TraceStageConfig().pipeline_config().depth_check_threshold_m > 0  # checked by default
    with pytest.raises(ValueError, match=r"backend 'openai' sends the model no depth image.*depth_check_threshold_m"):
        TraceStageConfig(backend="openai", depth_check_threshold_m=0.0)
    with pytest.raises(ValueError, match=r"backend 'robotracer' sends the model no depth image"):
        TraceStageConfig(backend="robotracer", backend_options_json='{"send_depth": false}', depth_check_threshold_m=0)
    with pytest.raises(ValueError, match=r"use_depth false asks the model for metric depth"):
        TraceStageConfig(backend="http", use_depth=False)
    # Sensor depth that checks or replaces the model's, or no metric depth asked for, is fine.
    TraceStageConfig(backend="openai")
    TraceStageConfig(backend="openai", depth_check_threshold_m=0.0, depth_source="sensor")
    TraceStageConfig(backend="openai", depth_check_threshold_m=0.0, trace_dim="2d")
    TraceStageConfig(backend="robotracer", depth_check_threshold_m=0.0)  # the model sees the depth image
