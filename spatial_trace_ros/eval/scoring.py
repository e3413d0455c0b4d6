"""Scoring model answers against ground truth: parse each answer, lift it to 3D when it carries depth,
and apply the metrics, the success rule and the decomposed score. One :class:`SampleScore` per sample
(flat, so it is one CSV row), and a :class:`ScoreSummary` over a file.

3D answers (with depth) are judged by the benchmark's 3D rule in metres. 2D answers are judged by the
image-plane analogue in pixels (see ``success.py``). Image-plane metrics (Fréchet in pixels, MapTrace
DTW) are computed for every parsed answer, against the ground-truth trace projected into the image.
An answer that does not parse counts as a failure in every success rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from spatial_trace_ros.errors import TraceParseError
from spatial_trace_ros.eval import metrics
from spatial_trace_ros.eval.dataset import BenchmarkSample
from spatial_trace_ros.eval.reward import DecomposedScore, ScoreWeights, aggregate_scores, decomposed_score
from spatial_trace_ros.eval.success import SuccessCriteria, evaluate_success, evaluate_success_image_plane
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, deproject, project
from spatial_trace_ros.geometry.path import resample_by_count
from spatial_trace_ros.trace.parser import parse_answer

NAN = float("nan")


def _resampled(points: np.ndarray, count: int) -> np.ndarray:
    """``points`` resampled to ``count`` points by arc length (a single point stays single)."""
    return points if len(points) < 2 else resample_by_count(points, count)


@dataclass(frozen=True)
class SampleScore:
    """Every number for one sample. Units are in the names; NaN where a number does not apply."""

    question_id: str
    category: str
    difficulty: int
    parsed: bool
    parse_error: str
    n_points: int
    has_depth: bool
    format_valid: bool
    image_width: int
    image_height: int
    image_size_source: str
    rule: str  # "3d", "image_plane", or "" when nothing parsed
    start_error: float  # metres for rule 3d, pixels for rule image_plane
    end_error: float
    start_success: bool
    end_success: bool
    success: bool
    frechet_m: float
    dtw_m: float
    ndtw: float  # metric space for 3D answers, pixels for 2D answers
    sdtw: float
    hausdorff_m: float
    rmse_m: float
    mae_m: float
    frechet_px: float
    maptrace_dtw: float  # plain DTW in the unit square, lower is better (not nDTW)
    reward_format: float
    reward_final: float
    reward_detail: float
    reward_total: float
    difficulty_weight: float

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_row(self) -> dict[str, object]:
        return asdict(self)

    def reward(self) -> DecomposedScore:
        return DecomposedScore(self.reward_format, self.reward_final, self.reward_detail, self.reward_total,
                               self.difficulty_weight)


def score_sample(
    sample: BenchmarkSample,
    convention: str,
    image_size: tuple[int, int],
    image_size_source: str = "option",
    criteria: SuccessCriteria | None = None,
    weights: ScoreWeights | None = None,
    resample_count: int = 100,
) -> SampleScore:
    """Score ``sample.model_prediction`` (parsed with ``convention``) against the sample's truth."""
    crit = criteria or SuccessCriteria()
    width, height = image_size
    intr = CameraIntrinsics.from_matrix(sample.K, width, height)
    base = {
        "question_id": str(sample.question_id), "category": sample.category, "difficulty": sample.difficulty,
        "image_width": width, "image_height": height, "image_size_source": image_size_source,
    }
    text = sample.model_prediction or ""
    try:
        if not text.strip():
            raise TraceParseError("the answer is empty")
        answer = parse_answer(text, convention, width, height)
    except TraceParseError as err:
        return _unparsed(base, str(err), weights, sample.difficulty)

    uv = np.asarray(answer.uv, dtype=float).reshape(-1, 2)
    depth = np.asarray(answer.depth_m, dtype=float).reshape(-1)
    has_depth = bool(answer.has_depth)
    ref = sample.trajectory_m
    finite_depth = np.isfinite(depth) & (depth > 0)
    inside = np.all(np.isfinite(uv), axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] <= width) & (uv[:, 1] >= 0) \
        & (uv[:, 1] <= height)
    format_valid = len(uv) >= 2 and bool(np.all(inside)) and (not has_depth or bool(np.all(finite_depth)))

    ref_uv = project(ref, intr)
    ref_uv = ref_uv[np.all(np.isfinite(ref_uv), axis=1)]
    uv_ok = uv[np.all(np.isfinite(uv), axis=1)]
    frechet_px = metrics.discrete_frechet(
        _resampled(ref_uv, resample_count), _resampled(uv_ok, resample_count)) \
        if len(ref_uv) and len(uv_ok) else NAN
    maptrace = metrics.maptrace_dtw(ref_uv, uv_ok, width, height) if len(ref_uv) and len(uv_ok) else NAN

    cmp_m = None
    if has_depth and np.any(finite_depth):
        points = deproject(uv[finite_depth], depth[finite_depth], intr)
        result = evaluate_success(points, ref, sample.destination, crit)
        cmp_m = metrics.compare_traces(ref, points, crit.end_threshold_m, resample_count, success=result.success)
        rule, shape_ndtw = "3d", cmp_m.ndtw
        start_thr, end_thr = crit.start_threshold_m, crit.end_threshold_m
    else:
        result = evaluate_success_image_plane(uv_ok, ref, sample.destination, intr, crit)
        radius_px = intr.fx * crit.end_threshold_m / max(float(np.median(ref[:, 2])), 1e-6)
        shape_ndtw = metrics.ndtw(_resampled(ref_uv, resample_count), _resampled(uv_ok, resample_count),
                                  radius_px) if len(ref_uv) else NAN
        rule = "image_plane"
        start_thr = intr.fx * crit.start_threshold_m / max(ref[0, 2], 1e-6)
        end_thr = intr.fx * crit.end_threshold_m / max(sample.destination.center[2], 1e-6)

    reward = decomposed_score(format_valid, result.success, result.start_error, result.end_error, start_thr, end_thr,
                              shape_ndtw, sample.difficulty, weights)
    return SampleScore(
        **base, parsed=True, parse_error="", n_points=len(uv), has_depth=has_depth, format_valid=format_valid,
        rule=rule, start_error=result.start_error, end_error=result.end_error, start_success=result.start_ok,
        end_success=result.end_ok, success=result.success,
        frechet_m=cmp_m.frechet if cmp_m else NAN, dtw_m=cmp_m.dtw if cmp_m else NAN, ndtw=shape_ndtw,
        sdtw=(cmp_m.sdtw if cmp_m else (shape_ndtw if result.success else 0.0)),
        hausdorff_m=cmp_m.hausdorff if cmp_m else NAN, rmse_m=cmp_m.rmse if cmp_m else NAN,
        mae_m=cmp_m.mae if cmp_m else NAN, frechet_px=frechet_px, maptrace_dtw=maptrace,
        reward_format=reward.format, reward_final=reward.final, reward_detail=reward.detail,
        reward_total=reward.total, difficulty_weight=reward.difficulty_weight,
    )


def _unparsed(base: dict, reason: str, weights: ScoreWeights | None, difficulty: int) -> SampleScore:
    reward = decomposed_score(False, False, NAN, NAN, 1.0, 1.0, NAN, difficulty, weights)
    return SampleScore(
        **base, parsed=False, parse_error=reason, n_points=0, has_depth=False, format_valid=False, rule="",
        start_error=NAN, end_error=NAN, start_success=False, end_success=False, success=False,
        frechet_m=NAN, dtw_m=NAN, ndtw=NAN, sdtw=0.0, hausdorff_m=NAN, rmse_m=NAN, mae_m=NAN,
        frechet_px=NAN, maptrace_dtw=NAN, reward_format=0.0, reward_final=0.0, reward_detail=0.0,
        reward_total=0.0, difficulty_weight=reward.difficulty_weight,
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else NAN


@dataclass(frozen=True)
class ScoreSummary:
    """Rates over all samples (an unparsed answer is a failure); means over the samples they apply to."""

    n_samples: int
    n_parsed: int
    n_3d: int
    n_image_plane: int
    parse_rate: float
    format_valid_rate: float
    start_success_rate: float
    end_success_rate: float
    success_rate: float
    mean_frechet_m: float
    mean_frechet_px: float
    mean_ndtw_3d: float
    mean_maptrace_dtw: float
    mean_start_error_m: float
    mean_end_error_m: float
    mean_rmse_m: float
    reward_score: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(scores: Sequence[SampleScore]) -> ScoreSummary:
    """Aggregate per-sample scores."""
    n = len(scores)
    if n == 0:
        raise ValueError("nothing to summarise: no samples were scored")
    three_d = [s for s in scores if s.rule == "3d"]

    def rate(flag: str) -> float:
        return sum(bool(getattr(s, flag)) for s in scores) / n

    return ScoreSummary(
        n_samples=n,
        n_parsed=sum(s.parsed for s in scores),
        n_3d=len(three_d),
        n_image_plane=sum(s.rule == "image_plane" for s in scores),
        parse_rate=rate("parsed"),
        format_valid_rate=rate("format_valid"),
        start_success_rate=rate("start_success"),
        end_success_rate=rate("end_success"),
        success_rate=rate("success"),
        mean_frechet_m=_mean([s.frechet_m for s in three_d]),
        mean_frechet_px=_mean([s.frechet_px for s in scores]),
        mean_ndtw_3d=_mean([s.ndtw for s in three_d]),
        mean_maptrace_dtw=_mean([s.maptrace_dtw for s in scores]),
        mean_start_error_m=_mean([s.start_error for s in three_d]),
        mean_end_error_m=_mean([s.end_error for s in three_d]),
        mean_rmse_m=_mean([s.rmse_m for s in three_d]),
        reward_score=aggregate_scores([s.reward() for s in scores]),
    )
