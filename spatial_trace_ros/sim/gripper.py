"""``SimGripper``: the MuJoCo two-finger gripper behind the ``Gripper`` contract (gripper kind ``sim``).

The fingers are force-limited position servos on slide joints (``sim.gripper_mjcf``); they stop where
they meet an object, and ``object_detected`` says so, exactly as a Robotiq reports it. An object is held
by physics: when both finger pads touch the same movable object, a weld between the palm and that
object engages at their relative pose of that moment (the friction of two box pads on a cylinder is
too fragile for a repeatable benchmark); it lets go as soon as the fingers open or either pad loses
contact. Nothing is ever moved by setting its pose.

Physics advances either on the world's real-time thread (when a driver holds it) or, when nobody
does, by this gripper stepping the world itself while it waits for the fingers.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from spatial_trace_ros.sim.config import split_options
from spatial_trace_ros.sim.gripper_mjcf import FINGER_ACTUATORS, FINGER_JOINTS, GRIPPER_BODY, PAD_GEOMS, weld_name
from spatial_trace_ros.sim.mjcf import body_name
from spatial_trace_ros.sim.world import World, shared_world
from spatial_trace_ros.tools.description import ToolDescription
from spatial_trace_ros.tools.gripper import Gripper, GripperError, GripperState

POLL_S = 0.01
SETTLED_SPEED_MPS = 0.002  # fingers slower than this have stopped
TARGET_REACHED_M = 0.002  # within this of the target the fingers did not stop on anything
MIN_HELD_WIDTH_M = 0.005  # fingers closer than this hold nothing between them


class SimGripperOptions(BaseModel):
    """The sim gripper has no options of its own; the world options say which cell it is in."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SimGripper(Gripper):
    """The gripper of the simulated cell; options are the ``WorldConfig``'s (which cell), or ``world``."""

    def __init__(self, tool: ToolDescription, world: World | None = None, **options: Any) -> None:
        world_config, _ = split_options(options, SimGripperOptions, "sim gripper")
        self.world = world if world is not None else shared_world(world_config)
        self.tool = tool
        self.min_width_m = tool.gripper.min_width_m
        self.max_width_m = tool.gripper.max_width_m
        self.speed_range_mps = (1e-3, tool.gripper.max_speed_mps)  # what move_to_width accepts
        self.force_range_n = (1.0, tool.gripper.max_force_n)
        self.endpoint = "the simulated cell's gripper"
        m = self.world.model
        self._qpos = [int(m.joint(j).qposadr[0]) for j in FINGER_JOINTS]
        self._dof = [int(m.joint(j).dofadr[0]) for j in FINGER_JOINTS]
        self._act = [int(m.actuator(a).id) for a in FINGER_ACTUATORS]
        self._pads = [int(m.geom(g).id) for g in PAD_GEOMS]
        self._palm = int(m.body(GRIPPER_BODY).id)
        self._movable = {int(m.body(body_name(o.name)).id): o.name for o in self.world.scene.objects
                         if not o.is_receptacle}
        self._welds = {b: int(m.equality(weld_name(body_name(n))).id) for b, n in self._movable.items()}
        self._held: int | None = None
        self._target_m = self.max_width_m
        self._connected = False

    # -- contract -------------------------------------------------------------------------------------
    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def activate(self, timeout_s: float) -> GripperState:
        self._require_connected()
        return self.read_state()

    def move_to_width(self, width_m: float, speed_mps: float, force_n: float, timeout_s: float) -> GripperState:
        self._require_connected()
        g = self.tool.gripper
        if not (self.min_width_m - 1e-9 <= width_m <= self.max_width_m + 1e-9):
            raise GripperError(f"width {width_m:.4f} m is outside {self.min_width_m:.3f}..{self.max_width_m:.3f} m; "
                               "nothing was sent")
        if not (0 < speed_mps <= g.max_speed_mps and 0 < force_n <= g.max_force_n):
            raise GripperError(f"speed {speed_mps} m/s and force {force_n} N must be within (0, {g.max_speed_mps}] "
                               f"and (0, {g.max_force_n}]; nothing was sent")
        with self.world.lock:
            opening = width_m > self.width_m() + 1e-4
            if opening:
                self._release()
            self._target_m = width_m
            data = self.world.data
            for act in self._act:
                data.ctrl[act] = width_m / 2
            self.world.model.actuator_forcerange[self._act] = [-force_n, force_n]
        deadline = time.monotonic() + timeout_s
        sim_deadline = self.world.time_s + timeout_s
        moved_s = 0.0
        while True:
            self._advance()
            moved_s += POLL_S
            state = self.read_state()
            if moved_s > 0.05 and not state.moving:
                return state
            if time.monotonic() > deadline or self.world.time_s > sim_deadline:
                raise GripperError(f"the fingers did not settle within {timeout_s:.1f} s (at {state.width_m:.4f} m, "
                                   f"target {width_m:.4f} m)")

    def read_state(self) -> GripperState:
        with self.world.lock:
            self._update_grasp()
            width = self.width_m()
            speed = float(np.abs(self.world.data.qvel[self._dof]).max())
            stopped_short = abs(width - self._target_m) > TARGET_REACHED_M
            return GripperState(stamp_s=time.time(), width_m=width,
                                object_detected=stopped_short and self._held is not None,
                                moving=speed > SETTLED_SPEED_MPS, activated=self._connected)

    def hold(self) -> None:
        """The servos keep their last target: a held object stays held."""

    # -- simulation -----------------------------------------------------------------------------------
    @property
    def held_object(self) -> str:
        """Name of the object the weld holds now ('' when none)."""
        with self.world.lock:
            self._update_grasp()
            return self._movable[self._held] if self._held is not None else ""

    def reset(self) -> None:
        """After the world's state was reset: hold nothing, and keep the fingers where they are."""
        with self.world.lock:
            self._held = None
            self._target_m = self.width_m()
            for act in self._act:
                self.world.data.ctrl[act] = self._target_m / 2

    def width_m(self) -> float:
        with self.world.lock:
            return float(self.world.data.qpos[self._qpos].sum())

    def _require_connected(self) -> None:
        if not self._connected:
            raise GripperError("the simulated gripper is not connected; call connect() first")

    def _advance(self) -> None:
        """Let physics run for one poll: wait for the real-time thread, or step the world ourselves."""
        if self.world.real_time:
            time.sleep(POLL_S)
        else:
            self.world.step(POLL_S)
        with self.world.lock:
            self._update_grasp()

    def _touching(self) -> set[int]:
        """Movable bodies that both pads touch now."""
        data, model = self.world.data, self.world.model
        touched: list[set[int]] = [set(), set()]
        for i in range(data.ncon):
            c = data.contact[i]
            for k, pad in enumerate(self._pads):
                other = c.geom2 if c.geom1 == pad else c.geom1 if c.geom2 == pad else None
                if other is not None:
                    touched[k].add(int(model.geom_bodyid[other]))
        return touched[0] & touched[1] & set(self._movable)

    def _update_grasp(self) -> None:
        """Engage the weld on an object both pads touch while closing; release it when contact is lost."""
        touching = self._touching()
        if self._held is not None and self._held not in touching:
            self._release()
        # an object is between the pads only when it keeps them apart (pads closed on each other can
        # touch an object from the side while pushing it: that is no grasp)
        apart = self.width_m() > self.min_width_m + MIN_HELD_WIDTH_M
        if self._held is None and touching and apart and self._target_m < self.width_m():
            self._engage(min(touching))

    def _engage(self, body: int) -> None:
        import mujoco

        model, data = self.world.model, self.world.data
        eq = self._welds[body]
        palm_pos, palm_mat = data.xpos[self._palm], data.xmat[self._palm].reshape(3, 3)
        obj_pos, obj_mat = data.xpos[body], data.xmat[body].reshape(3, 3)
        rel_pos = palm_mat.T @ (obj_pos - palm_pos)
        rel_quat = np.zeros(4)
        mujoco.mju_mat2Quat(rel_quat, (palm_mat.T @ obj_mat).ravel())
        model.eq_data[eq, 0:3] = 0.0  # anchor at body2's origin
        model.eq_data[eq, 3:6] = rel_pos
        model.eq_data[eq, 6:10] = rel_quat
        model.eq_data[eq, 10] = 1.0
        data.eq_active[eq] = 1
        self._held = body

    def _release(self) -> None:
        if self._held is not None:
            self.world.data.eq_active[self._welds[self._held]] = 0
            self._held = None
