"""``spatial-trace eval --execute``: run each synthetic sample's answered trace as a task in the
simulated cell and report task success per category beside the trace metrics.

For every sample that names its simulated scene (``scene_path``, as ``spatial-trace synth`` writes):
the model's answer is parsed and deprojected with the sample's intrinsics, put in the robot's base
frame with the scene's camera pose, planned as a task with the robot's gripper, executed in lockstep
physics and judged from the simulated world (``sim.task_eval``). This is the simulated counterpart of a
real-robot success rate: a trace the planner refuses, a grasp that fails or an object that ends in the
wrong place all count as failures; samples whose instruction the judge does not know are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError, SpatialTraceError
from spatial_trace_ros.eval.dataset import DatasetEntry, sample_from_record
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, deproject
from spatial_trace_ros.trace.parser import TraceParseError, parse_answer

EXECUTION_FILE = "execution.json"


def _points_base(row: dict[str, Any], base_dir: Path, record: dict[str, Any]) -> tuple[np.ndarray | None, str]:
    """The answer's trace in the base frame, or None and why."""
    sample = sample_from_record(row, "answer")
    width, height = int(record.get("image_width", 640)), int(record.get("image_height", 480))
    convention = (row.get("eval") or {}).get("convention") or "robotracer"
    try:
        answer = parse_answer(sample.model_prediction or "", convention, width, height)
    except (TraceParseError, ConfigError) as err:
        return None, f"answer not parsed: {err}"
    depth = np.asarray(answer.depth_m, float).reshape(-1)
    if not answer.has_depth or not np.all(np.isfinite(depth) & (depth > 0)):
        return None, "the answer has no depth: a 2D trace cannot be executed"
    intr = CameraIntrinsics.from_matrix(sample.K, width, height)
    cam = deproject(np.asarray(answer.uv, float).reshape(-1, 2), depth, intr)
    camera_file = base_dir / Path(record["scene_path"]).parent / "camera.json"
    base_T_camera = np.asarray(json.loads(camera_file.read_text())["base_T_camera"], float)
    return cam @ base_T_camera[:3, :3].T + base_T_camera[:3, 3], ""


def execute_answers(entries: Sequence[DatasetEntry], rows: dict[str, dict[str, Any]], base_dir: Path,
                    out_dir: Path, robot: str = "") -> dict[str, Any]:
    """Execute every answered synthetic sample; writes ``execution.json`` and returns its content."""
    from spatial_trace_ros.sim.scene import load_scene
    from spatial_trace_ros.sim.task_eval import SimTaskExecutor

    executors: dict[str, SimTaskExecutor] = {}
    results: list[dict[str, Any]] = []
    for entry in entries:
        record, row = entry.record, rows.get(entry.qid)
        if row is None or "scene_path" not in record:
            continue
        item = {"question_id": entry.qid, "category": record.get("category", ""), "instruction": record["prompt"]}
        points, why = _points_base(row, base_dir, record)
        if points is None:
            results.append({**item, "success": False, "reason": why})
            continue
        key = f"{record['scene_path']}|{record.get('robot') or robot or 'ur5e'}"
        if key not in executors:
            scene = load_scene(base_dir / record["scene_path"])
            executors[key] = SimTaskExecutor(record.get("robot") or robot or "ur5e", scene=scene)
        ex = executors[key]
        ex.reset()
        try:
            out = ex.run(record["prompt"], points)
        except SpatialTraceError as err:
            results.append({**item, "success": False, "reason": str(err)})
            continue
        if not out.object_start_m and not out.planned:  # the judge does not know this instruction
            results.append({**item, "success": None, "reason": out.reason})
            continue
        results.append({**item, "success": out.success, "grasp": out.grasp, "planned": out.planned,
                        "reason": out.reason, "seconds": round(out.seconds, 2)})
    judged = [r for r in results if r["success"] is not None]
    per_category: dict[str, dict[str, float]] = {}
    for cat in sorted({r["category"] for r in judged}):
        rs = [r for r in judged if r["category"] == cat]
        per_category[cat] = {"n": len(rs), "task_success": round(sum(bool(r["success"]) for r in rs) / len(rs), 3)}
    document = {"n_executed": len(judged), "n_skipped": len(results) - len(judged),
                "task_success": round(sum(bool(r["success"]) for r in judged) / len(judged), 3) if judged else None,
                "per_category": per_category, "samples": results}
    (out_dir / EXECUTION_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return document


def format_execution(document: dict[str, Any]) -> str:
    """The per-category table of task success (executed in simulation)."""
    lines = [f"executed in simulation: {document['n_executed']} samples ({document['n_skipped']} skipped); "
             f"task success {document['task_success'] if document['task_success'] is not None else '-'}",
             "category        n  task success"]
    for cat, v in document["per_category"].items():
        lines.append(f"{cat:<14} {v['n']:>3}  {v['task_success']:.3f}")
    return "\n".join(lines)
