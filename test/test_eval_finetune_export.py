"""Fine-tuning export: the conversation layouts, and answers that parse back to the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.dataset import sample_from_record
from spatial_trace_ros.eval.finetune_export import export_finetune, robotracer_answer
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, deproject
from spatial_trace_ros.trace.parser import parse_answer

INTR = CameraIntrinsics(640, 480, fx=600.0, fy=600.0, cx=320.0, cy=240.0)
TRAJ = np.array([[-0.2, 0.1, 0.9], [-0.1, -0.1, 0.95], [0.05, -0.12, 1.0], [0.2, 0.05, 1.05]])


def _sample(qid: int, traj: np.ndarray = TRAJ, with_size: bool = True) -> object:
    rec = {
        "question_id": qid, "prompt": f"put the red cube {qid} on the plate", "gt_depth_intrinsics": INTR.K.tolist(),
        "trajectory": traj.tolist(), "bbox_center": traj[-1].tolist(), "bbox_extent": [0.1, 0.1, 0.1],
        "bbox_rotation": np.eye(3).tolist(), "image_path": f"{qid}/image.png", "gt_depth_path": f"{qid}/depth.png",
    }
    if with_size:
        rec.update(image_width=640, image_height=480)
    return sample_from_record(rec)


def test_answer_round_trips_through_the_parser() -> None:
    text = robotracer_answer(TRAJ, INTR)
    assert text.startswith("[(") and text.count("(") == len(TRAJ)
    parsed = parse_answer(text, "robotracer", INTR.width, INTR.height)
    assert parsed.has_depth
    np.testing.assert_allclose(parsed.depth_m, TRAJ[:, 2], atol=5e-4)
    back = deproject(parsed.uv, parsed.depth_m, INTR)
    # 0-1000 rounding: half a step is 0.32 px here, i.e. under 0.6 mm at 1 m.
    assert np.max(np.linalg.norm(back - TRAJ, axis=1)) < 1e-3
    text_2d = robotracer_answer(TRAJ, INTR, with_depth=False)
    parsed_2d = parse_answer(text_2d, "robotracer", INTR.width, INTR.height)
    assert not parsed_2d.has_depth
    np.testing.assert_allclose(parsed_2d.uv, parsed.uv)


def test_points_outside_the_image_are_refused() -> None:
    with pytest.raises(ValueError, match="behind the camera or outside"):
        robotracer_answer(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), INTR)
    with pytest.raises(ValueError, match="1 of 2"):
        robotracer_answer(np.array([[0.0, 0.0, 1.0], [5.0, 0.0, 1.0]]), INTR)


def test_llava_layout(tmp_path: Path) -> None:
    out = tmp_path / "ft" / "train.json"
    far = TRAJ.copy()
    far[2] = [3.0, 0.0, 1.0]  # leaves the image: skipped, with the reason
    result = export_finetune([_sample(1), _sample(2, far), _sample(3)], out, layout="llava", image_prefix="data/")
    assert result.n_written == 2 and [qid for qid, _ in result.skipped] == ["2"]
    records = json.loads(out.read_text())
    first = records[0]
    assert first["id"] == "1" and first["image"] == "data/1/image.png" and first["depth"] == "data/1/depth.png"
    human, gpt = first["conversations"]
    assert human["from"] == "human" and human["value"].startswith("<image>\nPoint the 3D object-centric")
    assert '"put the red cube 1 on the plate"' in human["value"]
    assert gpt["from"] == "gpt" and gpt["value"] == robotracer_answer(TRAJ, INTR)
    assert first["intrinsics"] == {"fx": 600.0, "fy": 600.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480}


def test_sharegpt_layout_2d_and_resampling(tmp_path: Path) -> None:
    dense = np.linspace(TRAJ[0], TRAJ[-1], 40)
    result = export_finetune([_sample(7, dense)], tmp_path / "t.json", layout="sharegpt", with_depth=False,
                             max_points=8)
    (record,) = json.loads((tmp_path / "t.json").read_text())
    assert result.n_written == 1
    assert record["images"] == ["7/image.png"]
    human, gpt = record["conversations"]
    assert human["value"].startswith("<image>Point the 2D object-centric")
    parsed = parse_answer(gpt["value"], "robotracer", 640, 480)
    assert len(parsed) == 8 and not parsed.has_depth


def test_image_size_from_the_image_file_or_skip(tmp_path: Path) -> None:
    (tmp_path / "4").mkdir()
    Image.new("RGB", (640, 480)).save(tmp_path / "4" / "image.png")
    samples = [_sample(4, with_size=False), _sample(5, with_size=False)]  # 5 has no image file
    result = export_finetune(samples, tmp_path / "o.json", dataset_dir=tmp_path)
    assert result.n_written == 1
    assert result.skipped == [("5", "image size unknown (no image_width/height and no image file)")]


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="available: llava, sharegpt"):
        export_finetune([_sample(1)], tmp_path / "x.json", layout="alpaca")
    with pytest.raises(ConfigError, match="max_points"):
        export_finetune([_sample(1)], tmp_path / "x.json", max_points=1)
