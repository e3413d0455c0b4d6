"""``spatial-trace eval-answers`` on the real RoboTracer/Gemini answers, checked against an independent
hand computation (ast.literal_eval + plain loops and the benchmark's formulas), and on small files
this test writes itself."""

from __future__ import annotations

import ast
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from spatial_trace_ros.cli import main
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.dataset import parse_image_size, read_benchmark
from spatial_trace_ros.eval.finetune_export import robotracer_answer
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics

ROBOTRACER_3D = "RoboTracer_Intrinsics_Depth_3D.jsonl"


def _hand_check(record: dict) -> tuple[bool, bool]:
    """Start and end success of one RoboTracer 3D answer, computed the long way.

    Image size 2cx x 2cy (rounded); back-projection as in the benchmark, X = (x*W/1000 - cx) * d / fx;
    start: first point within 0.20 m of the ground truth's first point; end: any of the last three
    points within 0.20 m of the oriented box (box axes are the columns of bbox_rotation, extent is the
    full side length).
    """
    K = record["gt_depth_intrinsics"]
    fx, fy, cx, cy = K[0][0], K[1][1], K[0][2], K[1][2]
    W, H = round(2 * cx), round(2 * cy)
    points = []
    for x, y, d in ast.literal_eval(record["model_prediction"]):
        points.append(((x * W / 1000 - cx) * d / fx, (y * H / 1000 - cy) * d / fy, d))
    start_ok = math.dist(points[0], record["trajectory"][0]) <= 0.20
    center, extent, R = record["bbox_center"], record["bbox_extent"], record["bbox_rotation"]
    end_ok = False
    for p in points[-3:]:
        outside_sq = 0.0
        for axis in range(3):
            local = sum((p[k] - center[k]) * R[k][axis] for k in range(3))
            excess = max(abs(local) - extent[axis] / 2, 0.0)
            outside_sq += excess * excess
        if math.sqrt(outside_sq) <= 0.20:
            end_ok = True
    return start_ok, end_ok


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_robotracer_3d_parses_fully_and_matches_the_hand_check(
    reference_outputs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = reference_outputs_dir / ROBOTRACER_3D
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    hand = [_hand_check(r) for r in records]
    csv_path = tmp_path / "scores.csv"
    code, out, err = _run(capsys, "eval-answers", str(path), "--convention", "robotracer", "--json",
                          "--csv", str(csv_path))
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert summary["n_samples"] == 100 and summary["n_parsed"] == 100 and summary["n_3d"] == 100
    assert summary["parse_rate"] == 1.0
    assert summary["start_success_rate"] == pytest.approx(sum(s for s, _ in hand) / 100)
    assert summary["end_success_rate"] == pytest.approx(sum(e for _, e in hand) / 100)
    assert summary["success_rate"] == pytest.approx(sum(s and e for s, e in hand) / 100)
    # Not a degenerate agreement: the model succeeds on some samples and fails on others.
    assert 0.2 < summary["success_rate"] < 0.8
    # The image size was guessed from the principal point, and the command said so.
    assert json.loads(out)["image_size_guessed"] == 100
    assert "2*cx x 2*cy" in err and "--image-size" in err

    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 100
    for row, record, (start_ok, end_ok) in zip(rows, records, hand):
        assert row["question_id"] == str(record["question_id"])
        assert (row["start_success"], row["end_success"]) == (str(start_ok), str(end_ok))
        assert row["rule"] == "3d" and float(row["frechet_m"]) >= float(row["hausdorff_m"]) - 1e-9


def test_first_sample_by_hand(reference_outputs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sample 0 with its numbers written out: the first predicted point (726, 624, 1.533)."""
    fx, cx = 421.6617431640625, 253.9289093017578
    fy, cy = 421.6598815917969, 192.12013244628906
    W, H = 508, 384  # round(2 cx), round(2 cy)
    first = ((726 * W / 1000 - cx) * 1.533 / fx, (624 * H / 1000 - cy) * 1.533 / fy, 1.533)
    gt_start = (0.3656957605957062, -0.0154727397889737, 1.7449999999999999)
    start_error = math.dist(first, gt_start)
    csv_path = tmp_path / "s.csv"
    code, _, _ = _run(capsys, "eval-answers", str(reference_outputs_dir / ROBOTRACER_3D), "--csv", str(csv_path))
    assert code == 0
    with csv_path.open() as fh:
        row = next(csv.DictReader(fh))
    assert (int(row["image_width"]), int(row["image_height"])) == (W, H)
    assert float(row["start_error"]) == pytest.approx(start_error, rel=1e-9)
    assert row["start_success"] == str(start_error <= 0.2)


def test_other_reference_files_score(reference_outputs_dir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "eval-answers", str(reference_outputs_dir / "RoboTracer_Intrinsics_Depth_2D.jsonl"),
                        "--json", "--csv", str(tmp_path / "a.csv"), "--image-size", "640x480")
    summary = json.loads(out)["summary"]
    assert code == 0 and summary["n_parsed"] == 100 and summary["n_image_plane"] == 100
    assert summary["mean_frechet_m"] is None and summary["mean_frechet_px"] > 0
    assert json.loads(out)["image_size_guessed"] == 0
    # Gemini's 3D answers carry reasoning and intermediate coordinates; the final list is scored.
    code, out, _ = _run(capsys, "eval-answers", str(reference_outputs_dir / "Gemini3Pro_3D.jsonl"), "--json",
                        "--csv", str(tmp_path / "b.csv"))
    gemini = json.loads(out)["summary"]
    assert code == 0 and gemini["n_parsed"] >= 95
    assert gemini["success_rate"] < 0.46  # far behind RoboTracer on the same samples


# -- files this test writes -------------------------------------------------------------------------
INTR = CameraIntrinsics(640, 480, fx=500.0, fy=500.0, cx=320.0, cy=240.0)


def _record(qid: int, trajectory: np.ndarray, prediction: str | None, category: str, step: int) -> dict:
    rec = {
        "question_id": qid, "prompt": f"move the block {qid}", "gt_depth_intrinsics": INTR.K.tolist(),
        "trajectory": trajectory.tolist(), "bbox_center": trajectory[-1].tolist(), "bbox_extent": [0.1, 0.1, 0.1],
        "bbox_rotation": np.eye(3).tolist(), "image_width": 640, "image_height": 480, "category": category,
        "step": step, "image_path": f"{qid}/image.png",
    }
    if prediction is not None:
        rec["model_prediction"] = prediction
    return rec


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_perfect_and_wrong_answers_by_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = np.array([[-0.2, 0.1, 1.0], [-0.1, -0.05, 1.0], [0.1, -0.05, 1.1], [0.2, 0.1, 1.1]])
    records = []
    for k in range(4):
        records.append(_record(k, traj, robotracer_answer(traj, INTR), "place", 1))
        wrong = traj + np.array([0.5, 0.0, 0.3])  # 0.58 m away everywhere
        records.append(_record(10 + k, traj, robotracer_answer(wrong, INTR), "push", 2))
    records.append(_record(99, traj, "I cannot see the block.", "push", 2))
    path = _write(tmp_path / "answers.jsonl", records)
    csv_path = tmp_path / "out.csv"
    code, out, err = _run(capsys, "eval-answers", str(path), "--csv", str(csv_path))
    assert code == 0 and "warning" not in err  # the samples carry their image size
    assert "category" in out and "difficulty" in out and "place" in out and "push" in out
    code, out, _ = _run(capsys, "eval-answers", str(path), "--csv", str(csv_path), "--json")
    summary = json.loads(out)["summary"]
    assert summary["n_samples"] == 9 and summary["n_parsed"] == 8
    assert summary["success_rate"] == pytest.approx(4 / 9)
    with csv_path.open() as fh:
        rows = {r["question_id"]: r for r in csv.DictReader(fh)}
    assert rows["0"]["success"] == "True" and float(rows["0"]["ndtw"]) > 0.95
    assert float(rows["0"]["frechet_m"]) < 0.01  # only the 0-1000 rounding separates them
    assert rows["10"]["success"] == "False" and float(rows["10"]["start_error"]) == pytest.approx(0.583, abs=0.01)
    assert rows["99"]["parsed"] == "False" and "no list of points" in rows["99"]["parse_error"]
    assert float(rows["99"]["reward_total"]) == 0.0
    assert float(rows["0"]["reward_total"]) > float(rows["10"]["reward_total"]) > 0.0


def test_bad_inputs_give_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]])
    dataset = _write(tmp_path / "dataset.jsonl", [_record(0, traj, None, "", 1)])
    code, _, err = _run(capsys, "eval-answers", str(dataset), "--csv", str(tmp_path / "x.csv"))
    assert code == 2 and "no model_prediction" in err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_record(0, traj, "[(1, 2)]", "", 1)) + "\n{not json\n")
    code, _, err = _run(capsys, "eval-answers", str(broken))
    assert code == 2 and "line 2" in err and "not valid JSON" in err
    missing = _record(0, traj, "[(1, 2)]", "", 1)
    del missing["bbox_rotation"]
    code, _, err = _run(capsys, "eval-answers", str(_write(tmp_path / "m.jsonl", [missing])))
    assert code == 2 and "bbox_rotation" in err and "line 1" in err
    code, _, err = _run(capsys, "eval-answers", str(dataset), "--image-size", "640by480")
    assert code == 2 and "WIDTHxHEIGHT" in err
    code, _, err = _run(capsys, "eval-answers", str(dataset), "--start-threshold-m", "-1")
    assert code == 2 and "start_threshold_m" in err


def test_reader_accepts_json_lists_and_4x4_intrinsics(tmp_path: Path) -> None:
    traj = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]])
    rec = _record(5, traj, "[(1, 2), (3, 4)]", "c", 3)
    K4 = np.eye(4)
    K4[:3, :3] = INTR.K
    rec["gt_depth_intrinsics"] = K4.tolist()
    path = tmp_path / "d.json"
    path.write_text(json.dumps([rec]))
    (sample,) = read_benchmark(path)
    np.testing.assert_allclose(sample.K, INTR.K)
    assert (sample.question_id, sample.difficulty, sample.category, sample.image_size) == (5, 3, "c", (640, 480))
    assert parse_image_size("1280x720") == (1280, 720)
    with pytest.raises(ConfigError, match="positive"):
        parse_image_size("0x720")
