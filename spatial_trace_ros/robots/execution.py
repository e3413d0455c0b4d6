"""``ExecutionLoop``: runs one plan on one driver with one control policy, period by period.

Each period: read the robot state, stop on any fault the robot reports (connection, emergency or
protective stop, program not running) and on robot state that no longer advances (the robot's own
clock stuck for ``max_stale_periods``: a frozen controller or a stalled link), check where the TCP
really is and how far it is from the plan's path (``max_tracking_error_m``), ask the policy for this
period's setpoint, check that setpoint in full with the run-time ``SetpointGuard`` (its joint solution:
limits, speed, singularity, collisions, table, zones), send it, kick the robot-side watchdog, report
progress, and sleep out the period. A run succeeds only if the TCP travelled along the path (a move
that never started does not end "succeeded" because a closed path ends where it began).
A stop request (``StopSignal``) wakes the loop at once, so a stop leaves the process within a
fraction of a period, not at the next period boundary.
Whatever ends the run (done, fault, refusal, stop, an exception), the arm is brought to rest with the
driver's ``stop`` and the result says why in a sentence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from spatial_trace_ros.planning.plan import Plan, SafetyReason
from spatial_trace_ros.planning.safety import SetpointGuard
from spatial_trace_ros.policies.base import ControlPolicy, Setpoint
from spatial_trace_ros.policies.tracking import PathTracker
from spatial_trace_ros.robots.driver import RobotDriver, RobotState

Outcome = Literal["succeeded", "aborted", "stopped"]
# A run succeeds only if the measured TCP travelled at least this fraction of the plan's path length
# (blends and tracking cut corners, never half the path).
MIN_TRAVEL_FRACTION = 0.5


class StopSignal:
    """A stop request that may come from any thread; the loop waits on it instead of sleeping."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason = ""
        self.requested_at_s = 0.0
        self.count = 0  # requests so far; lets a new run forget only the stops that came before it

    def request(self, reason: str, at_s: float | None = None) -> None:
        with self._lock:
            self.reason = reason
            self.requested_at_s = time.monotonic() if at_s is None else at_s
            self.count += 1
            self._event.set()

    def clear_up_to(self, count: int) -> bool:
        """Forget the stop requests numbered up to ``count``; a later one stays set. True if clear."""
        with self._lock:
            if self.count <= count:
                self._event.clear()
                self.reason = ""
            return not self._event.is_set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


@dataclass(frozen=True)
class PeriodReport:
    """What the loop saw in one period (for status topics and joint states)."""

    t_s: float
    progress: float
    tracking_error_m: float
    state: RobotState


@dataclass(frozen=True)
class ExecutionResult:
    """How a run ended and what the TCP did: ``tcp_positions_m`` (N x 3, robot base frame) sampled
    once per period at ``times_s`` (from the start of the run)."""

    outcome: Outcome
    reason: str
    plan_id: str = ""
    policy: str = ""
    times_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tcp_positions_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    setpoints_sent: int = 0
    progress: float = 0.0
    max_tracking_error_m: float = 0.0
    periods: int = 0
    missed_periods: int = 0
    period_starts_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    safety_reason: SafetyReason | None = None
    stop_sent_after_s: float | None = None  # from the stop request to the stop command being sent
    task: dict = field(default_factory=dict)  # a task plan's tool actions and grasp outcome (robots.task_runner)

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"


class _Abort(Exception):  # noqa: N818 - control flow inside the loop, never escapes it
    def __init__(self, outcome: Outcome, reason: str, safety: SafetyReason | None = None) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.safety = outcome, reason, safety


class _ClockWatch:
    """Notices a robot clock (RTDE timestamp, G1 tick) that stops advancing for ``periods`` periods."""

    def __init__(self, periods: int, period_s: float) -> None:
        self.periods = periods
        self.period_s = period_s
        self.last: float | None = None
        self.advanced_at_s = time.perf_counter()
        self.reads_since = 0

    def stale_reason(self, clock: float | None) -> str:
        now = time.perf_counter()
        if clock is None:
            return ""
        if self.last is None or clock != self.last:
            self.last, self.advanced_at_s, self.reads_since = clock, now, 0
            return ""
        self.reads_since += 1
        silent_s = now - self.advanced_at_s
        # Both: this many reads saw the same clock, and this much time passed (a loop that was itself
        # late must not call the robot stale for it).
        if self.reads_since >= self.periods and silent_s >= self.periods * self.period_s:
            return (f"the robot's state stopped advancing: its clock stayed at {clock:g} for {self.reads_since} "
                    f"periods ({silent_s * 1000:.0f} ms; limit {self.periods}); the controller froze or the link "
                    "stalled. Stopped sending; check the robot and the network, then connect again")
        return ""


def _paced_by_wall_clock(driver: RobotDriver) -> bool:
    """True when the driver keeps the base class's sleep-based pacing, so the loop may wait on the
    stop signal instead (a simulated driver that steps physics in ``wait_period`` keeps its own)."""
    cls = type(driver)
    return cls.wait_period is RobotDriver.wait_period and cls.start_period is RobotDriver.start_period


