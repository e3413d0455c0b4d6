"""What ur_rtde's uploaded control script (``def rtde_control():``) does, emulated on the registers.

The real script runs on the controller and talks to ``RTDEControlInterface`` only through RTDE
registers (offset 0, or 24 with ``FLAG_UPPER_RANGE_REGISTERS``):

- input int register 0 holds the command code, input int register 1 an async flag or an argument,
  input double registers 0.. the arguments (pose or joints, speed, acceleration, ...);
- output int register 0 is the handshake: 1 = ready for a command, 2 = done with it. The client waits
  for 1, writes a command, waits for 2, then writes command 0, and the script answers 1 again.
  Real-time commands (servoL, servoJ, speedL, speedJ, ...) are re-read every cycle and only answered
  with 1, so a client can stream them;
- output int register 2 is the async-operation status word (bit 15 running, bits 0-14 progress,
  bits 16-23 write counter, bits 24-30 operation id).

Paths (``moveL(path)``) are not sent through registers: the client injects ``movel(p[...], a=, v=,
r=)`` lines into the script text after ``# inject move path``, re-uploads the script and then sends
the MOVE_PATH command. ``setWatchdog(min_frequency)`` arms the RTDE watchdog on input int register 0:
if no input package writes it for 1/min_frequency seconds the program stops and the arm with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from spatial_trace_ros.robots.ur.pose_vector import pose_matrix
from spatial_trace_ros.testing.fake_ur.arm import (
    CartesianPathMotion,
    InverseKinematicsError,
    JointMotion,
    JointSpeedMotion,
    Motion,
    ServoMotion,
    SimulatedArm,
    ToolSpeedMotion,
)


class Command(IntEnum):
    """Command codes of ur_rtde 1.6's RTDEControlInterface (input int register 0)."""

    NO_CMD = 0
    MOVEJ = 1
    MOVEJ_IK = 2
    MOVEL = 3
    MOVEL_FK = 4
    FORCE_MODE = 6
    FORCE_MODE_STOP = 7
    ZERO_FT_SENSOR = 8
    SPEEDJ = 9
    SPEEDL = 10
    SERVOJ = 11
    SERVOC = 12
    SPEED_STOP = 15
    SERVO_STOP = 16
    SET_PAYLOAD = 17
    TEACH_MODE = 18
    END_TEACH_MODE = 19
    FORCE_MODE_SET_DAMPING = 20
    FORCE_MODE_SET_GAIN_SCALING = 21
    SERVOL = 24
    SET_TCP = 29
    GET_TCP_OFFSET = 40
    PROTECTIVE_STOP = 31
    STOPL = 33
    STOPJ = 34
    SET_WATCHDOG = 35
    MOVE_PATH = 45
    STOP_SCRIPT = 255


READY_FOR_COMMAND = 1
DONE_WITH_COMMAND = 2
# Codes the script processes every cycle and answers with "ready" only (no done handshake).
REALTIME_COMMANDS = frozenset({6, 9, 10, 11, 24, 25, 26, 27, 38, 58, 66, 67, 68, 69, 70, 71})
# Codes that make the arm move (a dry run must send none of these).
MOTION_COMMANDS = frozenset({
    Command.MOVEJ, Command.MOVEJ_IK, Command.MOVEL, Command.MOVEL_FK, Command.FORCE_MODE, Command.SPEEDJ,
    Command.SPEEDL, Command.SERVOJ, Command.SERVOC, Command.SERVOL, Command.MOVE_PATH,
})
STOP_COMMANDS = frozenset({Command.SPEED_STOP, Command.SERVO_STOP, Command.STOPL, Command.STOPJ})
# Commands accepted without any effect on this kinematic arm (nobody pushes it by hand in teach mode).
NO_EFFECT_COMMANDS = frozenset({
    Command.ZERO_FT_SENSOR, Command.SET_PAYLOAD, Command.FORCE_MODE_SET_DAMPING, Command.FORCE_MODE_SET_GAIN_SCALING,
    Command.TEACH_MODE, Command.END_TEACH_MODE,
})
PROGRAM_STOP_DECEL_RADPS2 = 10.0
SERVO_GAIN_REFERENCE = 300.0

