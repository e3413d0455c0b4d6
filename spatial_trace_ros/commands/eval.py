"""``spatial-trace eval``: run a live trace backend over a dataset and report (see docs/evaluation.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = ("run a trace backend over a dataset (resumable, bounded concurrency) and write a report: "
        "tables per category and difficulty, per-sample CSV, plots")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True,
                        help="dataset folder (with samples.jsonl, e.g. from spatial-trace synth) or a .jsonl file")
    parser.add_argument("--backend", required=True,
                        help="trace backend: oracle (synthetic data only), robotracer, openai, http")
    parser.add_argument("--n-samples", type=int, default=None, help="evaluate only the first K samples (default all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder; an earlier run there is resumed (default ./eval_<dataset>_<backend>)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (4)")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="time limit per request [s] (60)")
    parser.add_argument("--model-samples", type=int, default=1,
                        help="answers per question; > 1 scores the consensus answer (1)")
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0)")
    backend = parser.add_argument_group("backend options (HTTP backends)")
    backend.add_argument("--base-url", default="", help="model server address")
    backend.add_argument("--model", default="", help="model name (openai backend)")
    backend.add_argument("--api-key-env", default="", help="environment variable holding the bearer token")
    backend.add_argument("--convention", default="", help="answer convention (default: the backend's)")
    backend.add_argument("--prompt", default="", help="prompt template name or text with {instruction}")
    backend.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="further backend option, VALUE as JSON where it parses (e.g. perturbation_m=0.05 "
                              "for the oracle; api=spatial and spool_dir=/mnt/spool or send_depth=false for "
                              "RoboTracer's spatial-encoder API, docs/trace.md); repeatable")
    parser.add_argument("--start-threshold-m", type=float, default=0.20, help="start success radius [m] (0.20)")
    parser.add_argument("--end-threshold-m", type=float, default=0.20,
                        help="end success distance to the destination box [m] (0.20)")
    parser.add_argument("--execute", action="store_true",
                        help="also execute each answered synthetic sample's trace as a task in simulation (pick, "
                             "carry, place with the gripper) and report task success per category")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def backend_options(args: argparse.Namespace) -> dict[str, object]:
    """The backend's keyword options from the command line."""
    from spatial_trace_ros.errors import ConfigError

    options: dict[str, object] = {}
    for key in ("base_url", "model", "api_key_env", "convention", "prompt"):
        value = getattr(args, key)
        if value:
            options[key] = value
    for item in args.option:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {item!r} is not KEY=VALUE, e.g. --option perturbation_m=0.05")
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[key.strip()] = value
    return options


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.errors import ConfigError
    from spatial_trace_ros.eval.live_eval import evaluate_backend
    from spatial_trace_ros.eval.report import format_breakdown, format_summary
    from spatial_trace_ros.eval.success import SuccessCriteria

    try:
        criteria = SuccessCriteria(start_threshold_m=args.start_threshold_m, end_threshold_m=args.end_threshold_m)
    except ValueError as err:
        raise ConfigError(f"{err}; pass positive --start-threshold-m/--end-threshold-m") from None
    dataset_name = args.dataset.name if args.dataset.is_dir() else args.dataset.stem
    out = args.out or Path.cwd() / f"eval_{dataset_name}_{args.backend}"
    result = evaluate_backend(
        args.dataset, args.backend, backend_options(args), out, args.n_samples, args.concurrency,
        args.model_samples, args.temperature, args.timeout_s, criteria, plots=not args.no_plots,
        progress=not args.no_progress,
    )
    report = result.report
    execution = None
    if args.execute:
        from spatial_trace_ros.eval.dataset import load_entries, resolve_dataset
        from spatial_trace_ros.eval.execute import execute_answers
        from spatial_trace_ros.eval.live_eval import ANSWERS_FILE, read_answer_rows

        samples_file = resolve_dataset(args.dataset)
        entries = load_entries(samples_file)[: args.n_samples]
        execution = execute_answers(entries, read_answer_rows(result.out_dir / ANSWERS_FILE), samples_file.parent,
                                    result.out_dir)
        report.files["execution_json"] = result.out_dir / "execution.json"
    if args.json:
        summary = {k: (None if isinstance(v, float) and v != v else v) for k, v in report.summary.as_dict().items()}
        print(json.dumps({"out": str(result.out_dir), "n_samples": result.n_selected,
                          "answered_now": result.n_answered_now, "answered_before": result.n_done_before,
                          "failed_requests": report.n_errors, "summary": summary,
                          "files": {k: str(v) for k, v in report.files.items()},
                          **({"execution": {k: v for k, v in execution.items() if k != "samples"}}
                             if execution is not None else {})}))
        return 0
    print(f"{args.backend} on {args.dataset}: {result.n_selected} samples ({result.n_answered_now} answered now, "
          f"{result.n_done_before} from an earlier run, {report.n_errors} failed requests)")
    print(format_summary(report.summary))
    print()
    print(format_breakdown(report.scores, lambda s: s.category, "category"))
    print()
    print(format_breakdown(report.scores, lambda s: s.difficulty, "difficulty"))
    if execution is not None:
        from spatial_trace_ros.eval.execute import format_execution

        print()
        print(format_execution(execution))
    print(f"\nreport: {report.files['report_txt']}")
    for key, path in report.files.items():
        if key.endswith("_png"):
            print(f"figure: {path}")
    return 0
