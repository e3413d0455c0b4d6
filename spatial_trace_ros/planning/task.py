"""From an object-centric trace to a task: arm motion with tool actions at points of the path.

An object-centric trace is where the object should go: it starts on the object's top and ends where
its top comes to rest. With a gripper that becomes, for a pick-and-place:

    open -> approach above the grasp -> descend -> grasp (close, verify) -> carry along the trace
    -> release (open) -> retreat

The TCP closes ``grasp_depth_m`` below the trace (the object's top), so the whole trace is shifted
down by that much while carrying. ``pick_up`` ends holding the object at the top of its lift;
``push`` (slide) grasps the object and slides it along the trace on the table (a pushing finger
loses a round object on the first curve), then releases it. Which one a
trace gets follows from the instruction (``task_kind``).

Each motion segment is checked and timed by the safety filter on its own (rest to rest, so the arm
stands still at every tool action), the tool and the held object are checked along it
(``planning.tool_geometry``), and the segments are joined into one ``Plan`` whose ``tool_actions``
say what happens at which waypoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from spatial_trace_ros.geometry import path as pathlib
from spatial_trace_ros.planning.plan import Plan, SafetyReason, SafetyReport, ToolAction
from spatial_trace_ros.planning.planner import Planner, PlanResult
from spatial_trace_ros.planning.safety import CandidatePath, SafetyCode, reason, verdict_of
from spatial_trace_ros.planning.tool_geometry import HeldEnvelope, ToolGeometry
from spatial_trace_ros.tools.description import ToolDescription

TaskKind = Literal["pick_up", "place", "push"]
# Phrases that name the kind of a task; anything else that moves an object is a place.
_KIND_PATTERNS: tuple[tuple[TaskKind, re.Pattern], ...] = (
    ("push", re.compile(r"\b(push|slide|shove|nudge)\b")),
    ("pick_up", re.compile(r"\b(pick up|pick|lift|raise|grab)\b(?!.*\b(into|in|on|onto|to|beside|next)\b)")),
)
WIDTH_EPS_M = 1e-4


def task_kind(instruction: str) -> TaskKind:
    """The kind of task an instruction asks for: ``push`` (slide it on the table), ``pick_up`` (lift and hold), else
    ``place`` (pick it up and put it down somewhere: into, on, beside, N cm to a side)."""
    text = " " + re.sub(r"[^a-z0-9 ]+", " ", instruction.lower()) + " "
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return kind
    return "place"


class TaskConfig(BaseModel):
    """Where the tool goes around a trace (metres, base frame, z up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    approach_height_m: float = Field(0.08, ge=0.0, le=0.3, description="[m] approach this far above the grasp")
    retreat_height_m: float = Field(0.08, ge=0.0, le=0.3, description="[m] retreat this far up after releasing")
    slide_clearance_m: float = Field(
        0.002, ge=0.0, le=0.02, description="[m] push: the held object slides this far above the table")
    place_clearance_m: float = Field(
        0.005, ge=0.0, le=0.05, description="[m] release the object this far above where the trace ends (it drops "
        "onto its place instead of being pressed into it)")


@dataclass(frozen=True)
class Segment:
    name: str
    tcp_points: np.ndarray  # (M, 3) TCP positions, base frame
    held: bool
    action_after: ToolAction | None  # run when the arm rests at the segment's end (waypoint filled in later)


def decode_actions(width: np.ndarray, tool: ToolDescription) -> tuple[ToolAction, ...]:
    """Tool actions back from the width column (see ``encode_actions``): a change of width at a
    waypoint is an action there; full width opens (releases after a grasp), the narrowest closes on
    nothing, anything between grasps an object no wider than that."""
    g = tool.gripper
    out: list[ToolAction] = []
    previous = None
    for k, w in enumerate(np.asarray(width, float)):
        if previous is not None and abs(w - previous) < WIDTH_EPS_M:
            continue
        if w >= g.max_width_m - WIDTH_EPS_M:
            kind = "release" if any(a.action == "grasp" for a in out) else "open"
        elif w <= g.min_width_m + WIDTH_EPS_M:
            kind = "close"
        else:
            kind = "grasp"
        out.append(ToolAction(k, kind, float(w)))
        previous = w
    return tuple(out)


def held_mask(actions: tuple[ToolAction, ...], n_waypoints: int) -> np.ndarray:
    """True at the waypoints where an object is held: from a grasp up to (not including) its release."""
    mask = np.zeros(n_waypoints, bool)
    start = None
    for a in actions:
        if a.action == "grasp":
            start = a.waypoint
        elif a.action in ("release", "open") and start is not None:
            mask[start:a.waypoint + 1] = True
            start = None
    if start is not None:
        mask[start:] = True
    return mask


class TaskPlanner:
    """Plans tasks for one tool on top of a ``Planner`` (its model, safety filter, spacing, speeds)."""

    def __init__(self, planner: Planner, tool: ToolDescription, config: TaskConfig | None = None) -> None:
        tool.check_robot(planner.model.name)
        self.planner = planner
        self.tool = tool
        self.config = config or TaskConfig()
        self.geometry = ToolGeometry(tool, planner.safety.config, planner.model)

    # -- geometry of the task --------------------------------------------------------------------------
    def segments(self, points: np.ndarray, kind: TaskKind, current_tcp: np.ndarray | None
                 ) -> tuple[list[Segment], ToolAction, HeldEnvelope | None]:
        """The task's motion segments (TCP positions), the action before the first, and the envelope."""
        cfg, tool, g = self.config, self.tool, self.tool.gripper
        up = np.array([0.0, 0.0, 1.0])
        depth = tool.held_object.grasp_depth_m
        trace = pathlib.resample_by_spacing(np.asarray(points, float), self.planner.config.spacing_m)
        tcp_path = trace - depth * up
        if kind == "place":  # rise towards the end, so the object is let go just above its place
            s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(tcp_path, axis=0), axis=1))])
            tcp_path = tcp_path + np.outer(s / max(float(s[-1]), 1e-9), up) * cfg.place_clearance_m
        table_z = self.planner.safety.config.table.z_m
        if kind == "push":  # held a hair above the table, so it slides without dragging the table along
            tcp_path = tcp_path + cfg.slide_clearance_m * up
        first_action = ToolAction(0, "open", g.max_width_m)
        envelope = HeldEnvelope.from_grasp(tool, float(tcp_path[0, 2]), table_z)
        release = ToolAction(-1, "release", g.max_width_m)
        start = tcp_path[0]
        above = start + cfg.approach_height_m * up
        segs: list[Segment] = []
        if current_tcp is not None:
            segs.append(Segment("approach", self._line(current_tcp, above), False, None))
        grasp = ToolAction(-1, "grasp", float(max(tool.held_object.default_size_m[:2])))
        segs.append(Segment("descend", self._line(above, start), False, grasp))
        carry_after = None if kind == "pick_up" else release
        segs.append(Segment("carry" if kind != "push" else "slide", tcp_path, True, carry_after))
        if kind != "pick_up":
            end = tcp_path[-1]
            segs.append(Segment("retreat", self._line(end, end + cfg.retreat_height_m * up), False, None))
        return segs, first_action, envelope

    def _line(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / self.planner.config.spacing_m)) + 1)
        return a + np.outer(np.linspace(0.0, 1.0, n), b - a)

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, points_base: np.ndarray, kind: TaskKind, q_start: np.ndarray | None, seed: np.ndarray,
             stamp_s: float = 0.0, plan_id: str = "", notes: tuple[SafetyReason, ...] = ()) -> PlanResult:
        """The task plan for a trace (base frame points (M, 3)); ``q_start`` None: start above the grasp."""
        model, planner = self.planner.model, self.planner
        points = np.asarray(points_base, float)
        rot = planner.fixed_rotation()
        current_tcp = None
        if q_start is not None and planner.config.start_from_current:
            current_tcp = (model.fk(q_start) @ self.tool.flange_T_tcp)[:3, 3]
        segs, first_action, envelope = self.segments(points, kind, current_tcp)
        reasons: list[SafetyReason] = list(notes)
        q = np.asarray(seed, float)
        plans: list[Plan] = []
        all_poses: list[np.ndarray] = []
        for seg in segs:
            tcp = np.tile(np.eye(4), (len(seg.tcp_points), 1, 1))
            tcp[:, :3, :3], tcp[:, :3, 3] = rot, seg.tcp_points
            flange = self.tool.flange_poses(tcp)
            all_poses.append(flange)
            joints = model.ik_path(flange, q)
            candidate = CandidatePath(poses=flange, joints=joints, q_seed=q, speed_mps=planner.config.max_tcp_speed_mps,
                                      accel_mps2=planner.config.max_tcp_accel_mps2, stamp_s=stamp_s, plan_id=plan_id)
            plan, report = planner.safety.filter(candidate)
            found = [_named(r, seg.name) for r in report.reasons]
            found += self.geometry.check_path(flange, joints if np.all(np.isfinite(joints)) else None,
                                              np.full(len(flange), seg.held), envelope, what=seg.name)
            reasons += found
            if plan is None or verdict_of(found).value == "REJECT":
                break
            plans.append(plan)
            q = plan.joints[-1]
        waypoints = np.concatenate(all_poses) if all_poses else np.zeros((0, 4, 4))
        final = SafetyReport(verdict_of(reasons), tuple(_unique(reasons)))
        if len(plans) < len(segs) or not final.allowed:
            if final.allowed:  # a segment without a plan always says why; keep the verdict honest
                final = SafetyReport(verdict_of([*reasons, reason(SafetyCode.UNREACHABLE, "a task segment could "
                                                                   "not be planned")]), tuple(reasons))
            return PlanResult(None, final, points, waypoints, notes)
        joined = self._join(plans, segs, first_action, final, kind)
        return PlanResult(joined, final, points, joined.poses, notes)

    def _join(self, plans: list[Plan], segs: list[Segment], first: ToolAction, report: SafetyReport,
              kind: TaskKind) -> Plan:
        times, joints, poses = [plans[0].times_s], [plans[0].joints], [plans[0].poses]
        actions = [first]
        end = len(plans[0]) - 1
        for k, plan in enumerate(plans):
            if k:
                times.append(plan.times_s[1:] + times[-1][-1])
                joints.append(plan.joints[1:])
                poses.append(plan.poses[1:])
                end += len(plan) - 1
            if segs[k].action_after is not None:
                a = segs[k].action_after
                actions.append(ToolAction(end, a.action, a.width_m))
        p0 = plans[0]
        return Plan(robot=p0.robot, frame_id=p0.frame_id, joint_names=p0.joint_names, times_s=np.concatenate(times),
                    joints=np.concatenate(joints), poses=np.concatenate(poses), plan_id=p0.plan_id,
                    stamp_s=p0.stamp_s, report=report, tool_actions=tuple(actions), task=kind)


