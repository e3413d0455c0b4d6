"""The gripper's one owner: the controller's real-time worker process.

The worker sequences the fingers with the arm (``robots.task_runner``), so it is also where the
operator's manual open / close / activate run (never while the arm executes: the worker's command
loop runs one thing at a time) and where the gripper's state is read. ``GripperOwner`` builds the
gripper from the controller's settings, connects it (retried while it cannot be reached), reads its
state on a thread of its own at ``rate_hz`` (so the state keeps flowing while the fingers or the arm
move) and keeps the latest ``GripperReport``, which the worker sends to the node in every state event
(``ros/gripper_interface.py`` publishes it). No rclpy here.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from typing import Any

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.tools.description import ToolDescription
from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState, gripper_factory

MANUAL_COMMANDS = ("open", "close", "activate")
_DONE = {"open": "opened", "close": "closed", "activate": "activated"}


@dataclass(frozen=True)
class ManualSettings:
    """How the operator's manual commands move the fingers, and how often the state is read."""

    speed_fraction: float = 0.3  # of the gripper's speed range
    force_fraction: float = 0.3  # of its force range: a firm but gentle grip
    timeout_s: float = 5.0
    rate_hz: float = 10.0
    reconnect_interval_s: float = 5.0


@dataclass(frozen=True)
class GripperReport:
    """What the node publishes about the gripper: its state (None while it cannot be reached) and a
    sentence for the operator."""

    state: GripperState | None
    message: str
    endpoint: str
    senses_object: bool = True


def describe(state: GripperState, senses_object: bool = True) -> str:
    """One sentence an operator reads: what the fingers are doing or holding."""
    width = f"{state.width_m * 1000:.1f} mm"
    if state.fault:
        return state.fault
    if not state.activated:
        return "not activated (call ~/gripper_activate)"
    if state.moving:
        return f"moving, at {width}"
    if state.object_detected:
        return f"holding an object at {width}"
    return f"at {width}, nothing held" if senses_object else f"at {width} (no object sensor)"


def gripper_kind(setting: str, tool: ToolDescription | None) -> str:
    """The controller's ``gripper`` parameter resolved: '' = the tool's kind (none without a tool)."""
    if setting:
        return setting
    return tool.gripper.kind if tool is not None else "none"


def make_gripper(setting: str, tool: ToolDescription | None, options: dict[str, Any],
                 robot_ip: str = "") -> Gripper | None:
    """The gripper of the controller's ``gripper`` parameter (None for none) with its options; the
    robot's address goes to factories that take ``host`` unless given. Bad options raise
    ``ConfigError`` naming the fix."""
    kind = gripper_kind(setting, tool)
    if kind == "none":
        return None
    factory = gripper_factory(kind)
    options = dict(options)
    if robot_ip and "host" in inspect.signature(factory).parameters:
        options.setdefault("host", robot_ip)
    if kind == "sim" and tool is None:
        raise ConfigError("the sim gripper is built from a tool description; set the controller's tool parameter "
                          "(tool:=default)")
    try:
        return factory(tool, **options)
    except TypeError as err:
        raise ConfigError(f"gripper_options_json does not fit the {kind} gripper ({err}); see docs/tools.md") from None
    except GripperError as err:
        raise ConfigError(f"gripper {kind}: {err}") from None


class GripperOwner:
    """Connects, reads and commands one gripper inside the worker; ``report`` is the latest state.

    With a tool the gripper is activated at every (re)connect, as a task needs it active; without one
    activation is the operator's (``~/gripper_activate``: a Robotiq activation moves the fingers)."""

    def __init__(self, gripper: Gripper, activate_on_connect: bool, settings: ManualSettings | None = None) -> None:
        self.gripper = gripper
        self.activate_on_connect = activate_on_connect
        self.settings = settings or ManualSettings()
        self._lock = threading.Lock()  # the report
        self._read_lock = threading.Lock()  # one (re)connect and read at a time
        self._connected = False
        self._last_connect_s = -float("inf")
        self._report = GripperReport(None, "connecting", gripper.endpoint, gripper.senses_object)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="gripper-state", daemon=True)

    @property
    def report(self) -> GripperReport:
        with self._lock:
            return self._report

    def start(self) -> None:
        """Connect once now (a failure is reported, not raised), then read the state on a thread."""
        self._connect()
        self._read()
        self._thread.start()

    def close(self) -> None:
        """Stop reading and release the link; the fingers stay as they are."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.gripper.disconnect()

    def _connect(self) -> None:
        self._last_connect_s = time.monotonic()
        try:
            self.gripper.connect()
            if self.activate_on_connect:
                self.gripper.activate(self.settings.timeout_s)
        except GripperError as err:
            with self._lock:
                self._report = GripperReport(None, str(err), self.gripper.endpoint, self.gripper.senses_object)
            return
        self._connected = True

    def _read(self) -> None:
        with self._read_lock:
            self._read_locked()

    def _read_locked(self) -> None:
        if not self._connected:
            if time.monotonic() - self._last_connect_s < self.settings.reconnect_interval_s:
                return
            self._connect()
            if not self._connected:
                return
        try:
            state = self.gripper.read_state()
        except GripperError as err:
            self._connected = False  # connect again later: reopens a dropped link, keeps a live one
            report = GripperReport(None, str(err), self.gripper.endpoint, self.gripper.senses_object)
        else:
            report = GripperReport(state, describe(state, self.gripper.senses_object), self.gripper.endpoint,
                                   self.gripper.senses_object)
        with self._lock:
            self._report = report

    def _read_loop(self) -> None:
        period = 1.0 / self.settings.rate_hz
        while not self._stop.wait(period):
            self._read()

    # -- manual commands -----------------------------------------------------------------------------
    def _manual_speed_force(self) -> tuple[float, float]:
        s = self.settings
        (v0, v1), (f0, f1) = self.gripper.speed_range_mps, self.gripper.force_range_n
        return v0 + s.speed_fraction * (v1 - v0), f0 + s.force_fraction * (f1 - f0)

    def command(self, name: str) -> tuple[bool, str]:
        """Run the operator's ``open``, ``close`` or ``activate``; (success, what the gripper did)."""
        if name not in MANUAL_COMMANDS:
            return False, f"unknown gripper command {name!r}; one of {', '.join(MANUAL_COMMANDS)}"
        if not self._connected:
            return False, f"gripper {name} failed: not connected: {self.report.message}"
        timeout_s = self.settings.timeout_s
        try:
            if name == "activate":
                state = self.gripper.activate(timeout_s)
            elif name == "open":
                state = self.gripper.open(*self._manual_speed_force(), timeout_s)
            else:
                state = self.gripper.close(*self._manual_speed_force(), timeout_s)
        except GripperError as err:
            return False, f"gripper {name} failed: {err}"
        self._read()
        said = describe(state, self.gripper.senses_object)
        if name == "close" and self.gripper.senses_object and not state.object_detected:
            return True, f"closed on nothing: {said}"
        return True, f"{_DONE[name]}: {said}"
