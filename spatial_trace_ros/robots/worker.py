"""The controller's real-time loop in its own process, and the handle the ROS node holds on it.

Why a process: ur_rtde's calls hold the GIL while they block (its constructors forever against a
peer that accepts but never answers), which would freeze every ROS callback, e-stop included. So
the driver, the execution loop and the control policy live in a spawned worker process; the node
talks to it through pipes (commands, and a separate stop pipe that a listener thread in the worker
turns into an immediate wake-up of the loop) and a queue (events: ready, state, started, result,
recovering, recovered, gripper_busy, gripper, failed).

The worker is the gripper's only owner (``robots.gripper_owner``): it sequences the fingers with the
arm in a task, runs the operator's manual commands (``GripperCommand``, answered by a ``gripper``
event) between runs, and sends the gripper's state in every state event.

Liveness both ways: the worker exits when the node's end of the pipes closes, and stops the arm
first; the node kills a worker that stays silent for ``liveness_timeout_s`` (the robot-side watchdog,
e.g. ur_rtde's RTDE watchdog, then stops the arm). A run may start with a longer silence: the
driver's ``prepare_motion`` (the G1 takes the arm over again with a seconds-long weight ramp) is
allowed the driver's ``prepare_timeout_s``, announced in the ``started`` event; a recovery (UR:
protective stop unlock and script upload) announces ``recover_timeout_s`` the same way.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError, RobotError, format_choices
from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.planning.safety import SafetyFilter, SetpointGuard
from spatial_trace_ros.planning.safety_config import SafetyConfig, load_safety_config
from spatial_trace_ros.policies.base import available_policies, load_policy_class
from spatial_trace_ros.robots.driver import RobotDriver, RobotState, driver_factory
from spatial_trace_ros.robots.dry_run import DryRunDriver
from spatial_trace_ros.robots.execution import ExecutionLoop, ExecutionResult, PeriodReport, StopSignal
from spatial_trace_ros.robots.gripper_owner import GripperOwner, GripperReport, make_gripper
from spatial_trace_ros.robots.model import RobotModel, make_robot_model
from spatial_trace_ros.robots.task_runner import TaskRunner
from spatial_trace_ros.tools.description import resolve_tool


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker process needs to build its driver, guard and loop."""

    robot: str
    driver: str
    driver_options: dict[str, Any] = field(default_factory=dict)
    safety_file: str = ""  # empty: the built-in limits (identical to config/safety.yaml)
    state_rate_hz: float = 50.0
    realtime_priority: int = 0  # 1-99: run the loop under SCHED_FIFO at this priority (needs CAP_SYS_NICE)
    tool: str = ""  # tool description ('' none, 'default', or a YAML path)
    gripper: str = ""  # gripper kind; '' = the tool description's (none without a tool), 'none' = none
    gripper_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StateEvent:
    """Robot state for /joint_states and the TCP pose, with the run's progress when executing."""

    state: RobotState
    executing: bool = False
    progress: float = 0.0
    tracking_error_m: float | None = None
    sim_objects: np.ndarray | None = None  # simulated gripper: the cell's object poses (N, 7), scene order
    gripper: GripperReport | None = None  # the gripper's latest state; None without a gripper


@dataclass(frozen=True)
class GripperCommand:
    """The operator's manual ``open``, ``close`` or ``activate``; answered by a ``gripper`` event
    carrying the same ``request_id``."""

    name: str
    request_id: int


@dataclass(frozen=True)
class ExecuteCommand:
    plan: Plan | None  # None: resume the stopped task
    policy: str
    policy_options: dict[str, Any]
    dry_run: bool
    stops_seen: int  # stop requests the node had sent when it asked for this run
    goal_tolerance_m: float = 0.01
    start_tolerance_rad: float = 0.05


