"""Evaluating a live backend end to end on synthetic data: the oracle scores near-perfectly, a
perturbed oracle scores worse the larger the perturbation, runs resume, concurrency is bounded, and a
real HTTP backend (against the fake model server in its own process) goes through the same path."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from spatial_trace_ros.cli import main
from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.eval.dataset import load_entries, load_frame
from spatial_trace_ros.eval.live_eval import ANSWERS_FILE, evaluate_backend, plan_run, read_answer_rows
from spatial_trace_ros.eval.synth import generate_dataset, make_config
from spatial_trace_ros.eval.synth_tasks import ORACLE_CATEGORIES
from spatial_trace_ros.testing.fake_model_servers import fake_requests, start_fake_model_server
from spatial_trace_ros.testing.processes import ProcessGroup, free_port
from spatial_trace_ros.trace.model import ModelAnswer, TraceModel, TraceQuery, make_trace_model

N_SAMPLES = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four scenes, three tasks each, in every category (the oracle understands them all)."""
    out = tmp_path_factory.mktemp("live") / "data"
    generate_dataset(make_config(n_scenes=4, seed=11, width=320, height=240, categories=ORACLE_CATEGORIES), out,
                     progress=False)
    return out


def test_oracle_scores_near_perfectly_and_writes_the_report(dataset: Path, tmp_path: Path) -> None:
    result = evaluate_backend(dataset, "oracle", {}, tmp_path / "run", progress=False)
    report = result.report
    s = report.summary
    assert result.n_selected == result.n_answered_now == N_SAMPLES and report.n_errors == 0
    assert s.parse_rate == 1.0 and s.success_rate == 1.0 and s.n_3d == N_SAMPLES
    # Only the 0-1000 pixel rounding and 1 mm depth rounding of the answer text separate it from the truth.
    assert s.mean_frechet_m < 0.005 and s.mean_start_error_m < 0.003 and s.mean_rmse_m < 0.003
    assert s.reward_score > 0.97
    for key in ("scores_csv", "summary_json", "report_txt", "success_vs_difficulty_png", "error_histograms_png",
                "best_worst_png"):
        assert report.files[key].is_file(), key
    for key in ("success_vs_difficulty_png", "error_histograms_png", "best_worst_png"):
        with Image.open(report.files[key]) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 200
    rows = list(csv.DictReader(report.files["scores_csv"].open()))
    assert len(rows) == N_SAMPLES and all(r["success"] == "True" for r in rows)
    summary = json.loads(report.files["summary_json"].read_text())
    assert summary["summary"]["success_rate"] == 1.0 and summary["backend"] == "oracle"
    assert set(summary["per_category"]) == {r["category"] for r in rows}
    # The hardest category too: sliding around the object in the way is answered and scored a success.
    go_around = [r for r in rows if r["category"] == "go_around"]
    assert len(go_around) >= 2 and all(r["success"] == "True" and r["parsed"] == "True" for r in go_around)
    assert summary["per_category"]["go_around"]["success_rate"] == 1.0
    assert set(summary["per_difficulty"]) == {r["difficulty"] for r in rows}
    text = report.files["report_txt"].read_text()
    assert "category" in text and "difficulty" in text and "place_relative" in text


def test_scores_fall_as_the_perturbation_grows(dataset: Path, tmp_path: Path) -> None:
    summaries = []
    for noise_m in (0.0, 0.03, 0.1):
        result = evaluate_backend(dataset, "oracle", {"perturbation_m": noise_m}, tmp_path / f"noise_{noise_m}",
                                  plots=False, progress=False)
        summaries.append(result.report.summary)
    scores = [s.reward_score for s in summaries]
    rmse = [s.mean_rmse_m for s in summaries]
    success = [s.success_rate for s in summaries]
    assert scores[0] > scores[1] > scores[2], scores
    assert rmse[0] < rmse[1] < rmse[2], rmse
    assert success[0] >= success[1] >= success[2] and success[2] < success[0], success


