"""The evaluation report's figures (matplotlib, PNG): success against difficulty, error histograms,
and a grid of the best and worst cases drawn on their images.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from spatial_trace_ros.eval.scoring import SampleScore, summarize
from spatial_trace_ros.eval.success import SuccessCriteria

GROUND_TRUTH_RGB = (0, 220, 255)
DPI = 100


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def plot_success_vs_difficulty(scores: Sequence[SampleScore], path: str | Path) -> Path:
    """Start, end and overall success rate per difficulty (bars), and the decomposed score (line)."""
    levels = sorted({s.difficulty for s in scores})
    groups = [summarize([s for s in scores if s.difficulty == d]) for d in levels]
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    x = np.arange(len(levels))
    width = 0.25
    for k, (label, key) in enumerate((("start", "start_success_rate"), ("end", "end_success_rate"),
                                      ("success (both)", "success_rate"))):
        ax.bar(x + (k - 1) * width, [getattr(g, key) for g in groups], width, label=label)
    ax.plot(x, [g.reward_score for g in groups], "k-o", label="decomposed score")
    ax.set_xticks(x, [f"{d}\n(n={g.n_samples})" for d, g in zip(levels, groups)])
    ax.set_xlabel("difficulty (reasoning steps)")
    ax.set_ylabel("rate / score")
    ax.set_ylim(0, 1.05)
    ax.set_title("Success against difficulty")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_error_histograms(scores: Sequence[SampleScore], path: str | Path,
                          criteria: SuccessCriteria | None = None) -> Path:
    """Histograms of start error, end-to-box error and Fréchet distance (3D answers, metres)."""
    crit = criteria or SuccessCriteria()
    judged = [s for s in scores if s.rule == "3d"]
    panels = (("start error [m]", [s.start_error for s in judged], crit.start_threshold_m),
              ("end-to-box error [m]", [s.end_error for s in judged], crit.end_threshold_m),
              ("discrete Fréchet [m]", [s.frechet_m for s in judged], None))
    fig = _figure(11, 3.4)
    axes = fig.subplots(1, 3)
    for ax, (label, values, threshold) in zip(axes, panels):
        finite = np.array([v for v in values if math.isfinite(v)])
        if len(finite):
            top = max(float(finite.max()), threshold or 0.0) * 1.05 or 1e-3
            ax.hist(finite, bins=20, range=(0.0, top), color="tab:blue", alpha=0.8)
        else:
            ax.text(0.5, 0.5, "no 3D answers", ha="center", va="center", transform=ax.transAxes)
        if threshold is not None:
            ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:g} m")
            ax.legend(fontsize="small")
        ax.set_xlabel(label)
        ax.set_ylabel("samples")
    unjudged = len(scores) - len(judged)
    fig.suptitle(f"Errors of {len(judged)} 3D answers" + (f" ({unjudged} others not shown)" if unjudged else ""))
    return _save(fig, path)


@dataclass(frozen=True, eq=False)
class OverlayCase:
    """One case for the overlay grid: the image, ground truth and prediction in pixels, a caption."""

    image: np.ndarray
    truth_uv: np.ndarray
    predicted_uv: np.ndarray | None
    caption: str


def draw_case(case: OverlayCase) -> np.ndarray:
    """The image with the ground truth (cyan, thin) under the prediction (the stack's overlay style)."""
    from spatial_trace_ros.trace.overlay import draw_trace_overlay

    out = np.ascontiguousarray(case.image, dtype=np.uint8).copy()
    truth = np.rint(case.truth_uv[np.all(np.isfinite(case.truth_uv), axis=1)]).astype(np.int32)
    if len(truth) >= 2:
        cv2.polylines(out, [truth.reshape(-1, 1, 2)], False, GROUND_TRUTH_RGB, 2, cv2.LINE_AA)
    for u, v in truth:
        cv2.circle(out, (int(u), int(v)), 2, GROUND_TRUTH_RGB, -1, cv2.LINE_AA)
    if case.predicted_uv is not None and len(case.predicted_uv):
        out = draw_trace_overlay(out, case.predicted_uv)
    return out


def plot_overlay_grid(best: Sequence[OverlayCase], worst: Sequence[OverlayCase], path: str | Path) -> Path:
    """Two rows: the best cases on top, the worst below; ground truth cyan, prediction yellow with
    its start green and end red."""
    columns = max(len(best), len(worst), 1)
    fig = _figure(3.2 * columns, 6.2)
    axes = np.asarray(fig.subplots(2, columns, squeeze=False))
    for row, (title, cases) in enumerate((("best", best), ("worst", worst))):
        for col in range(columns):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(cases):
                ax.imshow(draw_case(cases[col]))
                ax.set_title(f"{title}: {cases[col].caption}", fontsize=7, wrap=True)
    fig.suptitle("Best and worst cases (ground truth cyan, prediction yellow: start green, end red)", fontsize=9)
    return _save(fig, path)


def _save(fig: object, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)  # type: ignore[attr-defined]
    return out
