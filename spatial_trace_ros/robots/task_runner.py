"""``TaskRunner``: runs a task plan (arm motion with tool actions) on one driver and one gripper.

The plan is cut at its tool actions' waypoints; each piece runs through the ordinary
``ExecutionLoop`` (every setpoint guarded), and between pieces, with the arm at rest, the gripper
does the action: ``open`` / ``release`` open the fingers, ``close`` closes them on nothing (pushing),
``grasp`` closes them and verifies the grasp: the gripper must report an object and the fingers must
have stopped between the tool's ``min_grasp_width_m`` and the object's expected width (plus the
tolerance). A failed grasp stops the task and says why. A stop or an e-stop ends the running piece
and never touches the gripper, so a held object stays held; ``resume`` continues the task from where
the arm stands (the rest of the interrupted piece is re-checked and re-timed by the safety filter).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from spatial_trace_ros.planning.plan import Plan, ToolAction
from spatial_trace_ros.planning.safety import CandidatePath, SafetyFilter
from spatial_trace_ros.planning.tool_geometry import HeldEnvelope, ToolGeometry
from spatial_trace_ros.robots.execution import ExecutionLoop, ExecutionResult
from spatial_trace_ros.tools.description import ToolDescription
from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState

RESUME_SPEED_MPS = 0.1
START_GAP_RAD = 2e-3  # a piece starting further than this from the arm is re-timed from where the arm is


@dataclass
class ActionReport:
    action: str
    waypoint: int
    ok: bool
    width_m: float
    object_detected: bool
    message: str

    def as_dict(self) -> dict:
        width = round(self.width_m, 4) if np.isfinite(self.width_m) else None  # None: not measured
        return {"action": self.action, "waypoint": self.waypoint, "ok": self.ok, "width_m": width,
                "object_detected": self.object_detected, "message": self.message}


@dataclass
class TaskProgress:
    """What the task has done so far; kept across a stop so it can be resumed."""

    plan: Plan
    pieces: list[tuple[int, int]]  # waypoint ranges [start, end] of the motion pieces
    next_piece: int = 0
    actions_done: set[int] = field(default_factory=set)  # indices into plan.tool_actions
    reports: list[ActionReport] = field(default_factory=list)
    holding: bool = False

    @property
    def finished(self) -> bool:
        return self.next_piece >= len(self.pieces) and len(self.actions_done) == len(self.plan.tool_actions)

    def grasp_outcome(self) -> str:
        grasps = [r for r in self.reports if r.action == "grasp"]
        if not grasps:
            return "none"
        return "held" if grasps[-1].ok else "failed"


def split_at_actions(plan: Plan) -> list[tuple[int, int]]:
    """Waypoint ranges of the motion between tool actions (each with at least two waypoints)."""
    cuts = sorted({0, len(plan) - 1, *(a.waypoint for a in plan.tool_actions if 0 < a.waypoint < len(plan) - 1)})
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def sub_plan(plan: Plan, start: int, end: int) -> Plan:
    """Waypoints ``start..end`` of ``plan`` as a plan of their own, starting at time 0."""
    t = plan.times_s[start:end + 1]
    return Plan(robot=plan.robot, frame_id=plan.frame_id, joint_names=plan.joint_names, times_s=t - t[0],
                joints=plan.joints[start:end + 1], poses=plan.poses[start:end + 1],
                plan_id=f"{plan.plan_id}/{start}-{end}", stamp_s=plan.stamp_s, report=plan.report)


class TaskRunner:
    """Runs task plans; ``make_loop()`` gives the execution loop (driver, policy, guard) for a piece."""

    def __init__(self, gripper: Gripper | None, tool: ToolDescription | None,
                 make_loop: Callable[[], ExecutionLoop], safety: SafetyFilter | None = None,
                 before_action: Callable[[float], None] | None = None) -> None:
        self.gripper = gripper
        self.before_action = before_action  # told the longest a gripper action may take [s], before it
        self.tool = tool
        self.make_loop = make_loop
        self.safety = safety
        self.progress: TaskProgress | None = None
        self.geometry = ToolGeometry(tool, safety.config, safety.model) if tool and safety else None
        self.dry_run = False
        self._envelope: HeldEnvelope | None = None

    def _guard_tool(self, loop: ExecutionLoop) -> None:
        """Let the run-time guard check the tool, and the held object from its grasp to its release
        (also through plans without tool actions and after an abort: the object is still held)."""
        if self.geometry is None:
            return
        loop.guard.tool = self.geometry
        loop.guard.held = self._envelope

    def run(self, plan: Plan, dry_run: bool = False) -> tuple[ExecutionResult, TaskProgress | None]:
        """Run ``plan``; ``dry_run``: the tool actions are checked and reported, not sent (the loop's
        driver absorbs the motion)."""
        self.dry_run = dry_run
        if not plan.tool_actions:
            self.progress = None
            loop = self.make_loop()
            self._guard_tool(loop)
            return loop.run(plan), None
        if self.gripper is None or self.tool is None:
            return ExecutionResult("aborted", "the plan has tool actions but this controller has no gripper; set "
                                   "the controller's tool parameter", plan_id=plan.plan_id), None
        first = plan.tool_actions[0]
        if first.waypoint == 0 and first.action in ("open", "release") and not dry_run:
            try:
                holding = self.gripper.read_state().object_detected
            except GripperError as err:
                return ExecutionResult("aborted", f"not started: the gripper does not answer: {err}",
                                       plan_id=plan.plan_id), None
            if holding:
                return ExecutionResult("aborted", "not started: the gripper holds an object and this task would "
                                       "open it where the arm stands, dropping it; put the object down first "
                                       "(a place task, or the gripper's manual open over a safe spot)",
                                       plan_id=plan.plan_id), None
        self.progress = TaskProgress(plan, split_at_actions(plan))
        return self._continue(None)

    def resume(self, q_now: np.ndarray, dry_run: bool = False) -> tuple[ExecutionResult, TaskProgress | None]:
        """Go on with a stopped task from joint positions ``q_now``: the rest of the interrupted piece
        from the waypoint nearest the arm, re-checked and re-timed, then the remaining actions and pieces."""
        self.dry_run = dry_run
        progress = self.progress
        if progress is None or progress.finished:
            return ExecutionResult("aborted", "there is no stopped task to resume"), progress
        start, end = progress.pieces[progress.next_piece]
        plan = progress.plan
        k = start + int(np.argmin(np.linalg.norm(plan.joints[start:end + 1] - q_now, axis=1)))
        rest = self._from_here(plan.joints[min(k + 1, end):end + 1], q_now, plan)
        if isinstance(rest, str):
            return ExecutionResult("aborted", f"cannot resume: {rest}", plan_id=plan.plan_id), progress
        return self._continue(rest)

    def _from_here(self, joints: np.ndarray, q_now: np.ndarray, plan: Plan) -> Plan | str:
        """A piece from ``q_now`` through ``joints``, checked and timed by the safety filter (or why not)."""
        if self.safety is None:
            return "no safety filter to re-time the path from where the arm is"
        joints = np.vstack([q_now, joints])
        candidate = CandidatePath(poses=self.safety.model.fk_many(joints), joints=joints, q_seed=q_now,
                                  speed_mps=min(RESUME_SPEED_MPS, self.safety.config.motion.max_tcp_speed_mps),
                                  accel_mps2=self.safety.config.motion.max_tcp_accel_mps2, plan_id=plan.plan_id,
                                  stamp_s=plan.stamp_s)
        rest, report = self.safety.filter(candidate)
        return rest if rest is not None else report.summary()

    def abort(self) -> str:
        """Forget a stopped task (the gripper stays as it is)."""
        if self.progress is None or self.progress.finished:
            return "there is no stopped task"
        held = " (the gripper still holds the object)" if self.progress.holding else ""
        self.progress = None
        return f"task aborted{held}"

    # -- internals --------------------------------------------------------------------------------------
    def _continue(self, first_piece: Plan | None) -> tuple[ExecutionResult, TaskProgress]:
        progress = self.progress
        assert progress is not None
        plan = progress.plan
        results: list[ExecutionResult] = []
        while True:
            pending = progress.next_piece < len(progress.pieces)
            here = progress.pieces[progress.next_piece][0] if pending else len(plan) - 1
            if first_piece is None:
                for i, action in enumerate(plan.tool_actions):
                    if i not in progress.actions_done and action.waypoint <= here:
                        report = self._act(action)
                        progress.reports.append(report)
                        if not report.ok:
                            return self._combine(results, "aborted", f"{report.message}; the task stopped", plan), \
                                progress
                        progress.actions_done.add(i)
            if progress.next_piece >= len(progress.pieces):
                break
            start, end = progress.pieces[progress.next_piece]
            piece = first_piece if first_piece is not None else sub_plan(plan, start, end)
            first_piece = None
            loop = self.make_loop()
            self._guard_tool(loop)
            q_now = loop.driver.read_state().q
            if np.abs(q_now - piece.joints[0]).max() > START_GAP_RAD:  # the arm rests a little off the plan
                moved = self._from_here(piece.joints[1:], q_now, plan)
                if isinstance(moved, str):
                    return self._combine(results, "aborted", f"cannot go on from where the arm is: {moved}", plan), \
                        progress
                piece = moved
            result = loop.run(piece)
            results.append(result)
            if not result.succeeded:
                return self._combine(results, result.outcome, result.reason, plan), progress
            progress.next_piece += 1
        return self._combine(results, "succeeded", f"task {plan.task} done: "
                             + ", ".join(f"{r.action} {'ok' if r.ok else 'FAILED'}" for r in progress.reports),
                             plan), progress

    def _act(self, action: ToolAction) -> ActionReport:
        tool, gripper = self.tool, self.gripper
        assert tool is not None and gripper is not None and self.progress is not None
        g, held = tool.gripper, tool.held_object
        if self.dry_run:
            return ActionReport(action.action, action.waypoint, True, float("nan"), False,
                                f"dry run: {action.action} at waypoint #{action.waypoint} not sent to the gripper")
        try:
            target = g.min_width_m if action.action in ("grasp", "close") else action.width_m
            if self.before_action is not None:
                self.before_action(g.timeout_s)
            state: GripperState = gripper.move_to_width(target, g.speed_mps, g.force_n, g.timeout_s)
        except GripperError as err:
            return ActionReport(action.action, action.waypoint, False, float("nan"), False,
                                f"{action.action} at waypoint #{action.waypoint} failed: {err}")
        if state.fault:
            return ActionReport(action.action, action.waypoint, False, state.width_m, state.object_detected,
                                f"{action.action}: the gripper reports a fault: {state.fault}")
        if action.action == "grasp":
            wide_enough = held.min_grasp_width_m <= state.width_m <= action.width_m + held.width_tolerance_m
            if not (state.object_detected and wide_enough):
                why = "nothing between the fingers" if not state.object_detected else (
                    f"the fingers stopped at {state.width_m * 1000:.0f} mm, outside "
                    f"{held.min_grasp_width_m * 1000:.0f}..{(action.width_m + held.width_tolerance_m) * 1000:.0f} mm")
                return ActionReport("grasp", action.waypoint, False, state.width_m, state.object_detected,
                                    f"grasp failed at waypoint #{action.waypoint}: {why}")
            self.progress.holding = True
            if self.safety is not None:
                tcp_z = float((self.progress.plan.poses[action.waypoint] @ tool.flange_T_tcp)[2, 3])
                self._envelope = HeldEnvelope.from_grasp(tool, tcp_z, self.safety.config.table.z_m)
            return ActionReport("grasp", action.waypoint, True, state.width_m, True,
                                f"holding an object {state.width_m * 1000:.0f} mm wide")
        if action.action in ("release", "open"):
            self.progress.holding = False
            self._envelope = None
        return ActionReport(action.action, action.waypoint, True, state.width_m, state.object_detected,
                            f"{action.action}: fingers at {state.width_m * 1000:.0f} mm")

    @staticmethod
    def _combine(results: list[ExecutionResult], outcome: str, reason: str, plan: Plan) -> ExecutionResult:
        if not results:
            return ExecutionResult(outcome, reason, plan_id=plan.plan_id)  # type: ignore[arg-type]
        offset, times, tcps, starts = 0.0, [], [], []
        for r in results:
            times.append(r.times_s + offset)
            starts.append(r.period_starts_s + offset)
            tcps.append(r.tcp_positions_m)
            offset = times[-1][-1] if len(times[-1]) else offset
        last = results[-1]
        done = sum(1 for r in results if r.succeeded)
        return replace(
            last, outcome=outcome, reason=reason, plan_id=plan.plan_id, times_s=np.concatenate(times),
            tcp_positions_m=np.concatenate(tcps), setpoints_sent=sum(r.setpoints_sent for r in results),
            progress=min(1.0, done / max(1, len(split_at_actions(plan)))) if outcome != "succeeded" else 1.0,
            max_tracking_error_m=max(r.max_tracking_error_m for r in results),
            periods=sum(r.periods for r in results), missed_periods=sum(r.missed_periods for r in results),
            period_starts_s=np.concatenate(starts),
        )

