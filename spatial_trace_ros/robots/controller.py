"""The controller's state machine, without ROS: plans in, execute / stop / e-stop, worker events out.

``controller_node`` only converts messages and calls these methods. States (the ``state`` field of
``/spatial_trace/controller_status``): ``idle`` (no plan), ``waiting_for_execute`` (a plan is held
until the operator approves its id and calls ``~/execute``, unless ``auto_execute``; see
``robots.plan_approval``), ``executing``, then ``succeeded`` / ``aborted`` / ``stopped`` with the
reason. A plan is used once: after a run the robot is elsewhere, so the next run needs a new plan. The
e-stop latches, in a file (``EstopLatch``), so a restarted controller comes back engaged: while engaged
nothing executes, ``false`` on the e-stop topic changes nothing, and only ``reset_estop`` with a note
(who, why) releases it. A fault the robot reports (protective or emergency stop, any other fault) is
kept in ``robot_fault`` for diagnostics; ``recover`` asks the worker to clear a UR protective stop
without restarting. The gripper belongs to the worker: its state arrives with the robot's
(``gripper_report``) and the operator's manual commands go through the worker (``gripper_command``),
refused while a plan executes or the e-stop is engaged. The worker connection is kept up by a
background thread that (re)connects every ``reconnect_interval_s`` while it is down.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from spatial_trace_ros.errors import RobotError
from spatial_trace_ros.planning.plan import Plan, SafetyReport
from spatial_trace_ros.planning.plan_identity import PlanFreshness
from spatial_trace_ros.planning.safety import SafetyFilter, verdict_of
from spatial_trace_ros.planning.task import check_task_plan
from spatial_trace_ros.planning.tool_geometry import ToolGeometry
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.driver import RobotState
from spatial_trace_ros.robots.estop_latch import EstopLatch
from spatial_trace_ros.robots.execution import ExecutionResult
from spatial_trace_ros.robots.gripper_owner import GripperReport, gripper_kind
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.plan_approval import PlanApproval, StartLimits
from spatial_trace_ros.robots.worker import RealtimeWorker, StateEvent

# At ~/execute the robot's last state must be this recent (or three state periods, when longer) to judge
# whether the robot moved since planning [s].
ROBOT_STATE_MAX_AGE_S = 0.5
ESTOP_REASON = "e-stop engaged on /spatial_trace/estop"
ESTOP_RELEASE_HINT = ("release it with ~/reset_estop after setting estop_reset_note (who and why), e.g. "
                      "ros2 param set /controller_node estop_reset_note 'alice: cell cleared'")
# A plan that travelled as a JointTrajectory is re-timed from nanosecond stamps and its poses are
# recomputed from joints: allow that rounding (0.1 %) on speed and acceleration, nothing more.
RECEIVED_PLAN_TOLERANCE = 1e-3


@dataclass
class ControllerStatus:
    """The JSON on ``/spatial_trace/controller_status`` (see docs/interfaces.md)."""

    state: str = "idle"
    plan_stamp_s: float = 0.0
    policy: str = ""
    progress: float = 0.0
    reason: str = ""
    tracking_error_m: float | None = None
    plan_id: str = ""
    approved_plan_id: str = ""
    task: dict | None = None  # a task's tool actions and grasp outcome (robots.task_runner); None without

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class Updates:
    """What ``poll`` collected: states to publish, the status if it changed, a finished run."""

    states: list[StateEvent]
    status: ControllerStatus | None
    result: ExecutionResult | None


class Controller:
    def __init__(self, config: ControllerNodeConfig, log: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self.approval = PlanApproval(started_s=clock())
        self._robot_state: tuple[float, RobotState] | None = None  # (monotonic time, state)
        self.model = make_robot_model(config.robot)
        self.safety = config.safety()
        # A plan may come from any publisher on /spatial_trace/plan: it is checked again here, with
        # this controller's own limits, before it can be executed.
        self.plan_check = SafetyFilter(self.safety, self.model)
        self.tool = config.tool_description()
        self.tool_geometry = ToolGeometry(self.tool, self.safety, self.model) if self.tool is not None else None
        self.gripper_kind = "none" if config.gripper == "none" else gripper_kind(config.gripper, self.tool)
        self._gripper_report: GripperReport | None = None
        self._gripper_answers: dict[int, dict] = {}
        self._gripper_answered = threading.Condition()
        self._gripper_requests = itertools.count(1)
        self.task_resumable = False
        self._running_plan: Plan | None = None
        self._log = log or (lambda level, text: None)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._status = ControllerStatus(policy=config.control_policy,
                                        reason=f"connecting to the robot ({config.driver_name} driver)")
        self._changed = True
        self.plan: Plan | None = None
        self.latch = EstopLatch(config.latch_path())
        if self.latch.engaged:
            self._status.reason = f"{self.latch.reason or ESTOP_REASON} (kept across the restart); {ESTOP_RELEASE_HINT}"
        self.robot_fault = ""  # what the robot reports now (protective stop, ...), for diagnostics
        self._recovery: dict | None = None
        self._recovered = threading.Event()
        self.worker: RealtimeWorker | None = None
        self.connected = False
        self.connection_error = ""
        self.period_s = 0.0
        self.last_result: ExecutionResult | None = None
        self._connector = threading.Thread(target=self._keep_connected, name="controller-connect", daemon=True)

    # -- connection ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._connector.start()

    def _keep_connected(self) -> None:
        while not self._closed.is_set():
            if not self.connected:
                self._connect()
            self._closed.wait(self.config.reconnect_interval_s if not self.connected else 0.2)

    def _connect(self) -> None:
        worker = RealtimeWorker(self.config.worker_config())
        worker.start()
        try:
            info = worker.wait_ready(self.config.connect_timeout_s)
        except RobotError as err:
            worker.close(timeout_s=2.0)
            with self._lock:
                self.connection_error = str(err)
                if self._status.state in ("idle", "waiting_for_execute"):
                    self._set(reason=f"not connected: {err}; retrying every {self.config.reconnect_interval_s:g} s")
            self._log("error", f"robot connection failed: {err}")
            return
        with self._lock:
            if self._closed.is_set():
                worker.close()
                return
            self.worker, self.connected, self.connection_error = worker, True, ""
            self.period_s = float(info["period_s"])
            if self._status.state == "idle":
                rate = f"{1 / self.period_s:.0f} Hz"
                then = (f"{self.latch.reason or ESTOP_REASON} (latched); {ESTOP_RELEASE_HINT}"
                        if self.latch.engaged else "waiting for a plan")
                self._set(reason=f"connected ({self.config.driver_name}, {rate}); {then}")
        self._log("info", f"connected to the robot: {self.config.driver_name} driver at {1 / self.period_s:.0f} Hz, "
                          f"commands {', '.join(info['supports'])}; loop scheduling {info['scheduling']}")

    def _drop_worker(self, why: str) -> None:
        """Forget a dead or disconnected worker; the connection thread starts a new one."""
        worker, self.worker, self.connected = self.worker, None, False
        self.connection_error = why
        self._gripper_report = None
        if worker is not None:
            threading.Thread(target=worker.close, kwargs={"timeout_s": 5.0}, daemon=True).start()

    # -- status ------------------------------------------------------------------------------------------
    def _set(self, **fields: object) -> None:
        for key, value in fields.items():
            setattr(self._status, key, value)
        self._changed = True

    @property
    def status(self) -> ControllerStatus:
        with self._lock:
            return ControllerStatus(**asdict(self._status))

    @property
    def executing(self) -> bool:
        return self._status.state == "executing"

    def set_config(self, config: ControllerNodeConfig) -> None:
        with self._lock:
            self.config = config
            if not self.executing:
                self._set(policy=config.control_policy)

    def policy_change_refusal(self, updates: dict[str, object]) -> str | None:
        """Why a parameter change must wait (None: it may happen now)."""
        with self._lock:
            new = updates.get("control_policy", self.config.control_policy)
            if self.executing and new != self.config.control_policy:
                return (f"cannot change control_policy to {updates['control_policy']!r} while plan "
                        f"{self._status.plan_stamp_s:.3f} is executing with {self._status.policy!r}; "
                        "wait for it to finish or call ~/stop first")
        return None

    # -- operator requests -------------------------------------------------------------------------------
    def on_plan(self, plan: Plan) -> str:
        report = self.plan_check.verify(plan, rel_tolerance=RECEIVED_PLAN_TOLERANCE)
        if self.tool_geometry is not None:
            found = check_task_plan(plan, self.tool_geometry)
            if found:
                report = SafetyReport(verdict_of([*report.reasons, *found]), (*report.reasons, *found))
        with self._lock:
            if self.executing:
                return f"plan {plan.plan_id} ignored: plan {self._status.plan_stamp_s:.3f} is still executing"
            if not report.allowed:
                self.plan = None
                self._set(state="idle", progress=0.0, reason=f"plan refused by the controller's safety check: "
                          f"{report.summary()}")
                return f"plan {plan.plan_id} refused: {report.summary()}"
            self.plan = plan
            self.approval.clear()
            self.task_resumable = False
            self._set(state="waiting_for_execute", plan_stamp_s=plan.stamp_s, progress=0.0, tracking_error_m=None,
                      policy=self.config.control_policy, plan_id=plan.plan_id, approved_plan_id="", task=None,
                      reason=f"plan {plan.plan_id} with {len(plan)} waypoints over {plan.duration_s:.2f} s; approve "
                             "its id, then call ~/execute")
            if self.config.auto_execute:
                ok, text = self._execute_locked(auto=True)
                if not ok:
                    self._set(reason=text)
                return text
            return f"plan {plan.plan_id} ready: {len(plan)} waypoints, {plan.duration_s:.2f} s; waiting for ~/execute"

    def refuse_plan(self, reason: str) -> None:
        with self._lock:
            if not self.executing:
                self.plan = None
                self._set(state="idle", progress=0.0, reason=f"plan refused: {reason}")

    def approve(self, plan_id: str) -> tuple[bool, str]:
        """The operator approves the held plan by its id (the next ``execute`` may run only that plan)."""
        with self._lock:
            why = self.approval.approve(None if self.executing else self.plan, plan_id)
            if why is not None:
                self._set(reason=f"approval of {plan_id.strip()} refused: {why}")
                return False, why
            self._set(approved_plan_id=self.approval.approved_id,
                      reason=f"plan {plan_id} approved; call ~/execute to run it")
            return True, f"plan {plan_id} approved"

    def execute(self) -> tuple[bool, str]:
        with self._lock:
            return self._execute_locked()

    def _start_refusal(self, plan: Plan, auto: bool) -> str | None:
        """Approval, expiry and "the robot is still where the plan starts" (``robots.plan_approval``)."""
        cfg = self.config
        robot = None
        max_age_s = max(ROBOT_STATE_MAX_AGE_S, 3.0 / cfg.state_rate_hz)
        if self._robot_state is not None and time.monotonic() - self._robot_state[0] <= max_age_s:
            robot = self._robot_state[1]
        return self.approval.refusal(
            plan, self._clock(), PlanFreshness(cfg.plan_max_age_s, cfg.max_clock_skew_s),
            StartLimits(cfg.start_tolerance_rad, cfg.start_tolerance_m), robot, auto=auto)

    @property
    def estop_engaged(self) -> bool:
        return self.latch.engaged

    def _execute_locked(self, auto: bool = False) -> tuple[bool, str]:
        if self.estop_engaged:
            return False, f"e-stop is engaged; {ESTOP_RELEASE_HINT}"
        if self.executing:
            return False, f"already executing plan {self._status.plan_stamp_s:.3f}"
        if self.plan is None:
            return False, "no plan to execute; wait for one on /spatial_trace/plan"
        if not self.connected or self.worker is None:
            return False, f"not connected to the robot: {self.connection_error or 'still connecting'}"
        refusal = self._start_refusal(self.plan, auto)
        if refusal is not None:
            return False, refusal
        cfg, plan = self.config, self.plan
        self.approval.clear()
        self._running_plan = plan  # what ~/resume continues, if a stop interrupts its task
        self.worker.execute(plan, cfg.control_policy, cfg.policy_options(self.safety), cfg.dry_run,
                            cfg.goal_tolerance_m, cfg.start_tolerance_rad)
        self.plan = None
        mode = " (dry run: no motion is sent)" if cfg.dry_run else ""
        text = f"executing plan {plan.plan_id} with {cfg.control_policy}{mode}"
        self._set(state="executing", plan_stamp_s=plan.stamp_s, policy=cfg.control_policy, progress=0.0,
                  tracking_error_m=None, reason=text)
        return True, text

    def resume(self) -> tuple[bool, str]:
        """Go on with a task that a stop (or e-stop, once released) interrupted, from where the arm is."""
        with self._lock:
            if self.estop_engaged:
                return False, f"e-stop is engaged; {ESTOP_RELEASE_HINT}"
            if self.executing:
                return False, "already executing"
            plan = self._running_plan
            if not self.task_resumable or plan is None:
                return False, "there is no stopped task to resume"
            cfg = self.config
            stale = PlanFreshness(cfg.plan_max_age_s, cfg.max_clock_skew_s).refusal(plan.stamp_s, plan.expires_s,
                                                                                    self._clock())
            if stale is not None:
                return False, f"the stopped task's plan {plan.plan_id} cannot resume: {stale}; abort the task"
            if not self.connected or self.worker is None:
                return False, f"not connected to the robot: {self.connection_error or 'still connecting'}"
            self.worker.resume(cfg.control_policy, cfg.policy_options(self.safety), cfg.dry_run, cfg.goal_tolerance_m,
                               cfg.start_tolerance_rad)
            self.task_resumable = False
            self._set(state="executing", reason="resuming the stopped task from where the arm is")
            return True, "resuming the stopped task"

    def abort_task(self) -> tuple[bool, str]:
        """Forget a stopped task; the gripper keeps what it holds."""
        with self._lock:
            if self.executing:
                return False, "a task is executing; call ~/stop first"
            if not self.task_resumable or self.worker is None:
                return False, "there is no stopped task to abort"
            self.worker.abort_task()
            self.task_resumable = False
            self._set(state="aborted", reason="task aborted by the operator; the gripper keeps what it holds")
            return True, "task aborted; the gripper keeps what it holds"

    # -- the gripper (owned by the worker) -------------------------------------------------------------
    @property
    def has_gripper(self) -> bool:
        return self.gripper_kind != "none"

    def gripper_report(self) -> GripperReport:
        """The gripper's latest state from the worker, or why there is none."""
        report = self._gripper_report
        if report is not None and self.connected:
            return report
        if self.connected:
            return GripperReport(None, "waiting for the gripper's first state from the worker", self.gripper_kind)
        why = self.connection_error or "still connecting"
        return GripperReport(None, f"the controller is not connected to the robot ({why}); the gripper is reached "
                             "through the controller's worker", self.gripper_kind)

    def gripper_command(self, name: str, timeout_s: float = 15.0) -> tuple[bool, str]:
        """The operator's manual ``open`` / ``close`` / ``activate``, run by the worker between runs;
        answers what the gripper reported (or why it was refused)."""
        with self._lock:
            if self.executing:
                return False, f"gripper {name} refused: the arm is executing a plan; stop it or wait until it is done"
            if self.estop_engaged:
                return False, f"gripper {name} refused: e-stop is engaged; {ESTOP_RELEASE_HINT}"
            worker = self.worker
            if not self.connected or worker is None:
                return False, f"gripper {name} refused: not connected to the robot: " \
                              f"{self.connection_error or 'still connecting'}"
            request_id = next(self._gripper_requests)
            worker.gripper_command(name, request_id)  # under the lock: no ~/execute can slip in before it
        with self._gripper_answered:
            if not self._gripper_answered.wait_for(lambda: request_id in self._gripper_answers, timeout_s):
                return False, f"gripper {name}: no answer from the worker within {timeout_s:.0f} s"
            answer = self._gripper_answers.pop(request_id)
        return bool(answer["ok"]), str(answer["message"])

    def stop(self, reason: str) -> tuple[bool, str]:
        worker = self.worker
        if worker is not None:
            worker.stop(reason)  # first, before any bookkeeping
        with self._lock:
            if self.executing:
                return True, f"stopping plan {self._status.plan_stamp_s:.3f}"
            if self.plan is not None:
                self.plan = None
                self._set(state="idle", reason=f"waiting plan discarded: {reason}")
                return True, "discarded the waiting plan; nothing was moving"
            return True, "nothing is executing"

    def estop(self, engaged: bool, source: str = "/spatial_trace/estop") -> None:
        """``True`` stops now and latches (persisted before this returns); ``False`` changes nothing:
        release is ``reset_estop``'s alone."""
        if engaged:
            worker = self.worker
            if worker is not None:
                worker.stop(ESTOP_REASON)
            with self._lock:
                if not self.latch.engaged:
                    self._log("warn", "e-stop engaged: motion stopped, execution blocked until ~/reset_estop")
                try:
                    self.latch.engage(source)
                except OSError as err:  # the latch still holds in memory
                    self.latch.engaged = True
                    self._log("error", f"could not persist the e-stop latch to {self.latch.path}: {err}")
                if not self.executing:
                    self.plan = None
                    self._set(state="idle" if self._status.state == "waiting_for_execute" else self._status.state,
                              reason=f"e-stop engaged; {ESTOP_RELEASE_HINT}")
        elif self.latch.engaged:
            self._log("info", f"false on {source} does not release the e-stop; {ESTOP_RELEASE_HINT}")

    def reset_estop(self, note: str) -> tuple[bool, str]:
        """Release the e-stop, logging ``note`` (who and why); refused without a note."""
        note = note.strip()
        with self._lock:
            if not self.latch.engaged:
                return False, "the e-stop is not engaged; nothing to reset"
            if not note:
                return False, ("refused: say who releases the e-stop and why first: ros2 param set /controller_node "
                               "estop_reset_note 'name: reason'")
            try:
                self.latch.release(note)
            except OSError as err:
                return False, f"could not write the e-stop latch file {self.latch.path} ({err}); still engaged"
            self._log("warn", f"e-stop released via ~/reset_estop: {note}")
            if not self.executing:
                self._set(reason=f"e-stop released ({note}); waiting for a plan")
            return True, f"e-stop released: {note}"

    def recover(self, timeout_s: float) -> tuple[bool, str]:
        """Ask the robot to clear a protective stop (UR: unlock after its 5 s, upload the control script
        again) without restarting anything; blocks until the worker answers or ``timeout_s``."""
        with self._lock:
            if self.executing:
                return False, "a plan is executing; stop it first"
            if self.latch.engaged:
                return False, f"e-stop is engaged; {ESTOP_RELEASE_HINT}"
            worker = self.worker
            if not self.connected or worker is None:
                return False, f"not connected to the robot: {self.connection_error or 'still connecting'}"
            self._recovered.clear()
            self._recovery = None
        worker.recover()
        if not self._recovered.wait(timeout_s):
            return False, f"the robot did not finish recovering within {timeout_s:.0f} s"
        answer = self._recovery or {"ok": False, "message": "no answer"}
        with self._lock:
            if answer["ok"]:
                self.robot_fault = ""
                self._set(reason=f"recovered: {answer['message']}; waiting for a plan")
        self._log("info" if answer["ok"] else "error", f"recovery: {answer['message']}")
        return bool(answer["ok"]), str(answer["message"])

    # -- worker events -----------------------------------------------------------------------------------
    def poll(self) -> Updates:
        with self._lock:
            worker = self.worker
        events = worker.events() if worker is not None else []
        states: list[StateEvent] = []
        result: ExecutionResult | None = None
        with self._lock:
            for event in events:
                if isinstance(event, StateEvent):
                    states.append(event)
                    self._on_state(event)
                    continue
                kind, payload = event
                if kind == "result":
                    result = payload
                    self._on_result(payload)
                elif kind == "failed":
                    self._on_failed(payload["reason"])
                elif kind == "task" and not self.executing:
                    self._set(reason=payload["message"])
                elif kind == "fault" and not self.executing:
                    self._set(reason=payload["reason"])
                elif kind == "recovered":
                    self._recovery = payload
                    self._recovered.set()
                elif kind == "gripper":
                    with self._gripper_answered:
                        self._gripper_answers[payload["request_id"]] = payload
                        self._gripper_answered.notify_all()
            status = ControllerStatus(**asdict(self._status)) if self._changed else None
            self._changed = False
        return Updates(states, status, result)

    def _on_state(self, event: StateEvent) -> None:
        if event.gripper is not None:
            self._gripper_report = event.gripper
        if event.state.connected:
            self._robot_state = (time.monotonic(), event.state)
        fault = event.state.fault_reason() if event.state.connected else ""
        if fault != self.robot_fault:
            if fault:
                self._log("error", f"the robot reports: {fault}")
                if not self.executing and self._status.state in ("idle", "waiting_for_execute", "succeeded"):
                    self._set(reason=f"{fault}; call ~/recover once the cause is cleared")
            self.robot_fault = fault
        if event.executing and self.executing:
            self._status.progress = event.progress
            self._status.tracking_error_m = event.tracking_error_m
        elif not event.executing and not self.executing and not event.state.connected and self.connected:
            self._log("error", "lost the connection to the robot; reconnecting")
            self._drop_worker("lost the connection to the robot")
            if self._status.state in ("idle", "waiting_for_execute"):  # a run's outcome keeps its reason
                self._set(reason=f"lost the connection to the robot; reconnecting every "
                                 f"{self.config.reconnect_interval_s:g} s")

    def _on_result(self, result: ExecutionResult) -> None:
        self.last_result = result
        error = result.max_tracking_error_m if len(result.times_s) else None
        self._set(state=result.outcome, progress=result.progress, reason=result.reason, tracking_error_m=error,
                  task=result.task or None)
        self.task_resumable = bool(result.task.get("resumable")) and result.outcome != "succeeded"
        level = "info" if result.succeeded else "warn"
        self._log(level, f"plan {result.plan_id} {result.outcome}: {result.reason}")

    def _on_failed(self, reason: str) -> None:
        self._log("error", f"real-time worker failed: {reason}")
        if self.executing:
            self._set(state="aborted", reason=reason)
        elif self._status.state in ("idle", "waiting_for_execute"):
            self._set(reason=f"{reason}; reconnecting")
        self._drop_worker(reason)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            worker, self.worker, self.connected = self.worker, None, False
        if worker is not None:
            worker.close()
