"""``spatial-trace export-finetune``: a dataset's ground truth as conversations for fine-tuning a VLM."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a dataset's ground-truth traces as LLaVA- or ShareGPT-style conversations (RoboTracer answers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help="dataset folder (with samples.jsonl) or a .jsonl/.json file")
    parser.add_argument("--format", dest="layout", default="llava", choices=("llava", "sharegpt"),
                        help="conversation layout (llava)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output JSON file (default: finetune_<format>.json beside the samples)")
    parser.add_argument("--2d", dest="two_d", action="store_true",
                        help="2D answers [(x, y), ...] with the 2D prompt (default: 3D with depth)")
    parser.add_argument("--image-prefix", default="", help="prefix for image paths, e.g. an absolute folder")
    parser.add_argument("--max-points", type=int, default=None, help="resample longer traces to this many points")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.eval.dataset import read_benchmark, resolve_dataset
    from spatial_trace_ros.eval.finetune_export import export_finetune

    samples_file = resolve_dataset(args.dataset)
    out = args.out or samples_file.parent / f"finetune_{args.layout}.json"
    result = export_finetune(read_benchmark(samples_file), out, layout=args.layout, with_depth=not args.two_d,
                             image_prefix=args.image_prefix, dataset_dir=samples_file.parent,
                             max_points=args.max_points)
    print(f"wrote {result.n_written} conversations ({args.layout}) to {result.path}")
    for qid, why in result.skipped[:10]:
        print(f"skipped sample {qid}: {why}")
    if len(result.skipped) > 10:
        print(f"... and {len(result.skipped) - 10} more skipped")
    return 0
