"""Export ground-truth traces as conversations for fine-tuning a VLM on your own cell.

Each sample becomes one conversation: the image, the RoboTracer prompt with the instruction, and the
ground-truth trace written as RoboTracer answers it, ``[(x, y, d), ...]`` with x, y integers on a 0-1000
scale of the image width/height and d the depth along the optical axis in metres (3 decimals), or
``[(x, y), ...]`` for 2D. Two layouts, both a single JSON list:

``llava`` (LLaVA-style trainers, e.g. LLaVA, NVILA/VILA)::

    {"id": "17", "image": "17/image.png",
     "conversations": [{"from": "human", "value": "<image>\\nPoint the 3D object-centric ..."},
                       {"from": "gpt", "value": "[(512, 430, 0.812), ...]"}]}

``sharegpt`` (ShareGPT multimodal layout, e.g. LLaMA-Factory's ``formatting: sharegpt``)::

    {"conversations": [{"from": "human", "value": "<image>Point the 3D ..."},
                       {"from": "gpt", "value": "[(512, 430, 0.812), ...]"}],
     "images": ["17/image.png"]}

Both also carry ``depth`` (the 16-bit depth PNG path) and ``intrinsics`` ({fx, fy, cx, cy, width,
height}) for RGB-D models such as RoboTracer; trainers that do not use them ignore unknown keys.
Image paths are the dataset's, prefixed with ``image_prefix`` (set the trainer's image folder to the
dataset folder, or pass a prefix that makes them resolve from where the trainer runs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from spatial_trace_ros.errors import ConfigError, format_choices
from spatial_trace_ros.eval.dataset import BenchmarkSample, resolve_image_size
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project
from spatial_trace_ros.geometry.path import resample_by_count
from spatial_trace_ros.trace.conventions import get_convention
from spatial_trace_ros.trace.prompts import PROMPTS, render_prompt

Layout = Literal["llava", "sharegpt"]
LAYOUTS = ("llava", "sharegpt")

def robotracer_answer(trajectory_m: np.ndarray, intrinsics: CameraIntrinsics, with_depth: bool = True) -> str:
    """A camera-frame trace (N, 3) written the way RoboTracer answers. Raises ValueError when a point
    is behind the camera or outside the image (such a sample cannot teach the model anything)."""
    pts = np.asarray(trajectory_m, dtype=float).reshape(-1, 3)
    uv = project(pts, intrinsics)
    bad = ~np.all(np.isfinite(uv), axis=1) | (uv[:, 0] < 0) | (uv[:, 0] > intrinsics.width) \
        | (uv[:, 1] < 0) | (uv[:, 1] > intrinsics.height)
    if np.any(bad):
        raise ValueError(f"{int(bad.sum())} of {len(pts)} trace points are behind the camera or outside the image")
    robotracer = get_convention("robotracer")
    return robotracer.format_points(uv, intrinsics.width, intrinsics.height, pts[:, 2] if with_depth else None)


@dataclass
class ExportResult:
    """How many conversations were written, and which samples were left out and why."""

    path: Path
    n_written: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _conversation(sample: BenchmarkSample, answer: str, prompt: str, image: str, layout: str,
                  intr: CameraIntrinsics, depth: str) -> dict[str, object]:
    extras: dict[str, object] = {
        "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
                       "width": intr.width, "height": intr.height},
    }
    if depth:
        extras["depth"] = depth
    if layout == "llava":
        return {"id": str(sample.question_id), "image": image,
                "conversations": [{"from": "human", "value": "<image>\n" + prompt}, {"from": "gpt", "value": answer}],
                **extras}
    return {"conversations": [{"from": "human", "value": "<image>" + prompt}, {"from": "gpt", "value": answer}],
            "images": [image], **extras}


def export_finetune(
    samples: Sequence[BenchmarkSample],
    out_path: str | Path,
    layout: Layout = "llava",
    with_depth: bool = True,
    image_prefix: str = "",
    dataset_dir: Path | None = None,
    max_points: int | None = None,
) -> ExportResult:
    """Write the conversations for ``samples`` to ``out_path`` (a JSON list).

    ``dataset_dir`` lets the image size be read from the images when the samples do not carry it;
    ``max_points`` resamples longer ground-truth traces by arc length to at most that many points
    (RoboTracer answers with up to about 10).
    """
    if layout not in LAYOUTS:
        raise ConfigError(format_choices("fine-tuning layout", layout, LAYOUTS))
    if max_points is not None and max_points < 2:
        raise ConfigError(f"max_points must be at least 2, got {max_points}")
    template = PROMPTS["robotracer_3d" if with_depth else "robotracer_2d"]
    records, skipped = [], []
    for sample in samples:
        (width, height), source = resolve_image_size(sample, base_dir=dataset_dir)
        if source == "principal_point":
            skipped.append((str(sample.question_id), "image size unknown (no image_width/height and no image file)"))
            continue
        intr = CameraIntrinsics.from_matrix(sample.K, width, height)
        traj = sample.trajectory_m
        if max_points is not None and len(traj) > max_points:
            traj = resample_by_count(traj, max_points)
        try:
            answer = robotracer_answer(traj, intr, with_depth)
        except ValueError as err:
            skipped.append((str(sample.question_id), str(err)))
            continue
        image = image_prefix + sample.image_path
        depth = image_prefix + sample.depth_path if sample.depth_path else ""
        records.append(_conversation(sample, answer, render_prompt(template, sample.prompt), image, layout,
                                     intr, depth))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return ExportResult(out, len(records), skipped)
