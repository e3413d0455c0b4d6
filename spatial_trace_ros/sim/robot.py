"""``SimRobotDriver``: the simulated UR arm behind the ``RobotDriver`` contract (driver ``sim``).

The controller node, the execution loop and every control policy run unchanged against it. Commands
become joint targets for the arm's position servos, refined on every physics step:

- ``servo_joints``: the target is approached linearly over one control period, saturated at the
  joint speed limit (a real controller would fault; the sim clips and counts it);
- ``servo_pose``: the model's IK nearest the current target, then as ``servo_joints`` (lookahead and
  gain are not modelled: the sim's servos track tighter than a real one's);
- ``speed_tcp``: the twist ramps at the given acceleration and is integrated through the damped
  pseudo-inverse of the arm's Jacobian, until the next command or ``stop``;
- ``move_path``: the poses are followed at constant speed with trapezoidal start and end (blends
  pass through the waypoints).

Physics runs in real time on the world's thread, or, with ``real_time=False``, one control period
per ``wait_period`` as fast as the CPU allows. ``inject_fault`` raises a protective stop, an
emergency stop or a lost connection for tests; the arm then holds where it was.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.transform import Rotation, Slerp

from spatial_trace_ros.errors import ConfigError, RobotError
from spatial_trace_ros.robots.driver import DriverStats, MovePathCommand, RobotDriver, RobotState
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.sim.config import split_options
from spatial_trace_ros.sim.ur_arm import ARMS, arm_spec
from spatial_trace_ros.sim.world import World, shared_world

FaultKind = Literal["protective_stop", "emergency_stop", "disconnect"]
JACOBIAN_DAMPING = 0.01


class SimDriverOptions(BaseModel):
    """Settings of the simulated driver (the scene's settings belong to ``WorldConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    real_time: bool = Field(True, description="step physics at wall-clock pace; false: one period per wait_period")
    period_s: float = Field(
        0.0, ge=0.0, le=0.1, description="control period [s]; 0: the real arm's (ur5 0.008, ur5e 0.002)"
    )
    protective_stop_after_s: float = Field(
        0.0, ge=0.0, description="raise a protective stop this long after the first motion command [s]; 0: never"
    )
    stamp_clock: Literal["wall", "sim"] = Field(
        "wall", description="stamp states with wall time (as the sim camera's frames) or simulated time"
    )


class _PathMotion:
    """A ``move_path``: positions along the polyline by arc length, orientation slerped, timed by a
    trapezoidal speed profile."""

    def __init__(self, start: np.ndarray, command: MovePathCommand, t0_s: float) -> None:
        poses = np.concatenate([start[None], np.asarray(command.poses, float).reshape(-1, 4, 4)])
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1))])
        keep = np.concatenate([[True], np.diff(s) > 1e-9])
        self.poses, self.s = poses[keep], s[keep]
        self.length_m = float(self.s[-1])
        self.t0_s = t0_s
        v, a = command.speed_mps, command.accel_mps2
        if not (v > 0 and a > 0):
            raise RobotError(f"move_path needs positive speed and acceleration, got {v} m/s and {a} m/s^2")
        self.v_peak = min(v, float(np.sqrt(self.length_m * a)))
        self.t_acc = self.v_peak / a
        self.a = a
        cruise = self.length_m - a * self.t_acc**2
        self.duration_s = 2 * self.t_acc + (cruise / self.v_peak if self.v_peak > 0 else 0.0)
        self._slerp = Slerp(self.s, Rotation.from_matrix(self.poses[:, :3, :3])) if len(self.s) > 1 else None

    def distance_at(self, t_s: float) -> float:
        t = min(max(t_s - self.t0_s, 0.0), self.duration_s)
        if t < self.t_acc:
            return 0.5 * self.a * t**2
        if t > self.duration_s - self.t_acc:
            return self.length_m - 0.5 * self.a * (self.duration_s - t) ** 2
        return 0.5 * self.a * self.t_acc**2 + self.v_peak * (t - self.t_acc)

    def pose_at(self, t_s: float) -> np.ndarray:
        if self._slerp is None:
            return self.poses[-1]
        d = float(np.clip(self.distance_at(t_s), 0.0, self.length_m))
        out = np.eye(4)
        out[:3, 3] = [np.interp(d, self.s, self.poses[:, k, 3]) for k in range(3)]
        out[:3, :3] = self._slerp([d]).as_matrix()[0]
        return out

    def done(self, t_s: float) -> bool:
        return t_s - self.t0_s >= self.duration_s