class ExecutionLoop:
    """Executes plans with ``policy`` on ``driver``, every setpoint checked by ``guard``."""

    def __init__(
        self, driver: RobotDriver, policy: ControlPolicy, guard: SetpointGuard, *,
        stop_signal: StopSignal | None = None, on_period: Callable[[PeriodReport], None] | None = None,
        goal_tolerance_m: float = 0.01, start_tolerance_rad: float = 0.05, time_margin_s: float = 3.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.driver = driver
        self.policy = policy
        self.guard = guard
        self.stop_signal = stop_signal or StopSignal()
        self.on_period = on_period
        self.goal_tolerance_m = goal_tolerance_m
        self.start_tolerance_rad = start_tolerance_rad
        self.time_margin_s = time_margin_s
        self._wall_clock = _paced_by_wall_clock(driver)
        # the plan's time base: wall time, or a simulation's own time when it steps in lockstep (so a
        # stalled CPU does not make the plan's targets jump)
        self.clock = clock

    # -- checks before motion --------------------------------------------------------------------------
    def _preflight(self, plan: Plan, state: RobotState) -> None:
        missing = self.policy.requires - self.driver.supports
        if missing:
            raise _Abort("aborted", f"control policy {self.policy.name!r} needs {', '.join(sorted(missing))}, which "
                         f"driver {type(self.driver).__name__} does not offer (it offers "
                         f"{', '.join(sorted(self.driver.supports))}); choose another control_policy")
        if state.fault_reason():
            raise _Abort("aborted", f"not started: {state.fault_reason()}")
        if plan.joint_names and len(plan.joint_names) == len(state.q):
            gap = np.abs(np.asarray(plan.joints[0]) - state.q)
            j = int(np.argmax(gap))
            if gap[j] > self.start_tolerance_rad:
                raise _Abort("aborted", f"not started: the plan starts {gap[j]:.3f} rad away from the robot on "
                             f"{plan.joint_names[j]} (tolerance {self.start_tolerance_rad} rad); the robot moved "
                             "since planning, plan again from where it is now")

    # -- one setpoint ----------------------------------------------------------------------------------
    def _check(self, sp: Setpoint, state: RobotState, prev_pose: np.ndarray, prev_q: np.ndarray,
               dt_s: float) -> tuple[SafetyReason | None, np.ndarray]:
        """The guard's verdict on ``sp`` and the joints it commands (for the next setpoint's check).
        ``dt_s``: time since the previous setpoint (a late period makes the plan's target step
        further, at the plan's speed, so the step is judged over the time it really took)."""
        guard = self.guard
        if sp.kind == "servo_pose":
            found = guard.check_pose(prev_pose, sp.pose, dt_s, prev_q, state.q)
            return found, prev_q if found is not None or guard.last_solution is None else guard.last_solution
        if sp.kind == "servo_joints":
            return guard.check_joints(prev_q, sp.q, dt_s, state.q), np.asarray(sp.q, float)
        if sp.kind == "speed_tcp":
            return guard.check_twist(state.tcp, sp.twist, state.q), state.q
        if sp.kind == "move_path":
            return guard.check_path(state.tcp, sp.path.poses, sp.path.speed_mps, state.q), state.q
        return None, prev_q

    def _check_state(self, state: RobotState, tracking_error_m: float, clock: _ClockWatch) -> None:
        """Faults, staleness, where the TCP really is and how far it strayed: each stops the run."""
        if state.fault_reason():
            raise _Abort("aborted", state.fault_reason())
        stale = clock.stale_reason(state.robot_clock)
        if stale:
            raise _Abort("aborted", stale)
        found = self.guard.check_measured(state.tcp) or self.guard.check_tracking(tracking_error_m)
        if found is not None:
            raise _Abort("aborted", f"stopped by the safety guard: {found.message}", found)

    def _send(self, sp: Setpoint) -> None:
        d = self.driver
        if sp.kind == "servo_pose":
            d.servo_pose(sp.pose, sp.lookahead_s, sp.gain)
        elif sp.kind == "servo_joints":
            d.servo_joints(sp.q)
        elif sp.kind == "speed_tcp":
            d.speed_tcp(sp.twist, sp.accel_mps2)
        elif sp.kind == "move_path":
            d.move_path(sp.path)
        elif sp.kind != "hold":
            raise _Abort("aborted", f"control policy {self.policy.name!r} produced an unknown setpoint {sp.kind!r}")

    def _send_or_explain(self, sp: Setpoint) -> None:
        """Send; if the robot refuses, the fault it now reports is the better reason."""
        try:
            self._send(sp)
        except _Abort:
            raise
        except Exception:
            fault = self.driver.read_state().fault_reason()
            if fault:
                raise _Abort("aborted", fault) from None
            raise

    def _wait(self, token: float, deadline_s: float) -> None:
        """Wall-clock drivers: sleep on the stop signal until the period's absolute deadline (no drift
        from wake-up delays). Others (e.g. a simulation stepping physics) pace themselves."""
        if self._wall_clock:
            remaining = deadline_s - self.clock()
            if remaining > 0:
                self.stop_signal.wait(remaining)
        else:
            self.driver.wait_period(token)

    def _stop_robot(self) -> None:
        """Best effort: a driver that cannot even stop is reported by the outcome that led here."""
        try:
            self.driver.stop()
        except Exception:  # the reason already recorded is the useful one
            return

    # -- the run ---------------------------------------------------------------------------------------
    def run(self, plan: Plan) -> ExecutionResult:
        tracker = PathTracker(plan.positions)
        times: list[float] = []
        tcps: list[np.ndarray] = []
        starts: list[float] = []
        sent = missed = 0
        progress = max_error = 0.0
        outcome: Outcome = "succeeded"
        reason = ""
        safety: SafetyReason | None = None
        stop_after: float | None = None
        t0 = self.clock()
        try:
            self.driver.prepare_motion()  # e.g. the G1 takes the arm over again after a release
            state = self.driver.read_state()
            self._preflight(plan, state)
            self.policy.start(plan, state)
            prev_pose, prev_q = state.tcp, state.q
            clock = _ClockWatch(self.guard.config.runtime.max_stale_periods, self.driver.period_s)
            clock.stale_reason(state.robot_clock)
            travelled_m, last_tcp = 0.0, state.tcp[:3, 3].copy()
            last_sent_s = 0.0
            deadline_s = plan.duration_s * 1.5 + self.time_margin_s
            t0 = self.clock()
            deadline = t0
            while True:
                token = self.driver.start_period()
                now = self.clock()
                deadline += self.driver.period_s
                if deadline < now:  # more than a period late: start a fresh schedule from now
                    deadline = now + self.driver.period_s
                starts.append(now - t0)
                if self.stop_signal.is_set():
                    raise _Abort("stopped", self.stop_signal.reason or "stop requested")
                state = self.driver.read_state()
                t = now - t0
                times.append(t)
                tcp_now = state.tcp[:3, 3].copy()
                tcps.append(tcp_now)
                error = tracker.locate(tcp_now)[1]
                max_error = max(max_error, error)
                self._check_state(state, error, clock)
                travelled_m += float(np.linalg.norm(tcp_now - last_tcp))
                last_tcp = tcp_now
                step = self.policy.step(t, state)
                sp = step.setpoint
                if sp is not None:
                    found, q_commanded = self._check(sp, state, prev_pose, prev_q,
                                                     max(self.driver.period_s, t - last_sent_s))
                    if found is not None:
                        raise _Abort("aborted", f"setpoint refused by the safety guard: {found.message}", found)
                    if self.stop_signal.is_set():
                        raise _Abort("stopped", self.stop_signal.reason or "stop requested")
                    self._send_or_explain(sp)
                    sent += 1
                    last_sent_s = t
                    prev_q = q_commanded
                    if sp.pose is not None:
                        prev_pose = sp.pose
                self.driver.kick_watchdog()
                progress = max(progress, step.progress)
                if self.on_period is not None:
                    self.on_period(PeriodReport(t, progress, error, state))
                if step.done:
                    gap = tracker.distance_to_end(state.tcp[:3, 3])
                    if gap > self.goal_tolerance_m:
                        raise _Abort("aborted", f"the robot came to rest {gap:.3f} m from the end of the plan "
                                     f"(tolerance {self.goal_tolerance_m} m)")
                    needed = MIN_TRAVEL_FRACTION * tracker.total_m
                    if tracker.total_m > self.goal_tolerance_m and travelled_m < needed:
                        raise _Abort("aborted", f"the robot never moved along the plan: the TCP travelled "
                                     f"{travelled_m:.3f} m of the path's {tracker.total_m:.3f} m (the move did not "
                                     "start, or the robot ignored it); not counted as done")
                    reason = f"plan executed with {self.policy.name}; ended {gap * 1000:.1f} mm from the last waypoint"
                    progress = 1.0
                    break
                if t > deadline_s:
                    raise _Abort("aborted", f"the plan did not finish within {deadline_s:.1f} s "
                                 f"(planned {plan.duration_s:.1f} s); stopped")
                if self.clock() - now > self.driver.period_s:
                    missed += 1
                self._wait(token, deadline)
        except _Abort as stop:
            outcome, reason, safety = stop.outcome, stop.reason, stop.safety
        except Exception as err:  # any failure must stop the arm and be reported
            outcome, reason = "aborted", f"{type(err).__name__}: {err}"
        if outcome == "stopped":
            stop_after = time.monotonic() - self.stop_signal.requested_at_s
        self._stop_robot()
        return ExecutionResult(
            outcome=outcome, reason=reason, plan_id=plan.plan_id, policy=self.policy.name,
            times_s=np.asarray(times), tcp_positions_m=np.asarray(tcps).reshape(-1, 3), setpoints_sent=sent,
            progress=progress, max_tracking_error_m=max_error, periods=len(starts), missed_periods=missed,
            period_starts_s=np.asarray(starts), safety_reason=safety, stop_sent_after_s=stop_after,
        )
