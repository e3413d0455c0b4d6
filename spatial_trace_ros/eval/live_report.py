"""Scoring a live run's answers and writing its report: per-sample CSV, summary JSON, text tables per
category and per difficulty, and the figures of ``eval.plots``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from spatial_trace_ros.errors import TraceParseError
from spatial_trace_ros.eval.dataset import DatasetEntry, resolve_image_size, sample_from_record
from spatial_trace_ros.eval.plots import (
    OverlayCase,
    plot_error_histograms,
    plot_overlay_grid,
    plot_success_vs_difficulty,
)
from spatial_trace_ros.eval.report import format_breakdown, format_summary, format_table, write_scores_csv
from spatial_trace_ros.eval.scoring import SampleScore, ScoreSummary, score_sample, summarize
from spatial_trace_ros.eval.success import SuccessCriteria
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project
from spatial_trace_ros.trace.parser import parse_answer

OVERLAY_CASES = 4


@dataclass
class LiveReport:
    """A scored run: per-sample scores, the summary, and the files written."""

    scores: list[SampleScore]
    summary: ScoreSummary
    n_errors: int
    latency_s: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)
    text: str = ""


def score_rows(entries: Sequence[DatasetEntry], rows: dict[str, dict[str, Any]], base_dir: Path,
               criteria: SuccessCriteria | None = None) -> list[SampleScore]:
    """Score each entry's answer row (a missing row counts as an unanswered sample)."""
    scores = []
    for entry in entries:
        row = rows.get(entry.qid) or {**entry.record, "model_prediction": ""}
        sample = sample_from_record(row, f"answer of sample {entry.qid}")
        info = row.get("eval") or {}
        size, source = resolve_image_size(sample, None, base_dir)
        scores.append(score_sample(sample, info.get("convention") or "robotracer", size, source, criteria))
    return scores


def _latency(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    values = np.array([r["eval"]["latency_s"] for r in rows if isinstance((r.get("eval") or {}).get("latency_s"),
                                                                           (int, float))])
    if not len(values):
        return {}
    return {"mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)), "max": float(values.max())}


def _json_ready(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def _overlay_case(entry: DatasetEntry, row: dict[str, Any], score: SampleScore, base_dir: Path) -> OverlayCase:
    sample = entry.sample
    with Image.open(base_dir / sample.image_path) as im:
        image = np.asarray(im.convert("RGB"))
    intr = CameraIntrinsics.from_matrix(sample.K, image.shape[1], image.shape[0])
    predicted = None
    text = row.get("model_prediction") or ""
    try:
        if text.strip():
            convention = (row.get("eval") or {}).get("convention") or "robotracer"
            predicted = parse_answer(text, convention, intr.width, intr.height).uv
    except TraceParseError:
        predicted = None
    caption = f"#{entry.qid} {score.category} (step {score.difficulty}) score {score.reward_total:.2f}\n" \
              f"{sample.prompt[:60]}"
    return OverlayCase(image, project(sample.trajectory_m, intr), predicted, caption)


def write_live_report(
    entries: Sequence[DatasetEntry],
    rows: dict[str, dict[str, Any]],
    base_dir: Path,
    out_dir: Path,
    header: dict[str, Any],
    criteria: SuccessCriteria | None = None,
    plots: bool = True,
) -> LiveReport:
    """Score the run and write scores.csv, summary.json, report.txt and (with ``plots``) the PNGs."""
    scores = score_rows(entries, rows, base_dir, criteria)
    summary = summarize(scores)
    answered = [rows[e.qid] for e in entries if e.qid in rows]
    n_errors = sum(1 for r in answered if (r.get("eval") or {}).get("error"))
    latency = _latency(answered)
    report = LiveReport(scores, summary, n_errors, latency)
    report.files["scores_csv"] = write_scores_csv(scores, out_dir / "scores.csv")

    by_category = {c: summarize([s for s in scores if s.category == c]).as_dict()
                   for c in sorted({s.category for s in scores})}
    by_difficulty = {str(d): summarize([s for s in scores if s.difficulty == d]).as_dict()
                     for d in sorted({s.difficulty for s in scores})}
    document = {**header, "n_samples": len(entries), "n_errors": n_errors, "latency_s": latency,
                "summary": summary.as_dict(), "per_category": by_category, "per_difficulty": by_difficulty}
    report.files["summary_json"] = out_dir / "summary.json"
    report.files["summary_json"].write_text(json.dumps(_json_ready(document), indent=1) + "\n", encoding="utf-8")

    lines = [f"{header.get('backend', '')} on {header.get('dataset', '')}: {len(entries)} samples, "
             f"{n_errors} failed requests", "", format_summary(summary), "",
             format_breakdown(scores, lambda s: s.category, "category"), "",
             format_breakdown(scores, lambda s: s.difficulty, "difficulty")]
    if latency:
        lines += ["", format_table(["latency [s]", "value"], [(k, v) for k, v in latency.items()])]
    errors = [(e.qid, rows[e.qid]["eval"]["error"]) for e in entries
              if e.qid in rows and (rows[e.qid].get("eval") or {}).get("error")]
    if errors:
        lines += ["", "failed requests (first 10):"] + [f"  #{qid}: {why}" for qid, why in errors[:10]]
    report.text = "\n".join(lines)
    report.files["report_txt"] = out_dir / "report.txt"
    report.files["report_txt"].write_text(report.text + "\n", encoding="utf-8")

    if plots:
        report.files["success_vs_difficulty_png"] = plot_success_vs_difficulty(
            scores, out_dir / "success_vs_difficulty.png")
        report.files["error_histograms_png"] = plot_error_histograms(scores, out_dir / "error_histograms.png",
                                                                     criteria)
        # Best: highest score (ties: smaller Fréchet); worst: lowest score.
        order = sorted(range(len(scores)), key=lambda i: (-scores[i].reward_total,
                                                          _finite_or_inf(scores[i].frechet_m)))
        k = min(OVERLAY_CASES, max(1, len(order) // 2))
        with_images = [i for i in order if entries[i].sample.image_path
                       and (base_dir / entries[i].sample.image_path).is_file()]
        best = [_overlay_case(entries[i], rows.get(entries[i].qid, {}), scores[i], base_dir) for i in with_images[:k]]
        worst = [_overlay_case(entries[i], rows.get(entries[i].qid, {}), scores[i], base_dir)
                 for i in reversed(with_images[-k:])] if len(with_images) > k else []
        report.files["best_worst_png"] = plot_overlay_grid(best, worst, out_dir / "best_worst.png")
    return report


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf
