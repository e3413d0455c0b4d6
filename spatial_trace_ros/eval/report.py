"""Writing scores out: the per-sample CSV and plain-text tables a person reads in a terminal."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from spatial_trace_ros.eval.scoring import SampleScore, ScoreSummary, summarize


def write_scores_csv(scores: Sequence[SampleScore], path: str | Path) -> Path:
    """One row per sample with every :class:`SampleScore` column; NaN is written as an empty cell."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SampleScore.columns())
        writer.writeheader()
        for score in scores:
            row = score.as_row()
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table (numbers to 3 decimals, NaN as '-')."""
    cells = [[_fmt(v) for v in row] for row in rows]
    numeric = [[isinstance(v, (int, float)) and not isinstance(v, bool) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for row, flags in zip(cells, numeric):
        lines.append("  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, flags)).rstrip())
    return "\n".join(lines)


_SUMMARY_ROWS = (
    ("samples", "n_samples"), ("parsed", "n_parsed"), ("parse rate", "parse_rate"),
    ("format valid rate", "format_valid_rate"), ("judged in 3D", "n_3d"), ("judged in the image", "n_image_plane"),
    ("start success rate", "start_success_rate"), ("end success rate", "end_success_rate"),
    ("success rate (both)", "success_rate"), ("mean Fréchet [m]", "mean_frechet_m"),
    ("mean Fréchet [px]", "mean_frechet_px"), ("mean nDTW (3D)", "mean_ndtw_3d"),
    ("mean MapTrace DTW (lower is better)", "mean_maptrace_dtw"), ("mean start error [m]", "mean_start_error_m"),
    ("mean end-to-box error [m]", "mean_end_error_m"), ("mean RMSE [m]", "mean_rmse_m"),
    ("decomposed score", "reward_score"),
)


def format_summary(summary: ScoreSummary) -> str:
    """The summary as a two-column table."""
    values = summary.as_dict()
    return format_table(["metric", "value"], [(label, values[key]) for label, key in _SUMMARY_ROWS])


def format_breakdown(scores: Sequence[SampleScore], key: Callable[[SampleScore], object], label: str) -> str:
    """One row per group (e.g. per category or difficulty): count and the headline rates."""
    groups: dict[object, list[SampleScore]] = {}
    for s in scores:
        groups.setdefault(key(s), []).append(s)
    rows = []
    for name in sorted(groups, key=str):
        summ = summarize(groups[name])
        rows.append((name if name != "" else "(none)", summ.n_samples, summ.parse_rate, summ.start_success_rate,
                     summ.end_success_rate, summ.success_rate, summ.mean_frechet_m, summ.reward_score))
    return format_table([label, "n", "parse", "start", "end", "success", "Fréchet [m]", "score"], rows)
