"""Simulation speed on this machine's CPU: render time per RGB-D frame (color pass, depth pass, and a
whole ``SimFrameSource.read``) at 640x480 and 320x240, physics with the driver's servo controller in
lockstep (simulated seconds per wall second), and the oracle's answer latency. Prints one JSON object.

Figures are medians over repeats; the OpenGL backend in use (MUJOCO_GL) is reported with them.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.sim.camera import SimFrameSource
from spatial_trace_ros.sim.oracle import OracleBackend
from spatial_trace_ros.sim.robot import SimRobotDriver
from spatial_trace_ros.sim.world import World, WorldConfig
from spatial_trace_ros.trace.model import TraceQuery


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(1e3 * statistics.median(times), 2)


def render_figures(width: int, height: int, repeats: int) -> dict:
    world = World(WorldConfig(scene_seed=1, width=width, height=height))
    source = SimFrameSource(world=world, fps=90.0)
    t0 = time.perf_counter()
    source.open()
    open_ms = round(1e3 * (time.perf_counter() - t0), 1)
    renderer = source._renderer  # measured on the source's own render thread (it owns the GL context)

    def passes() -> tuple[float, float]:
        def color() -> None:
            world.update_renderer(renderer)
            renderer.render()

        def depth() -> None:
            renderer.enable_depth_rendering()
            try:
                world.update_renderer(renderer)
                renderer.render()
            finally:
                renderer.disable_depth_rendering()

        return median_ms(color, repeats), median_ms(depth, repeats)

    color_ms, depth_ms = source._executor.submit(passes).result()
    read_ms = median_ms(lambda: source.read(timeout_s=10.0), repeats)
    source.close()
    return {"open_ms": open_ms, "color_pass_ms": color_ms, "depth_pass_ms": depth_ms, "read_rgbd_ms": read_ms}


def physics_figures(seconds: float) -> dict:
    model = make_robot_model("ur5e")
    driver = SimRobotDriver(model, world=World(WorldConfig()), real_time=False)
    driver.connect()
    q0 = driver.read_state().q
    n = int(seconds / driver.period_s)
    t0 = time.perf_counter()
    for k in range(n):
        driver.servo_joints(q0 + 0.2 * np.sin(np.pi * k * driver.period_s))
        driver.wait_period(driver.start_period())
    wall = time.perf_counter() - t0
    driver.disconnect()
    return {"servo_lockstep_sim_s_per_wall_s": round(seconds / wall, 1), "period_s": driver.period_s}


def oracle_figures(repeats: int) -> dict:
    world = World(WorldConfig(scene_seed=1, width=64, height=48))
    with SimFrameSource(world=world) as source:
        frame = source.read(timeout_s=10.0)
    oracle = OracleBackend(scene_seed=1, width=64, height=48)
    movable = next(o.name for o in world.scene.objects if not o.is_receptacle)
    receptacle = next(o.name for o in world.scene.objects if o.is_receptacle)
    query = TraceQuery(frame, f"move the {movable} into the {receptacle}")
    return {"answer_ms": median_ms(lambda: asyncio.run(oracle.answer(query)), repeats)}


def main() -> None:
    result = {
        "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
        "render_640x480": render_figures(640, 480, 30),
        "render_320x240": render_figures(320, 240, 30),
        "physics": physics_figures(4.0),
        "oracle": oracle_figures(50),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
