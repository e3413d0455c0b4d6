"""``DryRunDriver``: rehearse a plan on the real robot connection without sending any motion.

It wraps a connected driver: faults, connection and the watchdog come from the real robot, but every
setpoint only moves a virtual arm that follows it perfectly (poses through the model's IK), so the
policy, the per-setpoint guard and the timing run exactly as they would, and nothing moves.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from spatial_trace_ros.robots.driver import MovePathCommand, RobotDriver, RobotState
from spatial_trace_ros.robots.model import RobotModel


class DryRunDriver(RobotDriver):
    def __init__(self, robot: RobotDriver, model: RobotModel) -> None:
        self.robot = robot
        self.model = model
        self.period_s = robot.period_s
        self.supports = robot.supports
        self.setpoints_absorbed = 0
        self._q: np.ndarray | None = None
        self._path: list[np.ndarray] = []

    def connect(self) -> None:
        """The wrapped driver is connected by its owner; the virtual arm starts where the robot is."""
        self._q = None

    def disconnect(self) -> None:
        self._path = []

    def _virtual_q(self, real: RobotState) -> np.ndarray:
        if self._q is None:
            self._q = np.asarray(real.q, float).copy()
        return self._q

    def read_state(self) -> RobotState:
        real = self.robot.read_state()
        q = self._virtual_q(real)
        if self._path:  # a "move_path" advances one waypoint per period
            self._set_pose(self._path.pop(0))
            q = self._q
        return dataclasses.replace(real, q=q.copy(), tcp=self.model.fk(q), qd=np.zeros_like(q),
                                   moving=bool(self._path))

    def _set_pose(self, pose: np.ndarray) -> None:
        q = self.model.ik(pose, self._q)
        if q is not None:
            self._q = q

    def servo_pose(self, pose: np.ndarray, lookahead_s: float, gain: float) -> None:
        self.setpoints_absorbed += 1
        self._set_pose(np.asarray(pose, float))

    def servo_joints(self, q: np.ndarray) -> None:
        self.setpoints_absorbed += 1
        self._q = np.asarray(q, float).copy()

    def speed_tcp(self, twist: np.ndarray, accel_mps2: float) -> None:
        self.setpoints_absorbed += 1
        pose = self.model.fk(self._q)
        twist = np.asarray(twist, float)
        pose[:3, 3] += twist[:3] * self.period_s
        pose[:3, :3] = Rotation.from_rotvec(twist[3:] * self.period_s).as_matrix() @ pose[:3, :3]
        self._set_pose(pose)

    def move_path(self, command: MovePathCommand) -> None:
        """The virtual TCP walks the path at the commanded speed, one period per read_state."""
        self.setpoints_absorbed += 1
        poses = np.asarray(command.poses, float).reshape(-1, 4, 4)
        corners = np.vstack([self.model.fk(self._q)[None], poses])
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(corners[:, :3, 3], axis=0), axis=1))])
        step_m = max(command.speed_mps, 1e-6) * self.period_s
        self._path = []
        for s in [*np.arange(step_m, arc[-1], step_m), arc[-1]]:
            i = int(min(np.searchsorted(arc, s), len(corners) - 1))
            pose = corners[i].copy()
            pose[:3, 3] = [np.interp(s, arc, corners[:, k, 3]) for k in range(3)]
            self._path.append(pose)

    def stop(self) -> None:
        self._path = []

    def kick_watchdog(self) -> None:
        self.robot.kick_watchdog()
