"""What happened to each demo instruction, and the summary table (markdown + JSON) made from it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spatial_trace_ros.demo.instructions import DemoInstruction


@dataclass
class InstructionReport:
    """One instruction's way through the stack. Times are seconds; positions metres, robot base frame."""

    index: int
    instruction: str
    expect: str = "any"
    expect_codes: tuple[str, ...] = ()
    trace_state: str = ""  # ok / refused / error / timeout
    trace_reason: str = ""
    n_points: int = 0
    trace_length_m: float | None = None
    model_latency_s: float | None = None
    verdict: str = ""  # ACCEPT / ADJUSTED / REJECT, '' if the planner never saw a trace
    codes: tuple[str, ...] = ()
    safety_message: str = ""  # the verdict's reasons in words
    n_waypoints: int = 0
    plan_duration_s: float | None = None
    plan_length_m: float | None = None
    outcome: str = ""  # succeeded / aborted / stopped, '' if not executed
    outcome_reason: str = ""
    tracking_error_m: float | None = None  # the controller's largest distance from the planned path
    trace_s: float | None = None  # instruction sent -> trace stage's result
    plan_s: float | None = None  # trace published -> safety verdict
    execute_s: float | None = None  # ~/execute called -> the run's outcome
    total_s: float | None = None
    overlay_png: str = ""
    problem: str = ""  # a stage that timed out or failed, in words
    task_kind: str = ""  # pick_up / place / push (planning.task), '' without a task plan
    grasp: str = ""  # none / held / failed: what the gripper reported
    task_success: bool | None = None  # judged from the simulated world (sim.task_eval.judge_task)
    task_reason: str = ""  # where the object ended, against the task's target region
    object_paths_m: dict[str, list] = field(default_factory=dict, repr=False)  # objects the run moved
    planned_path_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    executed_path_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)
    trace_base_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)), repr=False)

    @classmethod
    def start(cls, index: int, item: DemoInstruction) -> InstructionReport:
        return cls(index, item.text, item.expect, item.expect_codes)

    @property
    def met_expectation(self) -> bool:
        """Did the stack do what the demo expected (and nothing went wrong on the way)?"""
        if self.problem:
            return False
        if self.expect == "execute":
            done = self.verdict in ("ACCEPT", "ADJUSTED") and self.outcome == "succeeded"
            return done and self.task_success is not False
        if self.expect == "refuse":
            return self.verdict == "REJECT" and all(c in self.codes for c in self.expect_codes)
        return True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("planned_path_m", "executed_path_m", "trace_base_m", "object_paths_m"):
            data.pop(key)
        data["expect_codes"] = list(self.expect_codes)
        data["codes"] = list(self.codes)
        data["met_expectation"] = self.met_expectation
        return data


def _num(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * scale:.{digits}f}"


def summary_markdown(reports: list[InstructionReport], header: dict[str, str]) -> str:
    """The table a person reads: one row per instruction, then why anything was refused or failed."""
    lines = ["# spatial_trace_ros demo", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        "| # | instruction | trace | points | trace length [m] | verdict | plan [s] | outcome | grasp | task | "
        "tracking error [mm] | trace stage [s] | planning [s] | execution [s] | as expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.index} | {r.instruction} | {r.trace_state or '-'} | {r.n_points} | {_num(r.trace_length_m)} | "
            f"{r.verdict or '-'} | {_num(r.plan_duration_s)} | {r.outcome or '-'} | {r.grasp or '-'} | "
            f"{'-' if r.task_success is None else ('done' if r.task_success else 'FAILED')} | "
            f"{_num(r.tracking_error_m, 1000, 1)} | {_num(r.trace_s)} | "
            f"{_num(r.plan_s, 1, 3)} | {_num(r.execute_s)} | {'yes' if r.met_expectation else 'NO'} |"
        )
    notes = []
    for r in reports:
        if r.problem:
            notes.append(f"- #{r.index}: {r.problem}")
        if r.trace_state in ("refused", "error"):
            notes.append(f"- #{r.index}: the trace stage {r.trace_state} it: {r.trace_reason}")
        if r.verdict == "REJECT":
            notes.append(f"- #{r.index}: the safety filter refused it ({', '.join(r.codes)}): {r.safety_message}")
        if r.outcome and r.outcome != "succeeded":
            notes.append(f"- #{r.index}: the run {r.outcome}: {r.outcome_reason}")
        if r.task_reason:
            verdict = "task done" if r.task_success else "task NOT done"
            notes.append(f"- #{r.index}: {verdict} ({r.task_kind}, grasp {r.grasp}): {r.task_reason}")
    if notes:
        lines += ["", "## Tasks, refusals and problems", "", *notes]
    return "\n".join(lines) + "\n"


def write_summary(reports: list[InstructionReport], header: dict[str, str], extra: dict[str, Any],
                  out_dir: Path) -> tuple[Path, Path]:
    """``summary.md`` and ``summary.json`` in ``out_dir``."""
    md_path, json_path = out_dir / "summary.md", out_dir / "summary.json"
    md_path.write_text(summary_markdown(reports, header))
    payload = {**header, **extra, "instructions": [r.to_json() for r in reports],
               "all_as_expected": all(r.met_expectation for r in reports)}
    json_path.write_text(json.dumps(payload, indent=2))
    return md_path, json_path
