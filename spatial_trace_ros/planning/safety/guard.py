"""The run-time setpoint guard: every setpoint kind gets the plan's full check before it is sent.

Servo poses, joint setpoints, speed commands and whole moveL paths all end in the same question: which
joint configuration will the arm take, and is that configuration safe? A pose is solved (IK) near the
last commanded joints, a speed command is followed ``twist_horizon_s`` ahead and solved near the
measured joints, a path is solved waypoint by waypoint from the measured joints; then the joint
solution goes through the same ``WaypointChecks`` as the plan (limits, singularity, self-collision,
links against table and zones, the TCP's way through zones), plus the step and speed limits (with
the configured tracking tolerance). With a ``tool`` (``planning.tool_geometry.ToolGeometry``, built
from the tool description) the tool, and the ``held`` object while one is held, are checked along the
way from the previous setpoint to the new one (swept): table, workspace, zones, the arm's links.
The measured state is checked each period too: the TCP where it really is, and its distance from
the plan's path (``max_tracking_error_m``).

Every method returns ``None`` when safe, else the reason. The cost per period is measured by
bench/bench_ur_controller.py (target: under 10 % of a 2 ms period).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from spatial_trace_ros.planning.plan import SafetyReason
from spatial_trace_ros.planning.safety.codes import SafetyCode, reason, refusals, xyz
from spatial_trace_ros.planning.safety.configuration import WaypointChecks
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.robots.model import RobotModel

if TYPE_CHECKING:  # planning.tool_geometry imports this package: no import at run time
    from spatial_trace_ros.planning.tool_geometry import HeldEnvelope, ToolGeometry


class SetpointGuard:
    """Run-time check of each setpoint, with the same limits as the plan (speed limits get the
    configured tracking tolerance). ``last_solution`` holds the joints of the last pose target that
    passed ``check_pose`` (the seed for the next one). ``tool``: the tool on the flange (None: the bare
    flange); ``held``: the envelope of the object it holds, set at a grasp and cleared at the release
    (``robots.task_runner`` does both)."""

    def __init__(self, config: SafetyConfig, model: RobotModel, tool: ToolGeometry | None = None) -> None:
        self.config = config
        self.model = model
        self.checks = WaypointChecks(config, model)
        self.tool = tool
        self.held: HeldEnvelope | None = None
        self._speed_factor = 1.0 + config.runtime.speed_tolerance
        self._qd_max = model.max_velocity_radps * config.motion.joint_speed_fraction * self._speed_factor
        self.last_solution: np.ndarray | None = None

    # -- shared pieces -----------------------------------------------------------------------------------
    @staticmethod
    def _timing_reason(dt_s: float) -> SafetyReason | None:
        if not (np.isfinite(dt_s) and dt_s > 0):
            return reason(SafetyCode.BAD_TIMING, f"setpoint period {dt_s} s is not positive; stopping")
        return None

    def _tcp_motion_reason(self, prev: np.ndarray, target: np.ndarray, dt_s: float) -> SafetyReason | None:
        m = self.config.motion
        step = float(np.linalg.norm(target[:3, 3] - prev[:3, 3]))
        if step > m.max_step_m:
            return reason(SafetyCode.STEP_TOO_LARGE, f"TCP step {step:.3f} m is above {m.max_step_m:.3f} m; stopping",
                          value=step, limit=m.max_step_m)
        if step / dt_s > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"TCP speed {step / dt_s:.3f} m/s is above "
                          f"{m.max_tcp_speed_mps:.3f} m/s; stopping", value=step / dt_s, limit=m.max_tcp_speed_mps)
        ang = _rotation_angle(prev, target) / dt_s
        if ang > m.max_tool_angular_speed_radps * self._speed_factor:
            return reason(SafetyCode.TOOL_ANGULAR_SPEED, f"tool rotation {ang:.3f} rad/s is above "
                          f"{m.max_tool_angular_speed_radps:.3f} rad/s; stopping", value=ang,
                          limit=m.max_tool_angular_speed_radps)
        return None

    def _joint_motion_reason(self, q_from: np.ndarray, q: np.ndarray, dt_s: float, what: str) -> SafetyReason | None:
        m, model = self.config.motion, self.model
        step = np.abs(q - q_from)
        j = int(np.argmax(step))
        if step[j] > m.max_joint_step_rad:
            return reason(SafetyCode.JOINT_JUMP, f"joint {model.joint_names[j]} step {step[j]:.3f} rad {what} is above "
                          f"{m.max_joint_step_rad:.3f} rad (a configuration flip); stopping",
                          value=step[j], limit=m.max_joint_step_rad)
        over = step / dt_s > self._qd_max
        if np.any(over):
            j = int(np.argmax(over))
            return reason(SafetyCode.JOINT_SPEED, f"joint {model.joint_names[j]} would move at "
                          f"{step[j] / dt_s:.3f} rad/s, above {self._qd_max[j]:.3f} rad/s; stopping",
                          value=step[j] / dt_s, limit=self._qd_max[j])
        return None

    def _near_measured_reason(self, q: np.ndarray, q_measured: np.ndarray | None) -> SafetyReason | None:
        """The solution must be the configuration the arm is in, not another branch of the IK."""
        if q_measured is None:
            return None
        limit = self.config.motion.max_joint_step_rad
        gap = np.abs(q - np.asarray(q_measured, float))
        j = int(np.argmax(gap))
        if not gap[j] <= limit:
            return reason(SafetyCode.JOINT_JUMP, f"the target needs joint {self.model.joint_names[j]} "
                          f"{gap[j]:.3f} rad away from where it is measured (limit {limit:.3f} rad): another arm "
                          "configuration or a lost track; stopping", value=gap[j], limit=limit)
        return None

    def _configuration_reason(self, poses: np.ndarray, joints: np.ndarray, start: np.ndarray,
                              q_start: np.ndarray) -> SafetyReason | None:
        """The full check of ``poses`` (N, 4, 4) at ``joints`` (N, dof) reached from pose ``start`` at
        ``q_start``: the arm (``WaypointChecks``), then the tool and the held object along the way."""
        found, _ = self.checks.check(poses, joints, start[:3, 3])
        bad = refusals(found)
        if not bad and self.tool is not None and not (
                len(poses) == 1 and np.all(np.isfinite(joints))
                and self.tool.step_clear(start, poses[0], joints[0], self.held)):
            way = np.concatenate([start[None], poses])
            q_way = np.vstack([q_start[None], joints])
            held = np.ones(len(way), bool) if self.held is not None else None
            bad = refusals(self.tool.check_path(way, q_way if np.all(np.isfinite(q_way)) else None, held, self.held))
        if not bad:
            return None
        return reason(SafetyCode(bad[0].code), f"{bad[0].message}; stopping", value=bad[0].value, limit=bad[0].limit)

    # -- the setpoint kinds ------------------------------------------------------------------------------
    def check_pose(self, prev_tcp: np.ndarray, target_tcp: np.ndarray, dt_s: float, q_near: np.ndarray,
                   q_measured: np.ndarray | None = None) -> SafetyReason | None:
        """A TCP pose target (base_T_tool) reached from ``prev_tcp`` in ``dt_s``: solved near ``q_near``
        (the last commanded joints) and checked in full; the solution is kept in ``last_solution``."""
        prev, target = np.asarray(prev_tcp, float), np.asarray(target_tcp, float)
        q_near = np.asarray(q_near, float)
        if not (np.all(np.isfinite(prev)) and np.all(np.isfinite(target)) and np.all(np.isfinite(q_near))):
            return reason(SafetyCode.NON_FINITE, "setpoint pose contains NaN or infinity; stopping")
        bad = self._timing_reason(dt_s) or self._tcp_motion_reason(prev, target, dt_s)
        if bad:
            return bad
        q = self.model.ik(target, q_near)
        if q is None:
            return reason(SafetyCode.UNREACHABLE, f"target TCP {xyz(target[:3, 3])} cannot be reached; stopping")
        bad = (self._joint_motion_reason(q_near, q, dt_s, "between setpoints")
               or self._near_measured_reason(q, q_measured)
               or self._configuration_reason(target[None], q[None], prev, q_near))
        if bad is None:
            self.last_solution = q
        return bad

    def check_joints(self, q_prev: np.ndarray, q: np.ndarray, dt_s: float,
                     q_measured: np.ndarray | None = None) -> SafetyReason | None:
        """A joint target reached from ``q_prev`` in ``dt_s``: limits, speeds, steps, where the TCP and
        the arm go (and the TCP's way there)."""
        q_prev, q = np.asarray(q_prev, float), np.asarray(q, float)
        if not (np.all(np.isfinite(q_prev)) and np.all(np.isfinite(q))):
            return reason(SafetyCode.NON_FINITE, "joint setpoint contains NaN or infinity; stopping")
        bad = (self._timing_reason(dt_s) or self._joint_motion_reason(q_prev, q, dt_s, "between setpoints")
               or self._near_measured_reason(q, q_measured))
        if bad:
            return bad
        m = self.config.motion
        poses = self.model.fk_many(np.stack([q_prev, q]))
        speed = float(np.linalg.norm(poses[1, :3, 3] - poses[0, :3, 3])) / dt_s
        if speed > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"TCP speed {speed:.3f} m/s is above {m.max_tcp_speed_mps:.3f} m/s; "
                          "stopping", value=speed, limit=m.max_tcp_speed_mps)
        return self._configuration_reason(poses[1:], q[None], poses[0], q_prev)

    def check_twist(self, tcp: np.ndarray, twist: np.ndarray, q_measured: np.ndarray) -> SafetyReason | None:
        """A TCP velocity command (vx, vy, vz, wx, wy, wz in the base frame) from pose ``tcp`` at joints
        ``q_measured``: within the speed limits, and the pose it leads to if held for the configured
        horizon is checked in full (solved near the measured joints)."""
        tcp, twist, q_measured = np.asarray(tcp, float), np.asarray(twist, float), np.asarray(q_measured, float)
        if twist.shape != (6,) or not (np.all(np.isfinite(tcp)) and np.all(np.isfinite(twist))
                                       and np.all(np.isfinite(q_measured))):
            return reason(SafetyCode.NON_FINITE, "speed command must be 6 finite numbers; stopping")
        m = self.config.motion
        v, w = float(np.linalg.norm(twist[:3])), float(np.linalg.norm(twist[3:]))
        if v > m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"commanded TCP speed {v:.3f} m/s is above "
                          f"{m.max_tcp_speed_mps:.3f} m/s; stopping", value=v, limit=m.max_tcp_speed_mps)
        if w > m.max_tool_angular_speed_radps * self._speed_factor:
            return reason(SafetyCode.TOOL_ANGULAR_SPEED, f"commanded tool rotation {w:.3f} rad/s is above "
                          f"{m.max_tool_angular_speed_radps:.3f} rad/s; stopping", value=w,
                          limit=m.max_tool_angular_speed_radps)
        horizon = self.config.runtime.twist_horizon_s
        ahead = tcp.copy()
        ahead[:3, 3] += twist[:3] * horizon
        ahead[:3, :3] = _rotation_matrix(twist[3:] * horizon) @ tcp[:3, :3]
        q = self.model.ik(ahead, q_measured)
        if q is None:
            return reason(SafetyCode.UNREACHABLE, f"the speed command leads the TCP to {xyz(ahead[:3, 3])}, which "
                          "cannot be reached; stopping")
        return (self._joint_motion_reason(q_measured, q, horizon, f"within {horizon:g} s")
                or self._configuration_reason(ahead[None], q[None], tcp, q_measured))

    def check_path(self, start_tcp: np.ndarray, poses: np.ndarray, speed_mps: float,
                   q_measured: np.ndarray) -> SafetyReason | None:
        """A whole path (N, 4, 4) the robot will run on its own at ``speed_mps`` from ``start_tcp``:
        every waypoint solved from the measured joints without a branch change and checked in full, the
        way between waypoints through the zones, the TCP and joint speeds along it."""
        start, q_measured = np.asarray(start_tcp, float), np.asarray(q_measured, float)
        poses = np.asarray(poses, float).reshape(-1, 4, 4)
        if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(start)) and np.isfinite(speed_mps)):
            return reason(SafetyCode.NON_FINITE, "path contains NaN or infinity; stopping")
        m = self.config.motion
        if not 0 < speed_mps <= m.max_tcp_speed_mps * self._speed_factor:
            return reason(SafetyCode.TCP_SPEED, f"path speed {speed_mps:.3f} m/s is not within (0, "
                          f"{m.max_tcp_speed_mps:.3f}] m/s; stopping", value=speed_mps, limit=m.max_tcp_speed_mps)
        joints = self.model.ik_path(poses, q_measured)
        corners = np.vstack([start[None, :3, 3], poses[:, :3, 3]])
        seconds = np.maximum(np.linalg.norm(np.diff(corners, axis=0), axis=1) / speed_mps, 1e-9)
        if np.all(np.isfinite(joints)):
            steps = np.abs(np.diff(np.vstack([q_measured[None], joints]), axis=0))
            qd = steps / seconds[:, None]
            over = qd > self._qd_max
            if np.any(over):
                k, j = np.argwhere(over)[0]
                return reason(SafetyCode.JOINT_SPEED, f"joint {self.model.joint_names[j]} would move at "
                              f"{qd[k, j]:.3f} rad/s towards path waypoint #{k}, above {self._qd_max[j]:.3f} rad/s; "
                              "stopping", waypoint=int(k), value=qd[k, j], limit=self._qd_max[j])
        bad = self._configuration_reason(poses, joints, start, q_measured)
        if bad is None and np.all(np.isfinite(joints[0])):
            bad = self._near_measured_reason(joints[0], q_measured)
        return bad

    # -- the measured state ------------------------------------------------------------------------------
    def check_measured(self, tcp: np.ndarray) -> SafetyReason | None:
        """Where the TCP really is: inside the workspace, out of every zone, above the table."""
        tcp = np.asarray(tcp, float)
        if not np.all(np.isfinite(tcp)):
            return reason(SafetyCode.NON_FINITE, "the robot reports a TCP pose with NaN or infinity; stopping")
        bad = refusals(self.checks.positions(tcp[None, :3, 3]))
        if not bad:
            return None
        return reason(SafetyCode(bad[0].code), f"the measured TCP: {bad[0].message}; stopping",
                      value=bad[0].value, limit=bad[0].limit)

    def check_tracking(self, error_m: float) -> SafetyReason | None:
        """The measured TCP's distance from the plan's path."""
        limit = self.config.runtime.max_tracking_error_m
        if not error_m <= limit:
            return reason(SafetyCode.TRACKING_ERROR, f"the TCP is {error_m:.3f} m away from the plan's path (limit "
                          f"{limit:.3f} m): the arm does not follow (collision, payload, controller); stopping",
                          value=error_m, limit=limit)
        return None


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """The angle [rad] between the rotations of poses ``a`` and ``b`` (as ``timing.rotation_angles``)."""
    cos = (float(np.einsum("ij,ij", a[:3, :3], b[:3, :3])) - 1.0) / 2.0
    return math.acos(min(max(cos, -1.0), 1.0))


def _rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues), without scipy's per-call overhead."""
    angle = float(np.linalg.norm(rotvec))
    if angle == 0.0:
        return np.eye(3)
    x, y, z = (rotvec / angle).tolist()
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)