def test_runs_resume_and_refuse_to_mix(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = evaluate_backend(dataset, "oracle", {}, out, n_samples=5, plots=False, progress=False)
    assert first.n_answered_now == 5 and first.report.summary.n_samples == 5
    # A run killed while writing leaves half a line: it is ignored and that sample is asked again.
    with (out / ANSWERS_FILE).open("a") as fh:
        fh.write('{"question_id": 7, "model_predi')
    second = evaluate_backend(dataset, "oracle", {}, out, plots=False, progress=False)
    assert second.n_done_before == 5 and second.n_answered_now == N_SAMPLES - 5
    rows = read_answer_rows(out / ANSWERS_FILE)
    assert sorted(int(k) for k in rows) == list(range(N_SAMPLES))
    assert second.report.summary.success_rate == 1.0
    third = evaluate_backend(dataset, "oracle", {}, out, plots=False, progress=False)
    assert third.n_answered_now == 0 and third.n_done_before == N_SAMPLES
    with pytest.raises(ConfigError, match=r"different run .*options"):
        evaluate_backend(dataset, "oracle", {"perturbation_m": 0.05}, out, plots=False, progress=False)


def test_failed_requests_are_recorded_scored_as_failures_and_retried(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "wild"
    # A metre of noise throws most points out of the picture: the oracle refuses to answer those.
    result = evaluate_backend(dataset, "oracle", {"perturbation_m": 1.0}, out, plots=False, progress=False)
    rows = read_answer_rows(out / ANSWERS_FILE)
    failed = sorted(qid for qid, row in rows.items() if row["eval"].get("error"))
    assert 0 < len(failed) == result.report.n_errors
    for q in failed:
        error = rows[q]["eval"]["error"]
        assert "outside the camera's view" in error or "behind the camera" in error, error
        assert rows[q]["model_prediction"] == ""
    assert result.report.summary.n_parsed == N_SAMPLES - len(failed)
    assert "failed requests" in result.report.text
    pending = plan_run(load_entries(dataset / "samples.jsonl"), out / ANSWERS_FILE, None).pending
    assert sorted(e.qid for e in pending) == failed
    again = evaluate_backend(dataset, "oracle", {"perturbation_m": 1.0}, out, plots=False, progress=False)
    assert again.n_answered_now == len(failed)


class InFlightCounter(TraceModel):
    """The real oracle behind a wrapper that counts how many questions are open at once. Until
    ``target`` questions have been open together, each one waits for the others (at most
    ``patience_s``, so a runner that allows fewer cannot hang the test)."""

    state: ClassVar[dict[str, int]] = {"now": 0, "max": 0}
    target = 3
    patience_s = 10.0
    reached: ClassVar[dict[str, asyncio.Event]] = {}

    def __init__(self, **options: Any) -> None:
        self.inner = make_trace_model("oracle", **options)
        self.name, self.convention = self.inner.name, self.inner.convention

    async def answer(self, query: TraceQuery) -> list[ModelAnswer]:
        reached = self.reached.setdefault("event", asyncio.Event())
        self.state["now"] += 1
        self.state["max"] = max(self.state["max"], self.state["now"])
        if self.state["now"] >= self.target:
            reached.set()
        try:
            if not reached.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(reached.wait(), self.patience_s)
            return await self.inner.answer(query)
        finally:
            self.state["now"] -= 1


def test_concurrency_is_bounded(dataset: Path, tmp_path: Path) -> None:
    InFlightCounter.state.update(now=0, max=0)
    InFlightCounter.reached.clear()
    result = evaluate_backend(dataset, "oracle", {}, tmp_path / "run", concurrency=3, plots=False, progress=False,
                              factory=lambda name, **options: InFlightCounter(**options))
    assert InFlightCounter.state["max"] == 3
    assert result.report.summary.success_rate == 1.0


def test_http_backend_against_the_fake_model_server(dataset: Path, tmp_path: Path, procs: ProcessGroup) -> None:
    answer = "[(400, 500, 1.0), (450, 450, 0.98), (500, 420, 0.97)]"
    base_url, _ = start_fake_model_server(procs, free_port(), answers=[answer])
    result = evaluate_backend(dataset, "robotracer", {"base_url": base_url}, tmp_path / "run", n_samples=4,
                              concurrency=2, plots=False, progress=False)
    received = fake_requests(base_url)
    assert len(received) == 4 and result.report.n_errors == 0
    prompts = {e.sample.prompt for e in load_entries(dataset / "samples.jsonl")[:4]}
    assert {next(p for p in prompts if f'"{p}"' in r["text"]) for r in received} == prompts
    assert all(r["enable_depth"] == 1 for r in received)
    rows = read_answer_rows(tmp_path / "run" / ANSWERS_FILE)
    assert all(row["model_prediction"] == answer and row["eval"]["convention"] == "robotracer" for row in rows.values())
    s = result.report.summary
    assert s.parse_rate == 1.0 and s.n_3d == 4 and s.success_rate < 1.0  # a fixed answer is not the truth


def test_frames_come_from_the_dataset_files(dataset: Path) -> None:
    entry = load_entries(dataset / "samples.jsonl")[0]
    frame = load_frame(entry, dataset)
    assert frame.color.shape == (240, 320, 3) and frame.depth.dtype == np.uint16
    assert frame.intrinsics.width == 320 and np.isclose(frame.intrinsics.fx, entry.sample.K[0, 0])
    z = frame.depth_m[tuple(np.rint(frame.intrinsics.K[:2, 2][::-1]).astype(int))]
    assert 0.3 < z < 3.0


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_command_and_eval_answers_on_its_output(dataset: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code, stdout, _ = _run(capsys, "eval", "--dataset", str(dataset), "--backend", "oracle", "--n-samples", "4",
                           "--out", str(out), "--option", "perturbation_m=0.0", "--no-plots", "--no-progress", "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["n_samples"] == 4 and result["summary"]["success_rate"] == 1.0
    # The answers file is itself a TraceSpatial-Bench answers file.
    code, stdout, _ = _run(capsys, "eval-answers", str(out / ANSWERS_FILE), "--json", "--csv", str(tmp_path / "s.csv"))
    assert code == 0 and json.loads(stdout)["summary"]["success_rate"] == 1.0


def test_eval_command_errors(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "eval", "--dataset", str(dataset), "--backend", "gpt9", "--out", str(tmp_path / "a"))
    assert code == 2 and "unknown trace backend 'gpt9'; available: http, openai, oracle, robotracer" in err
    code, _, err = _run(capsys, "eval", "--dataset", str(tmp_path / "none"), "--backend", "oracle")
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, "eval", "--dataset", str(dataset), "--backend", "oracle", "--option", "warp=9",
                        "--out", str(tmp_path / "b"))
    assert code == 2 and "unknown oracle backend option(s) warp" in err
    code, _, err = _run(capsys, "eval", "--dataset", str(dataset), "--backend", "oracle", "--model-samples", "3",
                        "--out", str(tmp_path / "c"))
    assert code == 2 and "temperature > 0" in err
    # The oracle needs the scene the sample was made from.
    record = json.loads((dataset / "samples.jsonl").read_text().splitlines()[0])
    del record["scene_path"]
    (tmp_path / "plain.jsonl").write_text(json.dumps(record) + "\n")
    code, _, err = _run(capsys, "eval", "--dataset", str(tmp_path / "plain.jsonl"), "--backend", "oracle",
                        "--out", str(tmp_path / "d"))
    assert code == 2 and "no scene_path" in err
