"""The controller's state machine, without ROS: plans in, execute / stop / e-stop, worker events out.

``controller_node`` only converts messages and calls these methods. States (the ``state`` field of
``/spatial_trace/controller_status``): ``idle`` (no plan), ``waiting_for_execute`` (a plan is held
until ``~/execute``, unless ``auto_execute``), ``executing``, then ``succeeded`` / ``aborted`` /
``stopped`` with the reason. A plan is used once: after a run the robot is elsewhere, so the next run
needs a new plan. The e-stop latches: while engaged nothing executes; ``false`` on the e-stop topic
releases it. The worker connection is kept up by a background thread that (re)connects every
``reconnect_interval_s`` while it is down.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

from spatial_trace_ros.errors import RobotError
from spatial_trace_ros.planning.plan import Plan, SafetyReport
from spatial_trace_ros.planning.safety import SafetyFilter, verdict_of
from spatial_trace_ros.planning.task import check_task_plan
from spatial_trace_ros.planning.tool_geometry import ToolGeometry
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.execution import ExecutionResult
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.worker import RealtimeWorker, StateEvent

ESTOP_REASON = "e-stop engaged on /spatial_trace/estop"
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
    def __init__(self, config: ControllerNodeConfig, log: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.model = make_robot_model(config.robot)
        self.safety = config.safety()
        # A plan may come from any publisher on /spatial_trace/plan: it is checked again here, with
        # this controller's own limits, before it can be executed.
        self.plan_check = SafetyFilter(self.safety, self.model)
        self.tool = config.tool_description()
        self.tool_geometry = ToolGeometry(self.tool, self.safety, self.model) if self.tool is not None else None
        self.task_resumable = False
        self._log = log or (lambda level, text: None)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._status = ControllerStatus(policy=config.control_policy,
                                        reason=f"connecting to the robot ({config.driver_name} driver)")
        self._changed = True
        self.plan: Plan | None = None
        self.estop_engaged = False
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
                self._set(reason=f"connected ({self.config.driver_name}, {rate}); waiting for a plan")
        self._log("info", f"connected to the robot: {self.config.driver_name} driver at {1 / self.period_s:.0f} Hz, "
                          f"commands {', '.join(info['supports'])}; loop scheduling {info['scheduling']}")

    def _drop_worker(self, why: str) -> None:
        """Forget a dead or disconnected worker; the connection thread starts a new one."""
        worker, self.worker, self.connected = self.worker, None, False
        self.connection_error = why
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
            self.task_resumable = False
            self._set(state="waiting_for_execute", plan_stamp_s=plan.stamp_s, progress=0.0, tracking_error_m=None,
                      task=None,
                      policy=self.config.control_policy,
                      reason=f"plan with {len(plan)} waypoints over {plan.duration_s:.2f} s; call ~/execute")
            if self.config.auto_execute:
                ok, text = self._execute_locked()
                if not ok:
                    self._set(reason=text)
                return text
            return f"plan {plan.plan_id} ready: {len(plan)} waypoints, {plan.duration_s:.2f} s; waiting for ~/execute"

    def refuse_plan(self, reason: str) -> None:
        with self._lock:
            if not self.executing:
                self.plan = None
                self._set(state="idle", progress=0.0, reason=f"plan refused: {reason}")

    def execute(self) -> tuple[bool, str]:
        with self._lock:
            return self._execute_locked()

    def _execute_locked(self) -> tuple[bool, str]:
        if self.estop_engaged:
            return False, "e-stop is engaged; publish false on /spatial_trace/estop to release it"
        if self.executing:
            return False, f"already executing plan {self._status.plan_stamp_s:.3f}"
        if self.plan is None:
            return False, "no plan to execute; wait for one on /spatial_trace/plan"
        if not self.connected or self.worker is None:
            return False, f"not connected to the robot: {self.connection_error or 'still connecting'}"
        cfg, plan = self.config, self.plan
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
                return False, "e-stop is engaged; publish false on /spatial_trace/estop to release it"
            if self.executing:
                return False, "already executing"
            if not self.task_resumable:
                return False, "there is no stopped task to resume"
            if not self.connected or self.worker is None:
                return False, f"not connected to the robot: {self.connection_error or 'still connecting'}"
            cfg = self.config
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

    def estop(self, engaged: bool) -> None:
        if engaged:
            worker = self.worker
            if worker is not None:
                worker.stop(ESTOP_REASON)
            with self._lock:
                if not self.estop_engaged:
                    self._log("warn", "e-stop engaged: motion stopped, execution blocked until released")
                self.estop_engaged = True
                if not self.executing:
                    self.plan = None
                    self._set(state="idle" if self._status.state == "waiting_for_execute" else self._status.state,
                              reason="e-stop engaged; publish false on /spatial_trace/estop to release it")
        else:
            with self._lock:
                if self.estop_engaged:
                    self._log("info", "e-stop released")
                    self.estop_engaged = False
                    if not self.executing:
                        self._set(reason="e-stop released; waiting for a plan")

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
            status = ControllerStatus(**asdict(self._status)) if self._changed else None
            self._changed = False
        return Updates(states, status, result)

    def _on_state(self, event: StateEvent) -> None:
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