# -- the worker process --------------------------------------------------------------------------------
class _Worker:
    def __init__(self, config: WorkerConfig, events: Any) -> None:
        self.config = config
        self.events = events
        self.model: RobotModel = make_robot_model(config.robot)
        safety = load_safety_config(config.safety_file) if config.safety_file else SafetyConfig()
        self.guard = SetpointGuard(safety, self.model)
        self.driver: RobotDriver = driver_factory(config.driver)(self.model, **config.driver_options)
        self.tool = resolve_tool(config.tool, config.robot)
        self.gripper = make_gripper(config.gripper, self.tool, config.gripper_options,
                                    str(config.driver_options.get("robot_ip", "")))
        # with a tool the gripper is activated at connect: a task needs it active
        self.gripper_owner = None if self.gripper is None else GripperOwner(self.gripper, self.tool is not None)
        self.runner = TaskRunner(self.gripper, self.tool, self._loop, SafetyFilter(safety, self.model),
                                 before_action=self._gripper_busy)
        self._cmd: ExecuteCommand | None = None
        self._policy: Any = None
        self._report: Any = None
        self._sim_paths: dict[str, list[list[float]]] = {}
        self._dry_runs: list[DryRunDriver] = []
        self.stop_signal = StopSignal()
        # Import every installed policy now: an import during a run would starve the robot's watchdog.
        self.policies: dict[str, type | str] = {}
        for name in available_policies():
            try:
                self.policies[name] = load_policy_class(name)
            except Exception as err:  # reported when someone asks for that policy
                self.policies[name] = f"failed to load: {err}"

    def listen_for_stops(self, stop_rx: Any) -> None:
        """A thread that turns every stop message into an immediate wake-up of the loop."""
        while True:
            try:
                reason, at_s = stop_rx.recv()
            except (EOFError, OSError):
                self.stop_signal.request("the controller node went away")
                return
            self.stop_signal.request(reason, at_s)

    def recover(self) -> dict[str, Any]:
        """The driver's recovery, answered in words (never an exception)."""
        try:
            return {"ok": True, "message": self.driver.recover()}
        except Exception as err:  # reported to whoever asked
            return {"ok": False, "message": f"{err}"}

    def _gripper_busy(self, timeout_s: float) -> None:
        """The fingers may take up to ``timeout_s``, with no state events meanwhile: tell the node."""
        self.events.put(("gripper_busy", {"quiet_s": timeout_s + 1.0}))

    def gripper_command(self, cmd: GripperCommand) -> dict[str, Any]:
        """The operator's manual command, between runs; refused while a stopped task holds the gripper."""
        if self.gripper_owner is None:
            ok, text = False, "this controller has no gripper; set its gripper (or tool) parameter"
        elif self.runner.progress is not None and not self.runner.progress.finished:
            ok, text = False, (f"gripper {cmd.name} refused: a stopped task owns the gripper; ~/resume it, or "
                               "~/abort it first (the gripper keeps what it holds)")
        else:
            self._gripper_busy(self.gripper_owner.settings.timeout_s)
            ok, text = self.gripper_owner.command(cmd.name)
        return {"request_id": cmd.request_id, "ok": ok, "message": text}

    def _gripper_report(self) -> GripperReport | None:
        return self.gripper_owner.report if self.gripper_owner is not None else None

    def _sim_objects(self) -> np.ndarray | None:
        world = getattr(self.gripper, "world", None)
        return world.object_poses() if world is not None else None

    def idle_tick(self) -> None:
        state = self.driver.read_state()
        self.driver.kick_watchdog()
        self.events.put(StateEvent(state, sim_objects=self._sim_objects(), gripper=self._gripper_report()))

    def connect(self) -> None:
        self.driver.connect()
        if self.gripper_owner is not None:
            self.gripper_owner.start()  # a gripper that cannot be reached is reported and retried, the arm still runs

    def _loop(self) -> ExecutionLoop:
        """The execution loop for one run (or one piece of a task)."""
        cmd = self._cmd
        assert cmd is not None
        driver = DryRunDriver(self.driver, self.model) if cmd.dry_run else self.driver
        if isinstance(driver, DryRunDriver):
            self._dry_runs.append(driver)
        return ExecutionLoop(driver, self._policy, self.guard, stop_signal=self.stop_signal, on_period=self._report,
                             goal_tolerance_m=cmd.goal_tolerance_m, start_tolerance_rad=cmd.start_tolerance_rad)

    def execute(self, cmd: ExecuteCommand) -> ExecutionResult:
        deadline = time.monotonic() + 0.5
        while self.stop_signal.count < cmd.stops_seen and time.monotonic() < deadline:
            time.sleep(0.001)  # a stop sent before this command is still on its way
        self.stop_signal.clear_up_to(cmd.stops_seen)
        plan_id = cmd.plan.plan_id if cmd.plan is not None else "resume"
        policy_cls = self.policies.get(cmd.policy)
        problem = "" if isinstance(policy_cls, type) else policy_cls or format_choices(
            "control_policy", cmd.policy, list(self.policies))
        if not problem:
            options = {**cmd.policy_options, "period_s": self.driver.period_s, "driver_supports": self.driver.supports}
            try:
                self._policy = policy_cls(self.model, **options)
            except (ConfigError, TypeError, ValueError) as err:
                problem = f"could not be created: {err}"
        if problem:
            return ExecutionResult(outcome="aborted", reason=f"control policy {cmd.policy!r}: {problem}",
                                   plan_id=plan_id, policy=cmd.policy)
        every = max(1, round(1.0 / (self.config.state_rate_hz * self.driver.period_s)))
        count = [0]
        world = getattr(self.gripper, "world", None)  # the simulated gripper's cell: record what moves

        def report(period: PeriodReport) -> None:
            count[0] += 1
            if count[0] % every == 0:
                self.events.put(StateEvent(period.state, True, period.progress, period.tracking_error_m,
                                           self._sim_objects(), self._gripper_report()))
                if world is not None:
                    for name, p in world.object_positions().items():
                        self._sim_paths.setdefault(name, []).append([round(float(v), 4) for v in p])

        self._cmd, self._report, self._sim_paths, self._dry_runs = cmd, report, {}, []
        self.events.put(("started", {"plan_id": plan_id, "policy": cmd.policy, "dry_run": cmd.dry_run,
                                     "prepare_timeout_s": self.driver.prepare_timeout_s}))
        if cmd.plan is None:
            result, progress = self.runner.resume(self.driver.read_state().q, cmd.dry_run)
        else:
            result, progress = self.runner.run(cmd.plan, cmd.dry_run)
        if progress is not None:
            task = {"task": progress.plan.task, "grasp": progress.grasp_outcome(), "holding": progress.holding,
                    "actions": [r.as_dict() for r in progress.reports], "resumable": not progress.finished}
            if world is not None:
                task["sim_objects_m"] = {n: [round(float(v), 4) for v in p]
                                         for n, p in world.object_positions().items()}
                task["sim_object_paths_m"] = {n: path for n, path in self._sim_paths.items()
                                              if np.ptp(np.array(path), axis=0).max() > 0.01}
            result = replace(result, task=task)
        if cmd.dry_run:
            absorbed = sum(d.setpoints_absorbed for d in self._dry_runs)
            result = replace(result, reason=f"dry run, nothing sent to the robot ({absorbed} setpoints checked): "
                                             f"{result.reason}")
        return result


