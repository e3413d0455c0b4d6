"""A decomposed score in the spirit of RewardMap: format, final correctness and detail, weighted by
difficulty, so one number ranks models while its parts say *why* one is ahead.

Per sample, with every part in [0, 1]:

- ``format``: the answer parsed into at least two points, inside the image, with depth where the task
  asks for it. Without a valid format every other part is 0 (a trace nobody can execute earns nothing).
- ``final``: 1 when the benchmark's success rule passes (start, end and, if checked, no collision).
- ``detail``: partial credit that still rewards a near miss: the mean of a start credit and an end
  credit, each ``1 / (1 + (error / threshold)^2)`` (1 at zero error, 0.5 at the threshold), and the
  shape credit nDTW.

``total = format_weight * format + final_weight * final + detail_weight * detail`` (weights sum to 1).
Across samples the totals are averaged with per-sample difficulty weights (harder samples count more),
so the aggregate stays in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


def _default_difficulty_weights() -> dict[int, float]:
    return {1: 1.0, 2: 1.25, 3: 1.5, 4: 1.75, 5: 2.0}


@dataclass(frozen=True)
class ScoreWeights:
    """How much each part counts, and how much each difficulty level counts."""

    format_weight: float = 0.2
    final_weight: float = 0.5
    detail_weight: float = 0.3
    difficulty_weights: Mapping[int, float] = field(default_factory=_default_difficulty_weights)

    def __post_init__(self) -> None:
        parts = (self.format_weight, self.final_weight, self.detail_weight)
        if min(parts) < 0 or not np.isclose(sum(parts), 1.0):
            raise ValueError(f"format/final/detail weights must be non-negative and sum to 1, got {parts}")
        if not self.difficulty_weights or min(self.difficulty_weights.values()) <= 0:
            raise ValueError(f"difficulty weights must be positive, got {dict(self.difficulty_weights)}")

    def difficulty_weight(self, difficulty: int) -> float:
        """Weight of a difficulty level; levels beyond the table take the nearest level's weight."""
        levels = sorted(self.difficulty_weights)
        level = min(max(int(difficulty), levels[0]), levels[-1])
        if level in self.difficulty_weights:
            return float(self.difficulty_weights[level])
        below = max(k for k in levels if k < level)
        return float(self.difficulty_weights[below])


def proximity_credit(error: float, threshold: float) -> float:
    """1 at zero error, 0.5 at the threshold, falling smoothly towards 0; 0 for a missing error."""
    if not np.isfinite(error):
        return 0.0
    return float(1.0 / (1.0 + (max(error, 0.0) / threshold) ** 2))


@dataclass(frozen=True)
class DecomposedScore:
    """One sample's parts, its total and the difficulty weight it carries into the aggregate."""

    format: float
    final: float
    detail: float
    total: float
    difficulty_weight: float


def decomposed_score(
    format_valid: bool,
    success: bool,
    start_error: float,
    end_error: float,
    start_threshold: float,
    end_threshold: float,
    ndtw_value: float,
    difficulty: int = 1,
    weights: ScoreWeights | None = None,
) -> DecomposedScore:
    """Score one sample. Errors and thresholds share units (metres for 3D, pixels for 2D)."""
    w = weights or ScoreWeights()
    dw = w.difficulty_weight(difficulty)
    if not format_valid:
        return DecomposedScore(0.0, 0.0, 0.0, 0.0, dw)
    final = 1.0 if success else 0.0
    shape = float(ndtw_value) if np.isfinite(ndtw_value) else 0.0
    detail = float(np.mean([proximity_credit(start_error, start_threshold),
                            proximity_credit(end_error, end_threshold), shape]))
    total = w.format_weight + w.final_weight * final + w.detail_weight * detail
    return DecomposedScore(1.0, final, detail, float(total), dw)


def aggregate_scores(scores: Sequence[DecomposedScore]) -> float:
    """Difficulty-weighted mean of the totals, in [0, 1]; NaN for no samples."""
    if not scores:
        return float("nan")
    weights = np.array([s.difficulty_weight for s in scores])
    totals = np.array([s.total for s in scores])
    return float(np.sum(weights * totals) / np.sum(weights))