class SimRobotDriver(RobotDriver):
    """Drives the shared simulated arm. Options: those of ``SimDriverOptions`` and ``WorldConfig``,
    or an explicit ``world``."""

    supports = frozenset({"servo_joints", "servo_pose", "speed_tcp", "move_path"})

    def __init__(self, model: RobotModel, world: World | None = None, **options: Any) -> None:
        if model.name not in ARMS:
            raise ConfigError(f"the simulation has no {model.name!r} arm; simulated robots: {', '.join(sorted(ARMS))}")
        if options.get("robot", model.name) != model.name:
            raise ConfigError(f"sim option robot={options['robot']!r} does not match the robot model {model.name!r}")
        world_config, own = split_options({**options, "robot": model.name}, SimDriverOptions, "sim driver")
        self.options: SimDriverOptions = own  # type: ignore[assignment]
        if world is not None and world.robot != model.name:
            raise ConfigError(f"the given world simulates a {world.robot}, not a {model.name}")
        self.model = model
        self.world = world if world is not None else shared_world(world_config)
        self.period_s = self.options.period_s or arm_spec(model.name).control_period_s
        steps = self.period_s / self.world.timestep_s
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(
                f"period_s={self.period_s} is not a whole number of physics steps ({self.world.timestep_s} s each)"
            )
        self.max_velocity_radps = np.asarray(model.max_velocity_radps, float)
        self.stats = DriverStats(extra={"saturated_commands": 0, "ignored_commands": 0})
        self._connected = False
        self._holding_real_time = False
        self._fault: str = ""  # "", a FaultKind, or "fault"
        self._fault_text = ""
        self._mode: Literal["hold", "servo", "speed", "path"] = "hold"
        self._q_cmd = self.world.joint_positions()
        self._qd_cmd = np.zeros(6)
        self._servo_from = self._servo_to = self._q_cmd.copy()
        self._servo_t0_s = 0.0
        self._twist_target = np.zeros(6)
        self._twist_now = np.zeros(6)
        self._accel = 1.0
        self._path: _PathMotion | None = None
        self._first_motion_s: float | None = None

    # -- connection ---------------------------------------------------------------------------------
    def connect(self) -> None:
        with self.world.lock:
            self.world.set_step_callback(self._control, self)
            self._connected = True
            self._fault = self._fault_text = ""
            self._hold_here()
        if self.options.real_time and not self._holding_real_time:
            self.world.acquire_real_time()
            self._holding_real_time = True

    def disconnect(self) -> None:
        with self.world.lock:
            if self._connected:
                self._hold_here()
            self._connected = False
            self.world.set_step_callback(None, self)
        if self._holding_real_time:
            self._holding_real_time = False
            self.world.release_real_time()

    def read_state(self) -> RobotState:
        with self.world.lock:
            connected = self._connected and self._fault != "disconnect"
            return RobotState(
                stamp_s=self.world.time_s if self.options.stamp_clock == "sim" else time.time(),
                q=self.world.joint_positions(),
                tcp=self.world.tool_pose(),
                connected=connected,
                ready=connected,
                protective_stop=self._fault == "protective_stop",
                emergency_stop=self._fault == "emergency_stop",
                moving=self._path is not None,
                fault=self._fault_text if self._fault == "fault" else "",
                qd=self.world.joint_velocities(),
            )

    # -- commands -----------------------------------------------------------------------------------
    def servo_joints(self, q: np.ndarray) -> None:
        target = self._checked(q, "servo_joints target", 6)
        with self.world.lock:
            if not self._accepting():
                return
            step = target - self._q_cmd
            ratio = float(np.max(np.abs(step) / (self.max_velocity_radps * self.period_s)))
            if ratio > 1.0:
                step = step / ratio
                self.stats.extra["saturated_commands"] += 1
            self._servo_from, self._servo_to = self._q_cmd.copy(), self._q_cmd + step
            self._servo_t0_s = self.world.time_s
            self._start_motion("servo")

    def servo_pose(self, pose: np.ndarray, lookahead_s: float, gain: float) -> None:
        pose = self._checked(pose, "servo_pose target", (4, 4))
        with self.world.lock:
            q_near = self._q_cmd.copy()
        q = self.model.ik(pose, q_near)
        if q is None:
            raise RobotError(
                f"servo_pose target at {np.round(pose[:3, 3], 3).tolist()} m is out of the {self.model.name}'s reach; "
                "nothing was sent"
            )
        self.servo_joints(q)

    def speed_tcp(self, twist: np.ndarray, accel_mps2: float) -> None:
        twist = self._checked(twist, "speed_tcp twist", 6)
        if not accel_mps2 > 0:
            raise RobotError(f"speed_tcp needs a positive acceleration, got {accel_mps2}")
        with self.world.lock:
            if not self._accepting():
                return
            if self._mode != "speed":
                self._twist_now = np.zeros(6)
            self._twist_target, self._accel = twist, float(accel_mps2)
            self._start_motion("speed")

    def move_path(self, command: MovePathCommand) -> None:
        self._checked(command.poses, "move_path poses", None)
        with self.world.lock:
            if not self._accepting():
                return
            self._path = _PathMotion(self.world.tool_pose(), command, self.world.time_s)
            self._start_motion("path")

    def stop(self) -> None:
        with self.world.lock:
            self._hold_here()

    def wait_period(self, token: float) -> None:
        """Real time: sleep out the period. Lockstep: advance physics by one period, no sleeping."""
        if self.options.real_time:
            super().wait_period(token)
        else:
            self.world.step(self.period_s)

    # -- fault injection (tests) ----------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind) -> None:
        """Make the simulated robot report a protective stop, an emergency stop or a lost connection;
        the arm holds where it is until ``clear_faults`` (or ``connect`` after a disconnect)."""
        if kind not in ("protective_stop", "emergency_stop", "disconnect"):
            raise ConfigError(f"unknown fault {kind!r}; available: disconnect, emergency_stop, protective_stop")
        with self.world.lock:
            self._latch(kind, "")

    def clear_faults(self) -> None:
        with self.world.lock:
            self._fault = self._fault_text = ""
            self._hold_here()

    # -- internals ----------------------------------------------------------------------------------
    @staticmethod
    def _checked(values: Any, what: str, shape: int | tuple[int, ...] | None) -> np.ndarray:
        arr = np.asarray(values, float)
        if shape is not None and arr.shape != (shape if isinstance(shape, tuple) else (shape,)):
            raise RobotError(f"{what} must have shape {shape}, got {arr.shape}; nothing was sent")
        if not np.all(np.isfinite(arr)):
            raise RobotError(f"{what} contains NaN or inf; nothing was sent")
        return arr

    def _accepting(self) -> bool:
        """Like a real controller, a robot that is stopped or unreachable ignores motion commands."""
        if self._connected and not self._fault:
            return True
        self.stats.extra["ignored_commands"] += 1
        return False

    def _start_motion(self, mode: Literal["servo", "speed", "path"]) -> None:
        if mode != "path":
            self._path = None
        self._mode = mode
        if self._first_motion_s is None:
            self._first_motion_s = self.world.time_s

    def _hold_here(self) -> None:
        self._q_cmd = self.world.joint_positions()
        self._qd_cmd = np.zeros(6)
        self._twist_now = np.zeros(6)
        self._path = None
        self._mode = "hold"
        self.world.command(self._q_cmd, self._qd_cmd)

    def _latch(self, kind: str, text: str) -> None:
        self._fault, self._fault_text = kind, text
        self._hold_here()

    def _control(self, t_s: float, dt_s: float) -> None:
        """Per physics step, under the world's lock: turn the active command into servo targets."""
        after = self.options.protective_stop_after_s
        if after > 0 and not self._fault and self._first_motion_s is not None and t_s - self._first_motion_s >= after:
            self._latch("protective_stop", "")
        if self._fault or self._mode == "hold":
            return
        if self._mode == "servo":
            elapsed = t_s - self._servo_t0_s
            frac = min(1.0, (elapsed + dt_s) / self.period_s)
            q = self._servo_from + frac * (self._servo_to - self._servo_from)
            in_segment = elapsed < self.period_s - 1e-9
            qd = (self._servo_to - self._servo_from) / self.period_s if in_segment else np.zeros(6)
        elif self._mode == "speed":
            qd = self._speed_step(dt_s)
            q = self._q_cmd + qd * dt_s
        else:
            path = self._path
            q = self.model.ik(path.pose_at(t_s + dt_s), self._q_cmd)
            if q is None:
                self._latch("fault", "move_path left the arm's reach mid-motion; the arm stopped")
                return
            qd = (q - self._q_cmd) / dt_s
            if path.done(t_s + dt_s):
                self._path, self._mode, qd = None, "hold", np.zeros(6)
        self._q_cmd, self._qd_cmd = q, qd
        self.world.command(q, qd)

    def _speed_step(self, dt_s: float) -> np.ndarray:
        """Joint velocities for this step of a speedL: ramp the twist, then map it through the Jacobian."""
        delta = self._twist_target - self._twist_now
        for part in (slice(0, 3), slice(3, 6)):
            norm = float(np.linalg.norm(delta[part]))
            limit = self._accel * dt_s
            if norm > limit:
                delta[part] *= limit / norm
        self._twist_now = self._twist_now + delta
        J = self.world.tool_jacobian()
        qd = J.T @ np.linalg.solve(J @ J.T + JACOBIAN_DAMPING**2 * np.eye(6), self._twist_now)
        ratio = float(np.max(np.abs(qd) / self.max_velocity_radps))
        return qd / ratio if ratio > 1.0 else qd