def _set_scheduling(priority: int) -> str:
    """SCHED_FIFO at ``priority`` for this process when asked (a loaded PC otherwise wakes the loop
    late); says what it got, so a refusal is reported instead of silently ignored."""
    if priority <= 0:
        return "normal (SCHED_OTHER)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as err:
        return (f"normal: SCHED_FIFO {priority} was refused ({err}); allow it with CAP_SYS_NICE or an rtprio "
                "limit in /etc/security/limits.conf")
    return f"SCHED_FIFO {priority}"


def worker_main(config: WorkerConfig, cmd_rx: Any, stop_rx: Any, events: Any) -> None:
    """Entry point of the worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node shuts us down in order; Ctrl-C goes to it
    scheduling = _set_scheduling(config.realtime_priority)  # before connecting: driver threads inherit it
    try:
        worker = _Worker(config, events)
        worker.connect()
    except Exception as err:  # every failure to start is reported in words, never a traceback
        events.put(("failed", {"reason": f"{err}"}))
        return
    threading.Thread(target=worker.listen_for_stops, args=(stop_rx,), daemon=True).start()
    events.put(("ready", {"period_s": worker.driver.period_s, "supports": sorted(worker.driver.supports),
                          "scheduling": scheduling}))
    period = 1.0 / config.state_rate_hz
    try:
        while True:
            try:
                has_command = cmd_rx.poll(period)
                cmd = cmd_rx.recv() if has_command else None
            except (EOFError, OSError):
                return  # the node is gone
            if cmd is None:
                try:
                    worker.idle_tick()
                except Exception as err:  # keep reporting; the node decides what to do
                    events.put(("fault", {"reason": f"reading the robot state failed: {err}"}))
                    time.sleep(period)
            elif cmd == "shutdown":
                return
            elif cmd == "abort_task":
                events.put(("task", {"message": worker.runner.abort()}))
            elif isinstance(cmd, ExecuteCommand):
                events.put(("result", worker.execute(cmd)))
            elif isinstance(cmd, GripperCommand):
                events.put(("gripper", worker.gripper_command(cmd)))
            elif cmd == "recover":
                events.put(("recovering", {"quiet_s": worker.driver.recover_timeout_s}))
                events.put(("recovered", worker.recover()))
    finally:
        with contextlib.suppress(Exception):
            worker.driver.disconnect()
        if worker.gripper_owner is not None:
            with contextlib.suppress(Exception):
                worker.gripper_owner.close()
        events.cancel_join_thread()  # never hang on exit because nobody reads the last state events


# -- the node's handle -----------------------------------------------------------------------------------
class RealtimeWorker:
    """Starts the worker process and exchanges commands and events with it (no rclpy here)."""

    def __init__(self, config: WorkerConfig, liveness_timeout_s: float = 3.0) -> None:
        self.config = config
        self.liveness_timeout_s = liveness_timeout_s
        self._ctx = mp.get_context("spawn")
        self._process: Any = None
        self._cmd_tx: Any = None
        self._stop_tx: Any = None
        self._events: Any = None
        self._stop_lock = threading.Lock()
        self._stops_sent = 0
        self._last_event_s = 0.0
        self._preparing_until_s = 0.0  # a run's prepare_motion may keep the worker silent until then
        self.ready_info: dict[str, Any] | None = None
        self.failure = ""

    def start(self) -> None:
        cmd_rx, self._cmd_tx = self._ctx.Pipe(duplex=False)
        stop_rx, self._stop_tx = self._ctx.Pipe(duplex=False)
        self._events = self._ctx.Queue()
        self._process = self._ctx.Process(target=worker_main, args=(self.config, cmd_rx, stop_rx, self._events),
                                          name=f"realtime-{self.config.robot}", daemon=True)
        self._process.start()
        cmd_rx.close()
        stop_rx.close()
        self._last_event_s = time.monotonic()

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Block until the driver is connected; raises ``RobotError`` with the reason otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                kind, payload = self._events.get(timeout=0.05)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RobotError(f"the real-time worker exited (code {self._process.exitcode}) while "
                                     "connecting") from None
                continue
            if kind == "ready":
                self.ready_info = payload
                self._last_event_s = time.monotonic()
                return payload
            if kind == "failed":
                self.failure = payload["reason"]
                raise RobotError(f"could not connect to the robot: {payload['reason']}")
        self.kill()
        raise RobotError(f"the robot did not answer within {timeout_s:.0f} s ({self.config.driver} driver, options "
                         f"{self.config.driver_options}); the worker was stopped. Check the address and that the "
                         "controller is on")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def execute(self, plan: Plan, policy: str, policy_options: dict[str, Any], dry_run: bool,
                goal_tolerance_m: float = 0.01, start_tolerance_rad: float = 0.05) -> None:
        with self._stop_lock:
            stops = self._stops_sent
        self._cmd_tx.send(ExecuteCommand(plan, policy, dict(policy_options), dry_run, stops, goal_tolerance_m,
                                         start_tolerance_rad))

    def recover(self) -> None:
        """Ask the worker to clear a robot-side stop; the answer comes as a ``recovered`` event."""
        self._cmd_tx.send("recover")

    def resume(self, policy: str, policy_options: dict[str, Any], dry_run: bool, goal_tolerance_m: float = 0.01,
               start_tolerance_rad: float = 0.05) -> None:
        """Go on with the task a stop interrupted (from where the arm stands)."""
        with self._stop_lock:
            stops = self._stops_sent
        self._cmd_tx.send(ExecuteCommand(None, policy, dict(policy_options), dry_run, stops, goal_tolerance_m,
                                         start_tolerance_rad))

    def gripper_command(self, name: str, request_id: int) -> None:
        """Ask the worker for a manual gripper command; the answer comes as a ``gripper`` event."""
        self._cmd_tx.send(GripperCommand(name, request_id))

    def abort_task(self) -> None:
        """Forget the stopped task; the gripper stays as it is."""
        self._cmd_tx.send("abort_task")

    def stop(self, reason: str) -> float:
        """Ask the loop to stop now; returns the monotonic time the request left."""
        with self._stop_lock:
            self._stops_sent += 1
            at_s = time.monotonic()
            with contextlib.suppress(OSError, BrokenPipeError):
                self._stop_tx.send((reason, at_s))
        return at_s

    def _drain(self) -> list[Any]:
        out: list[Any] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return out

    def events(self) -> list[Any]:
        """Everything the worker reported since the last call (StateEvent, or (kind, payload) tuples);
        a dead or silent worker is reported as ("failed", {"reason": ...}) once."""
        out = self._drain()
        now = time.monotonic()
        if out:
            self._last_event_s = now
        for event in out:
            if isinstance(event, tuple) and event[0] == "started":
                self._preparing_until_s = now + float(event[1].get("prepare_timeout_s", 0.0))
            elif isinstance(event, tuple) and event[0] in ("recovering", "gripper_busy"):
                self._preparing_until_s = now + float(event[1].get("quiet_s", 0.0))
        if self.ready_info is not None and not self.failure:
            silent_s = now - self._last_event_s
            if not self.alive:
                self.failure = self._death_report()
            elif silent_s > self.liveness_timeout_s and now > self._preparing_until_s:
                self.kill()
                self.failure = (f"the real-time loop stopped responding for {silent_s:.1f} s and was "
                                "killed; no further commands are sent (on a UR the RTDE watchdog stops the arm)")
            if self.failure:
                out.append(("failed", {"reason": self.failure}))
        return out

    def _death_report(self) -> str:
        code = self._process.exitcode if self._process is not None else None
        how = (f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exited (code {code})")
        report = f"the real-time worker {how} unexpectedly; no further commands are sent"
        if self.config.driver == "ur_rtde":
            report += (" (the RTDE watchdog stops the arm). ur_rtde crashes this way when the connection to the "
                       "controller drops under a command: check the network and the robot, then connect again")
        return report

    def kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(2.0)

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to stop the arm and disconnect; kill it if it does not within ``timeout_s``."""
        if self._process is None:
            return
        self.stop("the controller is shutting down")
        with contextlib.suppress(OSError, BrokenPipeError):
            self._cmd_tx.send("shutdown")
        deadline = time.monotonic() + timeout_s
        while self._process.is_alive() and time.monotonic() < deadline:
            self._drain()  # a full event pipe would keep the worker from exiting
            self._process.join(0.05)
        self.kill()
        for end in (self._cmd_tx, self._stop_tx):
            with contextlib.suppress(OSError):
                end.close()
        self._events.close()
        self._events.join_thread()
