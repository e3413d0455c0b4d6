"""``OracleBackend``: an ORACLE trace model for SIMULATION ONLY (trace backend ``oracle``).

It is not a model and sees no pixels. It reads the simulated scene's ground truth (``SceneSpec``),
matches the instruction to a template (``sim.tasks``), computes the object's 3D trace with a small
program (lift, transport, place; or slide around an object in the way), projects it into the
simulated camera and answers in RoboTracer's format ``[(x, y, d), ...]`` (x, y on 0-1000 of the image
width/height, d metres along the optical axis). The parser, deprojection, planner and controller
downstream therefore run exactly as they do with a real model, and their errors can be measured
against a known answer.

``perturbation_m`` adds seeded Gaussian noise (standard deviation, metres, per axis) to the 3D
points, so evaluations can show how scores fall as traces get worse. It refuses frames whose
intrinsics are not the simulated camera's: pointed at a real camera it would answer nonsense.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.camera_model import CameraIntrinsics, project
from spatial_trace_ros.sim.config import split_options
from spatial_trace_ros.sim.scene import sim_intrinsics
from spatial_trace_ros.sim.tasks import TaskTrace, plan_task
from spatial_trace_ros.trace.conventions import get_convention
from spatial_trace_ros.trace.model import ModelAnswer, TraceModel, TraceQuery

INTRINSICS_TOLERANCE = 0.01
MIN_DEPTH_M = 0.05


class OracleOptions(BaseModel):
    """Settings of the oracle itself (the scene's settings belong to ``WorldConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_points: int = Field(10, ge=2, le=100, description="points per trace")
    clearance_m: float = Field(0.08, ge=0.0, le=0.5, description="transport height above the tallest object [m]")
    perturbation_m: float = Field(0.0, ge=0.0, le=1.0, description="std of seeded noise added to each point [m]")
    perturbation_seed: int = Field(0, ge=0, description="seed of the perturbation noise")


class OracleBackend(TraceModel):
    """Ground-truth traces of the simulated scene for templated instructions (an oracle, sim only)."""

    name = "oracle"
    convention = "robotracer"

    def __init__(self, **options: Any) -> None:
        world_config, own = split_options(options, OracleOptions, "oracle backend")
        self.options: OracleOptions = own  # type: ignore[assignment]
        self.world_config = world_config
        self.scene = world_config.build_scene()
        self._rng = np.random.default_rng(self.options.perturbation_seed)
        self._format = get_convention(self.convention)

    def base_T_camera(self) -> np.ndarray:
        """The camera pose now: fixed when eye-to-hand; read from the shared simulated arm when
        eye-in-hand (so the oracle must run in the same process as the sim camera and robot)."""
        if self.scene.camera.mount == "eye_to_hand":
            return self.scene.camera.parent_T_camera.matrix
        from spatial_trace_ros.sim.world import shared_world

        return shared_world(self.world_config).camera_pose()

    def ground_truth(self, instruction: str) -> TaskTrace:
        """The noiseless trace (base frame) the oracle's answers are made from."""
        o = self.options
        return plan_task(instruction, self.scene, self.base_T_camera(), o.n_points, o.clearance_m)

    def _check_intrinsics(self, intr: CameraIntrinsics) -> None:
        expected = sim_intrinsics(self.scene.camera).scaled(intr.width, intr.height)
        ratios = np.array([intr.fx / expected.fx, intr.fy / expected.fy])
        offsets = np.array([(intr.cx - expected.cx) / intr.width, (intr.cy - expected.cy) / intr.height])
        if np.any(np.abs(ratios - 1) > INTRINSICS_TOLERANCE) or np.any(np.abs(offsets) > INTRINSICS_TOLERANCE):
            raise ModelError(
                f"the oracle answers only for the simulated camera (fx={expected.fx:.1f}, cx={expected.cx:.1f} at "
                f"{intr.width}x{intr.height}); this frame has fx={intr.fx:.1f}, cx={intr.cx:.1f}. Use a real model "
                "backend (robotracer, openai, http) for real cameras"
            )

    def _answer_text(self, points_base: np.ndarray, base_T_camera: np.ndarray, intr: CameraIntrinsics) -> str:
        camera_T_base = np.linalg.inv(base_T_camera)
        points_cam = points_base @ camera_T_base[:3, :3].T + camera_T_base[:3, 3]
        if np.any(points_cam[:, 2] < MIN_DEPTH_M):
            raise ModelError("the trace passes behind the camera; the oracle cannot draw it in the image")
        uv = project(points_cam, intr)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < intr.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intr.height)
        if not np.all(inside):
            raise ModelError(
                f"{int(np.sum(~inside))} of {len(uv)} trace points fall outside the camera's view; the oracle, like a "
                "model, can only point inside the image"
            )
        return self._format.format_points(uv, intr.width, intr.height, points_cam[:, 2])

    async def answer(self, query: TraceQuery) -> list[ModelAnswer]:
        started = time.perf_counter()
        intr = query.frame.intrinsics
        self._check_intrinsics(intr)
        base_T_camera = self.base_T_camera()
        truth = plan_task(query.instruction, self.scene, base_T_camera, self.options.n_points, self.options.clearance_m)
        answers = []
        for _ in range(max(1, query.n_samples)):
            points = truth.points_m
            if self.options.perturbation_m > 0:
                points = points + self._rng.normal(0.0, self.options.perturbation_m, points.shape)
            text = self._answer_text(points, base_T_camera, intr)
            answers.append(
                ModelAnswer(
                    text=text,
                    convention=self.convention,
                    model="oracle (simulation ground truth)",
                    latency_s=time.perf_counter() - started,
                    metadata={
                        "oracle": True,
                        "template": truth.template,
                        "object": truth.obj.name,
                        "reference": truth.reference.name if truth.reference else None,
                        "via": truth.via.name if truth.via else None,
                        "points_base_m": points.tolist(),
                        "goal_base_m": truth.goal_m.tolist(),
                    },
                )
            )
        return answers
