"""``spatial-trace eval-answers``: score a file of model answers in the TraceSpatial-Bench layout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "score model answers (TraceSpatial-Bench .jsonl layout): parse rate, success rates, Fréchet, per-sample CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="answers file (.jsonl, one sample per line, or a .json list)")
    parser.add_argument("--convention", default="robotracer",
                        help="answer format to parse (robotracer, roborefer, robobrain, gemini, molmoact); "
                             "default robotracer")
    parser.add_argument("--image-size", metavar="WxH", default=None,
                        help="image size in pixels, e.g. 640x480 (default: from the samples or images, else 2cx x 2cy "
                             "with a warning)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="per-sample CSV to write (default: ./<file stem>_scores.csv)")
    parser.add_argument("--start-threshold-m", type=float, default=0.20, help="start success radius [m] (0.20)")
    parser.add_argument("--end-threshold-m", type=float, default=0.20,
                        help="end success distance to the destination box [m] (0.20)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.eval.dataset import parse_image_size, read_benchmark, resolve_image_size
    from spatial_trace_ros.eval.report import format_breakdown, format_summary, write_scores_csv
    from spatial_trace_ros.eval.scoring import score_sample, summarize
    from spatial_trace_ros.eval.success import SuccessCriteria

    try:
        criteria = SuccessCriteria(start_threshold_m=args.start_threshold_m, end_threshold_m=args.end_threshold_m)
    except ValueError as err:
        raise ConfigError(f"{err}; pass positive --start-threshold-m/--end-threshold-m") from None
    override = parse_image_size(args.image_size) if args.image_size else None
    samples = read_benchmark(args.file)
    if all(s.model_prediction is None for s in samples):
        raise ConfigError(f"{args.file} has no model_prediction fields: it is a dataset, not an answers file; "
                          "run a model over it first (spatial-trace eval) or pass an answers file")
    guessed = 0
    scores = []
    for sample in samples:
        size, source = resolve_image_size(sample, override, args.file.parent)
        guessed += source == "principal_point"
        scores.append(score_sample(sample, args.convention, size, source, criteria))
    if guessed:
        print(f"warning: the image size of {guessed} of {len(samples)} samples is unknown; assumed 2*cx x 2*cy from "
              "the intrinsics. Pass --image-size WxH (or add image_width/image_height to the samples) for exact "
              "pixel coordinates.", file=sys.stderr)
    summary = summarize(scores)
    csv_path = write_scores_csv(scores, args.csv or Path.cwd() / f"{args.file.stem}_scores.csv")
    if args.json:
        print(json.dumps({"file": str(args.file), "convention": args.convention, "csv": str(csv_path),
                          "image_size_guessed": guessed,
                          "summary": {k: _json_number(v) for k, v in summary.as_dict().items()}}))
        return 0
    print(f"{args.file} ({args.convention}): {summary.n_samples} samples")
    print(format_summary(summary))
    if len({s.category for s in scores}) > 1:
        print()
        print(format_breakdown(scores, lambda s: s.category, "category"))
    if len({s.difficulty for s in scores}) > 1:
        print()
        print(format_breakdown(scores, lambda s: s.difficulty, "difficulty"))
    print(f"\nper-sample scores: {csv_path}")
    return 0


def _json_number(value: object) -> object:
    """NaN is not JSON: write null instead."""
    return None if isinstance(value, float) and value != value else value

