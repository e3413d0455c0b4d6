"""One MuJoCo model and data for the whole cell, shared by the simulated camera and robot.

The camera renders and the robot driver commands the same ``World``, so an eye-in-hand camera sees
from where the arm actually is, and frames show the arm moving. Every access to the data goes through
the world's lock; physics advances either in lockstep (a caller asks for ``step(duration_s)``) or in
real time on a background thread while anyone holds ``acquire_real_time()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.sim.config import WorldConfig
from spatial_trace_ros.sim.gl_backend import select_gl_backend
from spatial_trace_ros.sim.mjcf import CAMERA_NAME, MUJOCO_T_OPTICAL, body_name, build_world_xml
from spatial_trace_ros.sim.scene import SceneSpec
from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD, JOINT_NAMES, TOOL_SITE

select_gl_backend()
import mujoco  # noqa: E402  (MUJOCO_GL must be set first)

__all__ = ["World", "WorldConfig", "shared_world"]

StepCallback = Callable[[float, float], None]
MAX_CATCH_UP_S = 0.1


class World:
    """The cell's MuJoCo model and data behind one lock."""

    def __init__(self, config: WorldConfig | None = None, scene: SceneSpec | None = None, xml: str | None = None,
                 assets: dict[str, bytes] | None = None) -> None:
        """``xml`` and ``assets`` (file name -> bytes, e.g. a texture) replace the cell's own MJCF: a caller
        that adds to the cell (the calibration board) builds on ``build_world_xml`` and passes the result."""
        self.config = config or WorldConfig()
        self.scene = scene or self.config.build_scene()
        self.robot = self.config.robot
        # a caller's own MJCF (the calibration cell) says itself what hangs on the flange
        self.tool = self.config.build_tool() if xml is None else None
        self.xml = xml if xml is not None else build_world_xml(self.scene, self.robot, self.tool)
        self.model = mujoco.MjModel.from_xml_string(self.xml, assets=assets)
        self._data = mujoco.MjData(self.model)
        self.lock = threading.RLock()
        self.timestep_s = float(self.model.opt.timestep)
        self._qpos_adr = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._dof_adr = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self._pos_act = np.array([self.model.actuator(f"{n}_pos").id for n in JOINT_NAMES])
        self._vel_act = np.array([self.model.actuator(f"{n}_vel").id for n in JOINT_NAMES])
        self._site = self.model.site(TOOL_SITE).id
        free = [self.model.joint(f"{body_name(o.name)}_free") for o in self.scene.objects]
        self._free_adr = [int(j.qposadr[0]) for j in free]
        self._free_dof = [int(j.dofadr[0]) for j in free]
        self.camera_id = self.model.camera(CAMERA_NAME).id
        self._callback: StepCallback | None = None
        self._callback_owner: object | None = None
        self._rt_users = 0
        self._rt_thread: threading.Thread | None = None
        self._rt_stop = threading.Event()
        self.real_time_overruns = 0
        home = self.config.home_q_rad or HOME_Q_RAD[self.robot]
        if len(home) != len(JOINT_NAMES):
            raise ConfigError(f"home_q_rad needs {len(JOINT_NAMES)} joint positions, got {len(home)}")
        self.set_joint_positions(np.asarray(home, float))

    # -- state ------------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        with self.lock:
            return float(self._data.time)

    def joint_positions(self) -> np.ndarray:
        with self.lock:
            return self._data.qpos[self._qpos_adr].copy()

    def joint_velocities(self) -> np.ndarray:
        with self.lock:
            return self._data.qvel[self._dof_adr].copy()

    def tool_pose(self) -> np.ndarray:
        """``base_T_tool0`` (4x4) at the current joint positions."""
        with self.lock:
            out = np.eye(4)
            out[:3, :3] = self._data.site_xmat[self._site].reshape(3, 3)
            out[:3, 3] = self._data.site_xpos[self._site]
            return out

    def tool_jacobian(self) -> np.ndarray:
        """6 x 6 geometric Jacobian of ``tool0`` in the base frame (rows vx vy vz wx wy wz)."""
        with self.lock:
            jacp = np.zeros((3, self.model.nv))
            jacr = np.zeros((3, self.model.nv))
            mujoco.mj_jacSite(self.model, self._data, jacp, jacr, self._site)
            return np.vstack([jacp, jacr])[:, self._dof_adr]

    def camera_pose(self) -> np.ndarray:
        """``base_T_camera_color_optical_frame`` (4x4) now (it moves with the arm when eye-in-hand)."""
        with self.lock:
            out = np.eye(4)
            out[:3, :3] = self._data.cam_xmat[self.camera_id].reshape(3, 3) @ MUJOCO_T_OPTICAL
            out[:3, 3] = self._data.cam_xpos[self.camera_id]
            return out

    @property
    def data(self) -> Any:
        """The ``mujoco.MjData``; hold ``lock`` while reading or writing it."""
        return self._data

    def object_pose(self, name: str) -> np.ndarray:
        """``base_T_object`` (4x4) of the scene object ``name`` ("<colour> <kind>") as physics has it now."""
        body = self.model.body(body_name(name)).id
        with self.lock:
            out = np.eye(4)
            out[:3, :3] = self._data.xmat[body].reshape(3, 3)
            out[:3, 3] = self._data.xpos[body]
            return out

    def object_positions(self) -> dict[str, np.ndarray]:
        """Where every scene object's centre is now (base frame, metres)."""
        return {o.name: self.object_pose(o.name)[:3, 3] for o in self.scene.objects}

    def object_poses(self) -> np.ndarray:
        """Every scene object's pose (N, 7: x, y, z, qw, qx, qy, qz) in the scene's order."""
        with self.lock:
            return np.array([self._data.qpos[a:a + 7] for a in self._free_adr])

    def show_object_poses(self, poses: np.ndarray) -> None:
        """Put the objects at ``poses`` (N, 7) at rest: a rendering copy of the cell follows the one the
        robot runs in (the demo's camera process); physics in this copy is not stepped for them."""
        poses = np.asarray(poses, float).reshape(-1, 7)
        if len(poses) != len(self._free_adr):
            raise ConfigError(f"{len(poses)} object poses for a scene of {len(self._free_adr)} objects")
        with self.lock:
            for a, d, pose in zip(self._free_adr, self._free_dof, poses, strict=True):
                self._data.qpos[a:a + 7] = pose
                self._data.qvel[d:d + 6] = 0.0
            mujoco.mj_forward(self.model, self._data)

    def set_joint_positions(self, q: np.ndarray) -> None:
        """Place the arm at ``q`` at rest and hold it there (no dynamics in between)."""
        q = np.asarray(q, float)
        with self.lock:
            self._data.qpos[self._qpos_adr] = q
            self._data.qvel[self._dof_adr] = 0.0
            self.command(q, np.zeros(len(q)))
            mujoco.mj_forward(self.model, self._data)

    def command(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Joint position targets and velocity feed-forward for the arm's servos."""
        with self.lock:
            self._data.ctrl[self._pos_act] = q
            self._data.ctrl[self._vel_act] = qd

    # -- stepping ---------------------------------------------------------------------------------
    def set_step_callback(self, callback: StepCallback | None, owner: object) -> None:
        """Install the robot driver's per-step controller (``callback(sim_time_s, dt_s)``); one at a time."""
        with self.lock:
            if callback is not None and self._callback_owner not in (None, owner):
                raise ConfigError("the simulated robot already has a driver connected; disconnect it first")
            if callback is None and self._callback_owner is not owner:
                return
            self._callback, self._callback_owner = callback, (owner if callback is not None else None)

    @property
    def driven(self) -> bool:
        """Whether a simulated robot driver in this process is connected (and owns the arm's motion)."""
        return self._callback is not None

    def step(self, duration_s: float) -> None:
        """Advance physics by ``duration_s`` (rounded to whole timesteps, at least one)."""
        n = max(1, round(duration_s / self.timestep_s))
        with self.lock:
            for _ in range(n):
                if self._callback is not None:
                    self._callback(float(self._data.time), self.timestep_s)
                mujoco.mj_step(self.model, self._data)
            # mj_step leaves the kinematics one step behind qpos; bring them up to date for readers.
            mujoco.mj_forward(self.model, self._data)

    def acquire_real_time(self) -> None:
        """Keep physics running at wall-clock pace until every acquirer has released it."""
        with self.lock:
            self._rt_users += 1
            if self._rt_thread is None:
                self._rt_stop.clear()
                self._rt_thread = threading.Thread(target=self._run_real_time, name="sim-physics", daemon=True)
                self._rt_thread.start()

    def release_real_time(self) -> None:
        with self.lock:
            self._rt_users = max(0, self._rt_users - 1)
            if self._rt_users or self._rt_thread is None:
                return
            thread, self._rt_thread = self._rt_thread, None
            self._rt_stop.set()
        thread.join(timeout=2.0)

    @property
    def real_time(self) -> bool:
        return self._rt_thread is not None

    def _run_real_time(self) -> None:
        wall0, sim0 = time.perf_counter(), self.time_s
        while not self._rt_stop.is_set():
            behind = sim0 + (time.perf_counter() - wall0) - self.time_s
            if behind > MAX_CATCH_UP_S:  # the machine stalled: resume from now rather than race
                self.real_time_overruns += 1
                wall0, sim0 = time.perf_counter(), self.time_s
                behind = 0.0
            if behind >= self.timestep_s:
                self.step(behind)
            self._rt_stop.wait(self.timestep_s)

    def update_renderer(self, renderer: Any) -> float:
        """Copy the current state into ``renderer`` (a ``mujoco.Renderer``) as the cell camera sees it;
        returns the sim time the picture shows. Rendering itself then needs no lock."""
        with self.lock:
            renderer.update_scene(self._data, camera=self.camera_id)
            return float(self._data.time)


_SHARED: dict[WorldConfig, World] = {}
_SHARED_LOCK = threading.Lock()


def shared_world(config: WorldConfig) -> World:
    """The process-wide world for ``config``: the sim camera, robot and oracle of one process meet here."""
    with _SHARED_LOCK:
        if config not in _SHARED:
            _SHARED[config] = World(config)
        return _SHARED[config]
