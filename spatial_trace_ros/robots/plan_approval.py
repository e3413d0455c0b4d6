"""Which plan the operator approved, and whether the plan the controller holds may start now.

What the operator approved is exactly what runs: an approval names one plan id (a digest of the plan
as it travelled, ``planning.plan_identity``) and is only taken for the plan the controller holds at that
moment; a new plan clears it. At ``~/execute`` the held plan must still be the approved one, not
expired (its frame captured at most ``plan_max_age_s`` ago, no clock skew) and the robot must still
be where the plan starts (joints within ``start_tolerance_rad``, TCP within ``start_tolerance_m``).
Approvals arrive on a volatile topic, so a restarted controller has none: it never executes a plan it
did not see approved after its start, even though the latched plan topic hands it the last plan again.
With ``auto_execute`` a plan counts as approved only when its frame was captured after this controller
started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.planning.plan_identity import PlanFreshness
from spatial_trace_ros.robots.driver import RobotState

APPROVAL_TOPIC = "/spatial_trace/plan_approval"


@dataclass(frozen=True)
class StartLimits:
    """How far the robot may be from the plan's first waypoint when it starts."""

    start_tolerance_rad: float
    start_tolerance_m: float


class PlanApproval:
    """The approval state of one controller; not thread-safe (the controller holds its lock)."""

    def __init__(self, started_s: float) -> None:
        self.started_s = started_s
        self.approved_id = ""

    def approve(self, held: Plan | None, plan_id: str) -> str | None:
        """Record the operator's approval of ``plan_id``; the reason when it cannot be taken."""
        plan_id = plan_id.strip()
        if not plan_id:
            return "the approval names no plan id; send the id that `spatial-trace ask` shows"
        if held is None:
            return f"no plan is held, so plan {plan_id} cannot be approved; wait for it on /spatial_trace/plan"
        if held.plan_id != plan_id:
            return (f"the controller holds plan {held.plan_id}, not {plan_id}: the plan changed since you looked "
                    "at it; review the current plan and approve that one")
        self.approved_id = plan_id
        return None

    def clear(self) -> None:
        self.approved_id = ""

    def refusal(self, plan: Plan, now_s: float, freshness: PlanFreshness, start: StartLimits,
                robot: RobotState | None, auto: bool = False) -> str | None:
        """Why ``plan`` must not start now (None: it may)."""
        if auto:
            if plan.stamp_s < self.started_s:
                return (f"plan {plan.plan_id} was made from a frame captured before this controller started; "
                        "auto_execute runs only plans made after the start; approve it explicitly to run it")
        elif not self.approved_id:
            return (f"plan {plan.plan_id} has not been approved; approve it by its id on {APPROVAL_TOPIC} "
                    "(spatial-trace ask does), then call ~/execute")
        elif self.approved_id != plan.plan_id:
            return (f"the plan changed since it was approved (approved {self.approved_id}, holding {plan.plan_id}); "
                    "review and approve the current plan")
        stale = freshness.refusal(plan.stamp_s, plan.expires_s, now_s)
        if stale is not None:
            return f"plan {plan.plan_id} not started: {stale}"
        return moved_since_planning(plan, robot, start)


def moved_since_planning(plan: Plan, robot: RobotState | None, start: StartLimits) -> str | None:
    """Why the robot is not where ``plan`` starts (None: it is)."""
    if robot is None:
        return "no current robot state, so it cannot be checked that the robot is where the plan starts; wait for it"
    gap = np.abs(np.asarray(plan.joints[0], float) - np.asarray(robot.q, float))
    j = int(np.argmax(gap))
    if gap[j] > start.start_tolerance_rad:
        return (f"the robot moved since planning: {plan.joint_names[j]} is {gap[j]:.3f} rad from the plan's start "
                f"(start_tolerance_rad {start.start_tolerance_rad:g}); ask again from where it is now")
    distance_m = float(np.linalg.norm(np.asarray(plan.poses[0])[:3, 3] - np.asarray(robot.tcp)[:3, 3]))
    if distance_m > start.start_tolerance_m:
        return (f"the robot moved since planning: the TCP is {distance_m * 1000:.1f} mm from the plan's start "
                f"(start_tolerance_m {start.start_tolerance_m:g}); ask again from where it is now")
    return None