def _named(r: SafetyReason, segment: str) -> SafetyReason:
    if r.message.startswith(f"{segment}: ") or SafetyCode(r.code).severity == "info":
        return r
    return SafetyReason(r.code, f"{segment}: {r.message}", r.waypoint, r.value, r.limit)


def _unique(reasons: list[SafetyReason]) -> list[SafetyReason]:
    """One reason per code and message (the segments repeat adjustments such as speed limiting)."""
    seen, out = set(), []
    for r in reasons:
        key = (r.code, r.message.split(": ", 1)[-1])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def check_task_plan(plan: Plan, geometry: ToolGeometry) -> list[SafetyReason]:
    """The tool and the held object along a received task plan (the controller's plan check): the
    object is held from its grasp to its release, its envelope taken from the grasp height."""
    if not plan.tool_actions:
        return geometry.check_path(plan.poses, plan.joints)
    held = held_mask(plan.tool_actions, len(plan))
    envelope = None
    grasps = [a for a in plan.tool_actions if a.action == "grasp"]
    if grasps:
        tcp_z = float((plan.poses[grasps[0].waypoint] @ geometry.tool.flange_T_tcp)[2, 3])
        envelope = HeldEnvelope.from_grasp(geometry.tool, tcp_z, geometry.config.table.z_m)
    return geometry.check_path(plan.poses, plan.joints, held, envelope)
