"""``SimFrameSource``: the simulated RGB-D camera, registered as camera source ``sim``.

Renders color and metric depth of the shared ``World`` offscreen (EGL or OSMesa, on the CPU) and
delivers them like a D435 does: rgb8 color, depth aligned to it as uint16 millimetres (0 = no data),
pinhole intrinsics that follow from the camera's vertical field of view. MuJoCo's depth is z along the
optical axis, which is what the rest of the stack expects. All rendering happens on one thread that
owns the OpenGL context, so ``read`` may be called from any thread.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from spatial_trace_ros.camera.source import FrameSource, SourceStats
from spatial_trace_ros.errors import CameraError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, RgbdFrame
from spatial_trace_ros.sim.config import split_options
from spatial_trace_ros.sim.gl_backend import gl_failure_hint
from spatial_trace_ros.sim.scene import OPTICAL_FRAME, sim_intrinsics
from spatial_trace_ros.sim.ur_arm import JOINT_NAMES
from spatial_trace_ros.sim.world import World, shared_world

DEPTH_SCALE_M = 0.001


class SimCameraOptions(BaseModel):
    """Settings of the simulated camera itself (the scene's settings belong to ``WorldConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fps: float = Field(15.0, gt=0.0, le=90.0, description="frames per second at most [Hz]")
    stamp_clock: Literal["wall", "sim"] = Field("wall", description="stamp frames with wall time or sim time")
    min_depth_m: float = Field(0.1, ge=0.0, description="nearer than this reads as no depth [m]")
    max_depth_m: float = Field(6.0, gt=0.0, description="farther than this reads as no depth [m]")


def depth_image_mm(depth_m: np.ndarray, min_depth_m: float, max_depth_m: float) -> np.ndarray:
    """Float metres to uint16 millimetres, 0 outside ``[min_depth_m, max_depth_m]`` (as a D435 reports)."""
    valid = np.isfinite(depth_m) & (depth_m >= min_depth_m) & (depth_m <= max_depth_m)
    return np.where(valid, np.rint(depth_m / DEPTH_SCALE_M), 0).astype(np.uint16)


class SimFrameSource(FrameSource):
    """Frames of the simulated cell. Options: those of ``SimCameraOptions`` and ``WorldConfig``
    (robot, scene_seed, camera_mount, width, height, ...), or an explicit ``world``."""

    def __init__(self, world: World | None = None, **options: Any) -> None:
        world_config, own = split_options(options, SimCameraOptions, "sim camera")
        self.options: SimCameraOptions = own  # type: ignore[assignment]
        if self.options.min_depth_m >= self.options.max_depth_m:
            raise CameraError(
                f"min_depth_m ({self.options.min_depth_m}) must be below max_depth_m ({self.options.max_depth_m})"
            )
        self._world_config = world_config
        self._world = world
        camera = (world.scene if world is not None else world_config.build_scene()).camera
        self._intrinsics = sim_intrinsics(camera)
        self.stats = SourceStats()
        self._executor: ThreadPoolExecutor | None = None
        self._renderer: Any = None
        self._last_frame_wall = -math.inf

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self._intrinsics

    @property
    def world(self) -> World:
        if self._world is None:
            self._world = shared_world(self._world_config)
        return self._world

    def open(self) -> None:
        if self._executor is not None:
            return
        world = self.world
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-camera")
        try:
            self._renderer = self._executor.submit(self._make_renderer, world).result()
        except Exception as err:  # any GL failure: say which backend failed and what to try
            self.close()
            self.stats.state, self.stats.detail = "failed", str(err)
            raise CameraError(gl_failure_hint(err)) from None
        size = f"{self._intrinsics.width}x{self._intrinsics.height}"
        self.stats.state, self.stats.detail = "streaming", f"simulated {size}"

    def _make_renderer(self, world: World) -> Any:
        import mujoco

        return mujoco.Renderer(world.model, self._intrinsics.height, self._intrinsics.width)

    def show_joint_positions(self, positions: dict[str, float]) -> bool:
        """Put the rendered arm at ``positions`` (joint name -> rad), e.g. from ``/joint_states`` when the
        robot is simulated in another process (the controller's real-time worker). Ignored while a sim
        driver in this process moves the arm, or when a joint is missing; returns whether it moved."""
        world = self.world
        if world.driven or not all(name in positions for name in JOINT_NAMES):
            return False
        world.set_joint_positions(np.array([positions[name] for name in JOINT_NAMES], float))
        return True

    def show_object_poses(self, poses: np.ndarray) -> bool:
        """Put the rendered objects where the robot's simulated cell has them (N, 7 poses in the scene's
        order, e.g. from ``/spatial_trace/sim/object_poses``); ignored while this process runs the
        physics itself or when the count does not match. Returns whether they moved."""
        world = self.world
        if world.driven or len(poses) != len(world.scene.objects):
            return False
        world.show_object_poses(poses)
        return True

    def read(self, timeout_s: float = 1.0) -> RgbdFrame:
        if self._executor is None:
            raise CameraError("the sim camera is not open; call open() first")
        wait_s = self._last_frame_wall + 1.0 / self.options.fps - time.monotonic()
        if wait_s > timeout_s:
            time.sleep(max(0.0, timeout_s))
            raise CameraError(f"no new frame within {timeout_s} s: the sim camera runs at {self.options.fps} fps")
        if wait_s > 0:
            time.sleep(wait_s)
        self._last_frame_wall = time.monotonic()
        future = self._executor.submit(self._render)
        try:
            frame = future.result(timeout=max(timeout_s, 1e-3))
        except FutureTimeout:
            self.stats.drops += 1
            raise CameraError(
                f"rendering took longer than {timeout_s} s; lower the resolution or raise the timeout"
            ) from None
        self.stats.frames += 1
        return frame

    def _render(self) -> RgbdFrame:
        renderer = self._renderer
        sim_time_s = self.world.update_renderer(renderer)
        wall_time_s = time.time()
        color = renderer.render()
        renderer.enable_depth_rendering()
        try:
            depth_m = renderer.render()
        finally:
            renderer.disable_depth_rendering()
        depth = depth_image_mm(depth_m, self.options.min_depth_m, self.options.max_depth_m)
        stamp = sim_time_s if self.options.stamp_clock == "sim" else wall_time_s
        return RgbdFrame(color, depth, self._intrinsics, DEPTH_SCALE_M, stamp, OPTICAL_FRAME)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            executor.submit(renderer.close).result()
        executor.shutdown(wait=True)
        self.stats.state = "closed"
