"""``spatial-trace synth``: write a synthetic dataset with programmatic ground truth (see docs/evaluation.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = ("generate simulated tabletop scenes with instructions and ground-truth 3D traces, in the "
        "TraceSpatial-Bench layout (optionally also as fine-tuning conversations)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, required=True, help="number of scenes to write")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="master seed; the same seed gives the same data (0)")
    parser.add_argument("--image-size", metavar="WxH", default="640x480", help="image size in pixels (640x480)")
    parser.add_argument("--tasks-per-scene", type=int, default=3, help="instructions per scene (3)")
    parser.add_argument("--categories", default="",
                        help="comma-separated task categories (default all: pick_up, shift, move_to, stack, "
                             "place_relative, go_around)")
    parser.add_argument("--robot", default="ur5e", choices=("ur5", "ur5e"), help="arm at the table (ur5e)")
    parser.add_argument("--finetune-format", action="append", default=[], choices=("llava", "sharegpt"),
                        help="also write finetune_<format>.json conversations (repeat for both)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from spatial_trace_ros.eval.dataset import parse_image_size
    from spatial_trace_ros.eval.synth import generate_dataset, make_config

    width, height = parse_image_size(args.image_size)
    values: dict[str, object] = {"n_scenes": args.scenes, "seed": args.seed, "width": width, "height": height,
                                 "tasks_per_scene": args.tasks_per_scene, "robot": args.robot}
    if args.categories.strip():
        values["categories"] = tuple(c.strip() for c in args.categories.split(",") if c.strip())
    config = make_config(**values)
    result = generate_dataset(config, args.out, overwrite=args.overwrite, progress=not args.no_progress,
                              finetune_formats=args.finetune_format)
    if args.json:
        print(json.dumps({"out": str(result.out_dir), "n_scenes": result.n_scenes, "n_samples": result.n_samples,
                          "per_category": result.per_category, "rejected_candidates": result.rejected,
                          "scenes_per_s": round(result.scenes_per_s, 3),
                          "finetune_files": [str(p) for p in result.finetune_files]}))
        return 0
    print(f"wrote {result.n_samples} samples from {result.n_scenes} scenes to {result.out_dir} "
          f"({result.scenes_per_s:.2f} scenes/s)")
    print("per category: " + ", ".join(f"{k} {v}" for k, v in sorted(result.per_category.items())))
    if result.rejected:
        print("rejected candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(result.rejected.items())))
    for path in result.finetune_files:
        print(f"fine-tuning conversations: {path}")
    print(f"evaluate a model on it: spatial-trace eval --dataset {result.out_dir} --backend oracle")
    return 0
