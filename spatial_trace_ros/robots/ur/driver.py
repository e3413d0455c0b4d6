"""``RtdeDriver`` (driver ``ur_rtde``): a UR5/UR5e (CB3 or e-Series) through ur_rtde 1.6.

Two RTDE connections: ``RTDEReceiveInterface`` for state (joints, TCP pose in the controller's
``base`` frame, safety status bits, runtime state) and ``RTDEControlInterface``, which uploads
ur_rtde's control script and sends commands through registers. ur_rtde's constructors can block
forever against a peer that accepts but never answers, and its calls hold the GIL, so this driver
lives in the controller's real-time worker process, never in the ROS node.

On connect the RTDE watchdog is armed (``watchdog_min_hz``): if the worker stops sending (crash,
hang, network loss) the control script stops and the arm with it. The loop kicks it every period in
which it sends nothing else (every command refreshes the same register).

ur_rtde's blocking commands (servoStop, speedStop, stopL, moveL) wait up to minutes for an answer
from a controller that no longer talks; ``stop`` therefore sends nothing when the connection is lost
or the program is not running (the watchdog or the robot's own safety already stopped the arm).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spatial_trace_ros.errors import ConfigError, RobotError
from spatial_trace_ros.robots.driver import MovePathCommand, RobotDriver, RobotState
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.robots.ur.pose_vector import pose_matrix, ur_pose

ALL_KINDS = ("servo_pose", "servo_joints", "speed_tcp", "move_path")
RECEIVE_VARIABLES = [
    "timestamp", "actual_q", "actual_qd", "actual_TCP_pose", "robot_mode", "safety_mode", "safety_status_bits",
    "runtime_state", "robot_status_bits",
]
ROBOT_MODE_RUNNING = 7
# safety_status_bits (RTDE guide)
BIT_PROTECTIVE_STOPPED = 1 << 2
BIT_SAFEGUARD_STOPPED = 1 << 4
BITS_EMERGENCY_STOPPED = (1 << 5) | (1 << 6) | (1 << 7)
BIT_VIOLATION = 1 << 8
BIT_FAULT = 1 << 9
BITS_STOPPED = BIT_PROTECTIVE_STOPPED | BITS_EMERGENCY_STOPPED  # stops that end the control script
SAFETY_BITS_SETTLE_S = 0.25
# A UR controller refuses to unlock a protective stop until 5 s after it happened: keep asking this long.
UNLOCK_PATIENCE_S = 7.0
SCRIPT_START_TIMEOUT_S = 2.0  # longest wait for the receive stream to show why the control script stopped
TCP_OFFSET_TOLERANCE = 1e-6  # [m, rad] the read-back TCP offset must be the flange within this
# servoL/servoJ take speed and acceleration arguments that the controller ignores; ur_rtde checks ranges.
SERVO_UNUSED_SPEED, SERVO_UNUSED_ACCEL = 0.5, 0.5


class RtdeDriverOptions(BaseModel):
    """Options of the ``ur_rtde`` driver (the controller node's ``robot_ip`` and ``driver_options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    robot_ip: str = Field(description="IP address of the UR controller")
    frequency_hz: float = Field(
        0.0, ge=0.0, le=500.0,
        description="control and RTDE rate [Hz]; 0 = the controller's own (125 CB3, 500 e-Series, from the dashboard)",
    )
    watchdog_min_hz: float = Field(
        10.0, ge=0.0, le=500.0, description="RTDE watchdog [Hz]: the arm stops if commands come slower; 0 = off, "
        "which leaves the connection good for dry runs only (every motion command is refused)"
    )
    stop_decel_mps2: float = Field(2.0, gt=0.0, le=20.0, description="deceleration of stop() [m/s^2] (tool)")
    servo_joints_lookahead_s: float = Field(0.1, ge=0.03, le=0.2, description="servoJ lookahead time [s]")
    servo_joints_gain: float = Field(300.0, ge=100.0, le=2000.0, description="servoJ proportional gain")
    command_kinds: tuple[Literal["servo_pose", "servo_joints", "speed_tcp", "move_path"], ...] = Field(
        ALL_KINDS, min_length=1, description="command kinds offered to policies (e.g. only servo_joints: servoJ)"
    )
    upper_range_registers: bool = Field(
        False, description="use RTDE registers 24-47 (when a PLC or fieldbus uses the lower range)"
    )

    @field_validator("robot_ip")
    @classmethod
    def _ip_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("robot_ip is empty; set the controller's IP address")
        return value.strip()


class RtdeDriver(RobotDriver):
    """A UR arm over RTDE. Options: see ``RtdeDriverOptions``."""

    recover_timeout_s = UNLOCK_PATIENCE_S + SCRIPT_START_TIMEOUT_S + 3.0

    def __init__(self, model: RobotModel, **options: Any) -> None:
        if model.dof != 6 or not model.name.startswith("ur"):
            raise ConfigError(f"the ur_rtde driver drives UR arms, not {model.name!r}; choose the robot's own driver")
        try:
            self.options = RtdeDriverOptions(**options)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in err.errors())
            raise ConfigError(f"invalid ur_rtde driver options: {problems}") from None
        self.model = model
        self.supports = frozenset(self.options.command_kinds)
        self.period_s = 1.0 / (self.options.frequency_hz or 125.0)
        self._control: Any = None
        self._receive: Any = None
        self._mode: Literal["idle", "servo", "speed", "path"] = "idle"
        self._last_command_s = 0.0
        self._clock = -1.0  # the last RTDE timestamp seen, and when it last advanced (monotonic)
        self._clock_advanced_s = 0.0

    # -- connection --------------------------------------------------------------------------------------
    def _controller_rate_hz(self, dashboard_client: Any) -> float:
        """500 Hz for e-Series (PolyScope 5+), 125 Hz for CB3, from the dashboard's version answer."""
        ip = self.options.robot_ip
        db = dashboard_client.DashboardClient(ip)
        db.connect()
        if not db.isConnected():
            raise RobotError(f"no UR dashboard server answered at {ip}:29999; check robot_ip, the network and "
                             "that the robot is powered")
        try:
            version = str(db.polyscopeVersion())
        finally:
            db.disconnect()
        try:
            major = int(version.split(".")[0])
        except ValueError:
            raise RobotError(f"the controller at {ip} reported PolyScope version {version!r}, not a version number") \
                from None
        return 500.0 if major >= 5 else 125.0

    def connect(self) -> None:
        try:
            import dashboard_client
            import rtde_control
            import rtde_receive
        except ImportError as err:
            raise ConfigError(f"ur_rtde is not installed ({err}); pip install ur-rtde==1.6.5") from None
        o = self.options
        frequency = o.frequency_hz or self._controller_rate_hz(dashboard_client)
        flags = rtde_control.RTDEControlInterface.FLAG_UPLOAD_SCRIPT
        if o.upper_range_registers:
            flags |= rtde_control.RTDEControlInterface.FLAG_UPPER_RANGE_REGISTERS
        try:
            self._receive = rtde_receive.RTDEReceiveInterface(o.robot_ip, frequency, RECEIVE_VARIABLES, False,
                                                              o.upper_range_registers)
            self._control = rtde_control.RTDEControlInterface(o.robot_ip, frequency, flags)
        except RuntimeError as err:
            raise RobotError(f"could not start RTDE control of the UR at {o.robot_ip}: {err}. Check that the "
                             "robot is in remote control, powered on with brakes released, and that no other "
                             "program uses the RTDE input registers") from None
        self.period_s = 1.0 / frequency
        self._check_tcp(self._control)
        self._arm_watchdog(self._control)
        self._mode = "idle"

    def _check_tcp(self, control: Any) -> None:
        """The stack plans and reads flange poses (a tool's TCP is applied by the planner from its tool
        description), so the controller's TCP must be the flange: set it and read it back."""
        control.setTcp([0.0] * 6)
        actual = [float(v) for v in control.getTCPOffset()]
        if len(actual) != 6 or max(abs(v) for v in actual) > TCP_OFFSET_TOLERANCE:
            raise RobotError(
                f"the UR at {self.options.robot_ip} keeps TCP offset {[round(v, 4) for v in actual]} although "
                f"the driver set {[0.0] * 6} (the flange, which the stack plans for; the tool's TCP "
                "comes from config/tool.*.yaml). Clear the TCP in the robot's installation and connect again")

    def _arm_watchdog(self, control: Any) -> None:
        hz = self.options.watchdog_min_hz
        if hz > 0 and not control.setWatchdog(hz):
            raise RobotError(f"the UR at {self.options.robot_ip} did not accept the RTDE watchdog ({hz} Hz)")
        self._last_command_s = time.monotonic()

    def disconnect(self) -> None:
        control, receive = self._control, self._receive
        self._control = self._receive = None
        if control is not None:
            try:
                if self._usable(control, receive):
                    self._stop_with(control)
                    control.stopScript()
            finally:
                control.disconnect()
        if receive is not None:
            receive.disconnect()

    # -- state ----------------------------------------------------------------------------------------------
    def _require(self) -> tuple[Any, Any]:
        if self._control is None or self._receive is None:
            raise RobotError("the ur_rtde driver is not connected; call connect() first")
        return self._control, self._receive

    @staticmethod
    def _connected(control: Any, receive: Any) -> bool:
        return bool(control is not None and receive is not None and control.isConnected() and receive.isConnected())

    @staticmethod
    def _usable(control: Any, receive: Any) -> bool:
        """Commands can be sent and answered (ur_rtde blocks on commands it cannot get answered)."""
        if not RtdeDriver._connected(control, receive):
            return False
        bits = receive.getSafetyStatusBits()
        return bool(control.isProgramRunning()) and not bits & BITS_STOPPED

    def read_state(self) -> RobotState:
        control, receive = self._require()
        connected = self._connected(control, receive)
        program = bool(control.isProgramRunning())
        bits = int(receive.getSafetyStatusBits())
        if connected and not program and not bits & BITS_STOPPED:
            bits = self._safety_bits_after_next_packets(receive)
        fault = ""
        if bits & BIT_SAFEGUARD_STOPPED:
            fault = "robot is in safeguard stop (a safety input is open); close it and resume"
        elif bits & (BIT_VIOLATION | BIT_FAULT):
            fault = f"robot reports a safety {'violation' if bits & BIT_VIOLATION else 'fault'}; see the pendant"
        elif connected and not program and not bits & BITS_STOPPED:
            fault = ("the RTDE control script is not running on the controller (stopped by the RTDE watchdog, a "
                     "script error or the pendant); reconnect the controller to upload it again")
        moving = connected and program and self._mode == "path" and control.getAsyncOperationProgress() >= 0
        clock = float(receive.getTimestamp())
        if clock != self._clock:
            self._clock, self._clock_advanced_s = clock, time.monotonic()
        return RobotState(
            stamp_s=time.monotonic(),
            robot_clock=clock,
            q=np.asarray(receive.getActualQ(), float),
            tcp=pose_matrix(receive.getActualTCPPose()),
            qd=np.asarray(receive.getActualQd(), float),
            connected=connected,
            ready=program and receive.getRobotMode() == ROBOT_MODE_RUNNING,
            protective_stop=bool(bits & BIT_PROTECTIVE_STOPPED),
            emergency_stop=bool(bits & BITS_EMERGENCY_STOPPED),
            moving=bool(moving),
            fault=fault,
        )

    def _safety_bits_after_next_packets(self, receive: Any) -> int:
        """The safety bits once the receive stream has caught up with the control stream.

        ur_rtde's control and receive interfaces read two RTDE streams in two threads; when a protective
        stop ends the control script, the control side can see the script stop a packet or more before the
        receive side sees the stop bit. Waiting for the receive stream's next packets (the script is not
        running, so nothing can move meanwhile) names the cause right instead of "script not running".
        """
        start = receive.getTimestamp()
        deadline = time.monotonic() + SAFETY_BITS_SETTLE_S
        while time.monotonic() < deadline and receive.getTimestamp() < start + 2 * self.period_s:
            time.sleep(self.period_s / 4)
        return int(receive.getSafetyStatusBits())

    # -- commands -------------------------------------------------------------------------------------------
    def _send(self, what: str, mode: Literal["idle", "servo", "speed", "path"], command: Callable[[], bool]) -> None:
        """One ur_rtde command. A refusal, or the connection lost under it (ur_rtde then tries to
        reconnect and raises), is a RobotError that says which. Without the RTDE watchdog nothing is
        sent: a hung process would leave the arm following its last command."""
        if self.options.watchdog_min_hz <= 0:
            raise RobotError(f"refused to send {what}: the RTDE watchdog is off (watchdog_min_hz 0), which is "
                             "allowed for dry runs only; set watchdog_min_hz > 0 (default 10) to move the robot")
        lost = f"lost connection to the robot controller while sending {what}"
        advice = "check the network and the robot, then connect again"
        try:
            ok = command()
        except RuntimeError as err:
            raise RobotError(f"{lost} ({err}); {advice}") from None
        self._last_command_s = time.monotonic()
        self._mode = mode
        if not ok:
            if not self._connected(self._control, self._receive):
                raise RobotError(f"{lost}; {advice}")
            raise RobotError(f"the UR controller refused {what} (control script not running, or the robot stopped)")

    def servo_pose(self, pose: np.ndarray, lookahead_s: float, gain: float) -> None:
        control, _ = self._require()
        target = ur_pose(np.asarray(pose, float))
        self._send("servoL", "servo", lambda: control.servoL(
            target, SERVO_UNUSED_SPEED, SERVO_UNUSED_ACCEL, self.period_s, lookahead_s, gain))

    def servo_joints(self, q: np.ndarray) -> None:
        control, _ = self._require()
        o = self.options
        self._send("servoJ", "servo", lambda: control.servoJ(
            [float(x) for x in q], SERVO_UNUSED_SPEED, SERVO_UNUSED_ACCEL, self.period_s,
            o.servo_joints_lookahead_s, o.servo_joints_gain))

    def speed_tcp(self, twist: np.ndarray, accel_mps2: float) -> None:
        control, _ = self._require()
        self._send("speedL", "speed", lambda: control.speedL([float(x) for x in twist], accel_mps2, 0.0))

    def move_path(self, command: MovePathCommand) -> None:
        control, _ = self._require()
        poses = np.asarray(command.poses, float).reshape(-1, 4, 4)
        path = [[*ur_pose(p), command.speed_mps, command.accel_mps2, command.blend_m]
                for p in poses]
        path[-1][8] = 0.0  # the last waypoint is reached, not blended past
        self._send("the moveL path", "path", lambda: control.moveL(path, True))
        # ur_rtde sends a path by re-uploading its control script, which ends the watchdog of the old one.
        self._arm_watchdog(control)

    def freedrive(self, enabled: bool) -> None:
        """ur_rtde teachMode / endTeachMode: the arm follows the operator's hand until turned off."""
        control, _ = self._require()
        if enabled:
            self._send("teachMode (freedrive)", "idle", control.teachMode)
        else:
            self._send("endTeachMode", "idle", control.endTeachMode)

    def stop(self) -> None:
        if self._control is None or not self._answering() or not self._usable(self._control, self._receive):
            self._mode = "idle"
            return
        self._stop_with(self._control)

    def _answering(self) -> bool:
        """The RTDE stream still advances. A frozen controller would leave a stop command blocked in
        ur_rtde for seconds (the controller's own watchdog then handles the arm): nothing is sent to it.
        Answers at once when the last read saw the clock move within two periods, else waits up to
        three periods for the next packet."""
        if time.monotonic() - self._clock_advanced_s < 2 * self.period_s:
            return True
        start = self._receive.getTimestamp()
        deadline = time.monotonic() + 3 * self.period_s
        while time.monotonic() < deadline:
            if self._receive.getTimestamp() != start:
                return True
            time.sleep(self.period_s / 4)
        return False

    def _stop_with(self, control: Any) -> None:
        decel = self.options.stop_decel_mps2
        if self._mode == "servo":
            control.servoStop(decel)
        elif self._mode == "speed":
            control.speedStop(decel)
        else:
            control.stopL(decel, False)
        self._last_command_s = time.monotonic()
        self._mode = "idle"

    # -- recovery -----------------------------------------------------------------------------------------
    def recover(self) -> str:
        """After a protective stop: unlock it through the dashboard (the controller allows that 5 s after
        the stop), then upload the control script again and re-arm the watchdog. Emergency stops and
        safety faults need a person at the pendant: refused with what to do."""
        control, receive = self._require()
        if not self._connected(control, receive):
            raise RobotError("not connected to the UR controller; check the network, the controller reconnects by "
                             "itself")
        bits = int(receive.getSafetyStatusBits())
        if bits & BITS_EMERGENCY_STOPPED:
            raise RobotError("the robot is in emergency stop: release the e-stop button, power on and release the "
                             "brakes on the pendant, then call ~/recover again")
        if bits & (BIT_SAFEGUARD_STOPPED | BIT_VIOLATION | BIT_FAULT):
            raise RobotError("the robot reports a safeguard stop or a safety fault: clear it on the pendant first")
        done = []
        if bits & BIT_PROTECTIVE_STOPPED:
            self._unlock_protective_stop()
            done.append("protective stop unlocked")
        if not control.isProgramRunning():
            if not control.reuploadScript():
                raise RobotError("the UR controller did not take the control script; check remote control mode")
            deadline = time.monotonic() + SCRIPT_START_TIMEOUT_S
            while not control.isProgramRunning():
                if time.monotonic() > deadline:
                    raise RobotError("the control script did not start after the upload; see the pendant's log")
                time.sleep(0.01)
            self._arm_watchdog(control)
            self._mode = "idle"
            done.append("control script uploaded and started again")
        return ", ".join(done) if done else "nothing to recover: the robot was ready"

    def _unlock_protective_stop(self) -> None:
        import dashboard_client

        db = dashboard_client.DashboardClient(self.options.robot_ip)
        db.connect()
        deadline = time.monotonic() + UNLOCK_PATIENCE_S
        try:
            while True:
                try:
                    db.closeSafetyPopup()
                    db.unlockProtectiveStop()
                    break
                except Exception as err:  # ur_rtde raises when the controller answers "cannot unlock"
                    if time.monotonic() > deadline:
                        raise RobotError(f"the controller refused to unlock the protective stop: {err}") from None
                    time.sleep(0.25)
        finally:
            db.disconnect()
        deadline = time.monotonic() + SAFETY_BITS_SETTLE_S * 4
        while int(self._receive.getSafetyStatusBits()) & BIT_PROTECTIVE_STOPPED and time.monotonic() < deadline:
            time.sleep(self.period_s)

    def kick_watchdog(self) -> None:
        """Only in periods without another command: every command refreshes the watchdog's register."""
        if self._control is None or time.monotonic() - self._last_command_s < 0.5 * self.period_s:
            return
        if self._control.isConnected() and self._control.isProgramRunning():
            self._control.kickWatchdog()
            self._last_command_s = time.monotonic()