_PATH_LINE = re.compile(
    r"^\s*(movel|movej)\((p?)\[([^\]]*)\]\s*,\s*a=([-+0-9.eE]+)\s*,\s*v=([-+0-9.eE]+)\s*,\s*r=([-+0-9.eE]+)\)",
    re.MULTILINE,
)
_REG_OFFSET = re.compile(r"reg_offset_int\s*=\s*(\d+)")


def command_name(code: int) -> str:
    try:
        return Command(code).name
    except ValueError:
        return f"CMD_{code}"


@dataclass(frozen=True)
class PathEntry:
    """One injected path line: ``movel(p[...], a=, v=, r=)`` (pose) or ``movej([...], ...)`` (joints)."""

    kind: str
    target: tuple[float, ...]
    accel: float
    speed: float
    blend_m: float


def parse_path(script: str) -> list[PathEntry]:
    """The path lines the client injected (lines with literal numbers only; the script's own
    ``movel(move_p, ...)`` calls use variables and do not match)."""
    entries = []
    for kind, _p, values, a, v, r in _PATH_LINE.findall(script):
        target = tuple(float(x) for x in values.split(","))
        entries.append(PathEntry(kind, target, float(a), float(v), float(r)))
    return entries


class ControlScript:
    """The running control script: reads input registers each cycle, moves the arm, writes outputs."""

    def __init__(self, arm: SimulatedArm, on_protective_stop: Callable[[str], None]) -> None:
        self.arm = arm
        self._on_protective_stop = on_protective_stop
        self.running = False
        self.paused = False
        self.error = ""
        self.uploads = 0
        self.out_int = [0] * 48
        self.out_double = [0.0] * 48
        self.reg_offset = 0
        self.path: list[PathEntry] = []
        self.watchdog_min_hz = 0.0
        self.watchdog_tripped = False
        self._watchdog_last_s = 0.0
        self._executing = False
        self._pending: Callable[[], bool] | None = None
        self._async_motion: Motion | None = None
        self._async_progress = -1
        self._async_writes = 0
        self._async_op_id = 0
        self._servo_key: tuple | None = None
        # the program's TCP offset ([x, y, z, rx, ry, rz] from the flange); ``tcp_locked`` emulates a
        # controller whose installation keeps its own TCP whatever set_tcp asks (for the mismatch test)
        self.tcp_offset = [0.0] * 6
        self.tcp_locked = False

    # -- program lifecycle -------------------------------------------------------------------------
    def load(self, script: str, now_s: float) -> None:
        """A new program arrived on the script port: it replaces the running one."""
        m = _REG_OFFSET.search(script)
        self.reg_offset = int(m.group(1)) if m else 0
        self.path = parse_path(script)
        self.running = True
        self.paused = False
        self.error = ""
        self.uploads += 1
        self.watchdog_min_hz = 0.0
        self._watchdog_last_s = now_s
        self._executing = False
        self._pending = None
        self._async_motion = None
        self._servo_key = None
        self._write_async(-1)
        self._set_out_int(0, 0)

    def terminate(self, reason: str) -> None:
        """The program ends (stopScript, watchdog, script error, safety stop); the arm decelerates."""
        was_active = self.running or self.paused
        self.running = False
        self.paused = False
        if not was_active:
            return
        self.error = reason
        self._pending = None
        self._async_motion = None
        self.watchdog_min_hz = 0.0
        if not self.arm.idle or self.arm.moving:
            self.arm.stop(PROGRAM_STOP_DECEL_RADPS2, linear=False)

    def pause(self, reason: str) -> None:
        """A protective stop pauses the program where it is (the arm has already halted)."""
        if self.running:
            self.running = False
            self.paused = True
            self.error = reason
            self._pending = None
            self._async_motion = None
            self.watchdog_min_hz = 0.0

    def resume(self, now_s: float) -> bool:
        """Dashboard ``play`` after a pause: the program continues and answers ready again."""
        if not self.paused:
            return False
        self.paused = False
        self.running = True
        self.error = ""
        self._executing = False
        self._watchdog_last_s = now_s
        return True

    def note_input(self, names: list[str], now_s: float) -> None:
        """An input package arrived; writing the command register is what feeds the watchdog."""
        if f"input_int_register_{self.reg_offset}" in names:
            self._watchdog_last_s = now_s

    # -- registers ---------------------------------------------------------------------------------
    def _int(self, regs: dict, index: int) -> int:
        return int(regs.get(f"input_int_register_{index + self.reg_offset}", 0))

    def _doubles(self, regs: dict, first: int, count: int) -> np.ndarray:
        return np.array([float(regs.get(f"input_double_register_{i + self.reg_offset}", 0.0))
                         for i in range(first, first + count)])

    def _set_out_int(self, index: int, value: int) -> None:
        self.out_int[index + self.reg_offset] = int(value)

    def _write_async(self, value: int) -> None:
        """The status word layout of the script's ``write_async_progress_register``."""
        self._async_writes = (self._async_writes + 1) % 128
        if value == 0:
            self._async_op_id = (self._async_op_id + 1) % 128
        word = self._async_writes * 65536 + self._async_op_id * 16777216
        if value >= 0:
            word += (value & 0x7FFF) + 32768
        self._async_progress = value
        self._set_out_int(2, word)

    # -- the main loop ------------------------------------------------------------------------------
    def tick(self, now_s: float, regs: dict) -> None:
        if not self.running:
            return
        if self.watchdog_min_hz > 0 and now_s - self._watchdog_last_s > 1.0 / self.watchdog_min_hz:
            self.watchdog_tripped = True
            self.terminate(f"RTDE watchdog: input_int_register_{self.reg_offset} not updated for "
                           f"{now_s - self._watchdog_last_s:.3f} s (minimum {self.watchdog_min_hz:g} Hz)")
            return
        self._update_async()
        if self._pending is not None:
            if self._pending():
                self._pending = None
                self._set_out_int(0, DONE_WITH_COMMAND)
            return
        cmd = self._int(regs, 0)
        try:
            if cmd in REALTIME_COMMANDS:
                self._realtime(cmd, regs)
                self._set_out_int(0, READY_FOR_COMMAND)
            elif cmd == Command.NO_CMD:
                self._executing = False
                self._set_out_int(0, READY_FOR_COMMAND)
            elif not self._executing:
                self._executing = True
                self._run(cmd, regs, now_s)
        except InverseKinematicsError as err:
            self.terminate(str(err))

    def motion_failed(self, err: InverseKinematicsError) -> None:
        """The arm could not continue a move (IK failure): a real script stops with a runtime error."""
        self.terminate(str(err))

    def _update_async(self) -> None:
        if self._async_motion is None:
            return
        if self.arm.motion is not self._async_motion:
            self._async_motion = None
            self._write_async(-1)
        elif (isinstance(self._async_motion, CartesianPathMotion)
              and self._async_motion.segment != self._async_progress):
            self._write_async(self._async_motion.segment)

    def _done(self) -> None:
        self._set_out_int(0, DONE_WITH_COMMAND)

    def _start_move(self, motion: Motion, asynchronous: bool) -> None:
        self.arm.start(motion)
        if asynchronous:
            self._async_motion = motion
            self._write_async(0)
            self._done()
        else:
            self._pending = lambda: self.arm.motion is not motion

    def _ik(self, pose6: np.ndarray, what: str) -> np.ndarray:
        q = self.arm.model.ik(pose_matrix(pose6), self.arm.q)
        if q is None:
            where = np.round(pose6, 4).tolist()
            raise InverseKinematicsError(f"{what}: get_inverse_kin found no solution for {where}")
        return q

    def _run(self, cmd: int, regs: dict, now_s: float) -> None:
        arm = self.arm
        if cmd in (Command.MOVEJ, Command.MOVEJ_IK):
            args = self._doubles(regs, 0, 8)
            goal = args[:6] if cmd == Command.MOVEJ else self._ik(args[:6], "moveJ_IK")
            self._start_move(JointMotion(arm.q, goal, args[6], args[7]), bool(self._int(regs, 1)))
        elif cmd in (Command.MOVEL, Command.MOVEL_FK):
            args = self._doubles(regs, 0, 8)
            goal = pose_matrix(args[:6]) if cmd == Command.MOVEL else arm.model.fk(args[:6])
            self._start_move(CartesianPathMotion(arm.tcp, [goal], args[6], args[7]), bool(self._int(regs, 1)))
        elif cmd == Command.MOVE_PATH:
            self._move_path(bool(self._int(regs, 1)))
        elif cmd in (Command.SERVO_STOP, Command.SPEED_STOP):
            self._servo_key = None
            arm.stop(float(self._doubles(regs, 0, 1)[0]), linear=True)
            self._pending = lambda: arm.motion is None
        elif cmd in (Command.STOPL, Command.STOPJ):
            if self._async_motion is not None:
                self._async_motion = None
                self._write_async(-1)
            arm.stop(float(self._doubles(regs, 0, 1)[0]), linear=cmd == Command.STOPL)
            if self._int(regs, 1):
                self._done()
            else:
                self._pending = lambda: arm.motion is None
        elif cmd == Command.SET_WATCHDOG:
            self.watchdog_min_hz = float(self._doubles(regs, 0, 1)[0])
            self._watchdog_last_s = now_s
            self._done()
        elif cmd == Command.SET_TCP:
            if not self.tcp_locked:
                self.tcp_offset = [float(v) for v in self._doubles(regs, 0, 6)]
            self._done()
        elif cmd == Command.GET_TCP_OFFSET:
            for k, v in enumerate(self.tcp_offset):
                self.out_double[k + self.reg_offset] = v
            self._done()
        elif cmd == Command.PROTECTIVE_STOP:
            self._on_protective_stop("protective stop triggered by the client (triggerProtectiveStop)")
        elif cmd == Command.STOP_SCRIPT:
            self.terminate("program stopped by the client (stopScript)")
        elif cmd in NO_EFFECT_COMMANDS:
            self._done()
        else:
            self.terminate(f"the fake UR controller does not emulate command {cmd} ({command_name(cmd)})")

    def _move_path(self, asynchronous: bool) -> None:
        if not self.path:
            self.terminate("MOVE_PATH without a path injected into the control script")
            return
        if any(e.kind != "movel" for e in self.path):
            self.terminate("the fake UR controller emulates movel paths only (movej entries found)")
            return
        targets = [pose_matrix(e.target) for e in self.path]
        first = self.path[0]
        self._start_move(CartesianPathMotion(self.arm.tcp, targets, first.speed, first.accel), asynchronous)

    def _realtime(self, cmd: int, regs: dict) -> None:
        arm = self.arm
        if cmd in (Command.SERVOL, Command.SERVOJ):
            args = self._doubles(regs, 0, 11)
            lookahead, gain = args[9], args[10]
            key = (cmd, *args[:6].tolist(), lookahead, gain)
            if key == self._servo_key and isinstance(arm.motion, ServoMotion):
                return
            target = self._ik(args[:6], "servoL") if cmd == Command.SERVOL else args[:6]
            time_constant = lookahead * SERVO_GAIN_REFERENCE / max(gain, 1.0)
            if isinstance(arm.motion, ServoMotion):
                arm.motion.target_q, arm.motion.time_constant_s = target, time_constant
            else:
                arm.start(ServoMotion(target, time_constant))
            self._servo_key = key
        elif cmd == Command.SPEEDL:
            args = self._doubles(regs, 0, 7)
            if isinstance(arm.motion, ToolSpeedMotion):
                arm.motion.target, arm.motion.accel = args[:6], args[6]
            else:
                arm.start(ToolSpeedMotion(args[:6], args[6], arm.tcp_speed))
        elif cmd == Command.SPEEDJ:
            args = self._doubles(regs, 0, 7)
            if isinstance(arm.motion, JointSpeedMotion):
                arm.motion.target, arm.motion.accel = args[:6], args[6]
            else:
                arm.start(JointSpeedMotion(args[:6], args[6], arm.qd))
        else:
            self.terminate(f"the fake UR controller does not emulate command {cmd} ({command_name(cmd)})")
