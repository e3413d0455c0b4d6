"""The demo's instructions: a few the oracle can answer in this scene, and one the safety filter must refuse.

Scenes are random (seeded), so fixed sentences would name objects that are not there or that the arm
cannot reach. Instead the demo writes candidate sentences from the scene's objects (pick up, place
into a receptacle, place beside another object) and keeps the first of each kind that the planner
accepts as a task with the robot's gripper (``planning.task``), whose goal is free of other objects,
chaining each from where the previous one ends, starting at the arm's home pose; each object is moved
once, and "pick up" comes last, because it ends holding the object. The refusal
case is "move the <object> <N> cm forward/backward/left/right" with the direction and distance that
land the object on the robot's base column: a trace the oracle draws happily (it is only geometry)
and the planner must refuse because it enters the ``robot_base`` keep-out zone.
This screening uses the oracle's ground truth, so it is for simulation only, like the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.calibration import Calibration
from spatial_trace_ros.geometry.camera_model import project
from spatial_trace_ros.geometry.trace import Trace
from spatial_trace_ros.planning.planner import Planner
from spatial_trace_ros.planning.safety import SafetyCode
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.planning.task import TaskPlanner, task_kind
from spatial_trace_ros.robots.model import RobotModel
from spatial_trace_ros.sim.scene import OPTICAL_FRAME, SceneSpec, calibration_dict, sim_intrinsics
from spatial_trace_ros.sim.task_eval import goal_is_clear
from spatial_trace_ros.sim.tasks import camera_directions, plan_task
from spatial_trace_ros.tools.description import default_tool

Expectation = Literal["execute", "refuse", "any"]
# Words the shift template takes, and the camera-relative direction each means (sim.tasks).
SHIFT_WORDS = {"forward": "behind", "backward": "front", "left": "left", "right": "right"}
KEEP_OUT_TARGET_M = 0.15  # the refusal case's goal lies this close to the base axis (keep-out radius 0.2 m)
SHIFT_RANGE_CM = (5, 60)


@dataclass(frozen=True)
class DemoInstruction:
    """One sentence for the stack and what the demo expects of it."""

    text: str
    expect: Expectation = "any"
    expect_codes: tuple[str, ...] = ()  # safety codes the refusal must name
    why: str = ""


def _movables(scene: SceneSpec) -> list[str]:
    return [o.name for o in scene.objects if not o.is_receptacle]


def _receptacles(scene: SceneSpec) -> list[str]:
    bowls_first = sorted((o for o in scene.objects if o.is_receptacle), key=lambda o: o.kind != "bowl")
    return [o.name for o in bowls_first]


def candidate_tasks(scene: SceneSpec, used: set[str] = frozenset()) -> dict[str, list[str]]:
    """Sentences per kind of task, in the order the demo tries them: objects not ``used`` yet first."""
    movables = sorted(_movables(scene), key=lambda name: name in used)
    receptacles = _receptacles(scene)
    return {
        "pick_up": [f"pick up the {m}" for m in movables if m not in used],
        "place_in": [f"move the {m} into the {r}" for m in movables for r in receptacles],
        "place_beside": [f"move the {a} to the {side} of the {b}"
                         for a in movables if a not in used for side in ("left", "right") for b in movables
                         if a != b and b not in used],
    }


def keep_out_candidates(scene: SceneSpec, base_T_camera: np.ndarray) -> Iterator[str]:
    """Shift sentences whose goal lands within ``KEEP_OUT_TARGET_M`` of the robot base's axis, shortest first."""
    dirs = camera_directions(base_T_camera)
    found = []
    for obj in scene.objects:
        if obj.is_receptacle:
            continue
        centre = obj.centre[:2]
        for word, key in SHIFT_WORDS.items():
            u = dirs[key][:2]
            distance_cm = round(-float(centre @ u) * 100)
            if not SHIFT_RANGE_CM[0] <= distance_cm <= SHIFT_RANGE_CM[1]:
                continue
            if np.linalg.norm(centre + u * distance_cm / 100) <= KEEP_OUT_TARGET_M:
                found.append((distance_cm, f"move the {obj.name} {distance_cm} cm {word}"))
    return (text for _, text in sorted(found))


class InstructionScreen:
    """Plans ground-truth traces the way the stack will, to keep sentences that do what the demo needs."""

    def __init__(self, scene: SceneSpec, model: RobotModel, safety: SafetyConfig, home_q_rad: np.ndarray) -> None:
        self.scene = scene
        self.calibration = Calibration.from_dict(calibration_dict(scene), "simulated camera")
        self.base_T_camera = self.calibration.base_T_camera().matrix
        self.intrinsics = sim_intrinsics(scene.camera)
        self.planner = Planner(model, self.calibration, safety=safety)
        self.planner.task_planner = TaskPlanner(self.planner, default_tool(model.name))
        self.q = np.asarray(home_q_rad, float)
        self.holding = False

    def _camera_trace(self, text: str) -> Trace | None:
        """The oracle's noiseless trace in the camera frame, or None if the oracle would refuse it or its
        goal is taken by another object (the oracle's geometry does not look)."""
        try:
            truth = plan_task(text, self.scene, self.base_T_camera)
        except ModelError:
            return None
        if not goal_is_clear(truth, self.scene):
            return None
        camera_T_base = np.linalg.inv(self.base_T_camera)
        points = truth.points_m @ camera_T_base[:3, :3].T + camera_T_base[:3, 3]
        uv = project(points, self.intrinsics)
        w, h = self.intrinsics.width, self.intrinsics.height
        if not np.all(np.isfinite(uv)) or np.any((uv < 0) | (uv >= [w, h])):
            return None
        return Trace(points, OPTICAL_FRAME)

    def try_execute(self, text: str) -> bool:
        """Accepted from where the arm is now? If so, the arm is taken to be at the plan's end."""
        trace = self._camera_trace(text)
        if trace is None or self.holding:
            return False
        plan = self.planner.plan_detailed(trace, self.q, task=task_kind(text)).plan
        if plan is None:
            return False
        self.q = plan.joints[-1]
        self.holding = plan.task == "pick_up"
        return True

    def refused_for(self, text: str, code: str) -> bool:
        trace = self._camera_trace(text)
        if trace is None:
            return False
        result = self.planner.plan_detailed(trace, self.q, task=task_kind(text))
        return result.plan is None and any(r.code == code for r in result.report.reasons)


def choose_instructions(
    scene: SceneSpec, model: RobotModel, safety: SafetyConfig, home_q_rad: np.ndarray, short: bool = False,
) -> list[DemoInstruction]:
    """Two (short) or three executable instructions of different kinds, then the keep-out refusal."""
    screen = InstructionScreen(scene, model, safety, home_q_rad)
    # pick up last: it ends holding the object, and the next task would have to let go of it first
    kinds = ("place_in", "pick_up") if short else ("place_in", "place_beside", "pick_up")
    chosen: list[DemoInstruction] = []
    used: set[str] = set()
    for kind in kinds:
        text = next((t for t in candidate_tasks(scene, used)[kind] if screen.try_execute(t)), None)
        if text is not None:
            used.update(m for m in _movables(scene) if f"the {m}" in text)  # moved or referred to
            chosen.append(DemoInstruction(text, "execute", why=f"{kind.replace('_', ' ')}: the oracle's trace, "
                                                                 "accepted and executed"))
    code = SafetyCode.KEEP_OUT_ZONE.value
    refusal = next((t for t in keep_out_candidates(scene, screen.base_T_camera) if screen.refused_for(t, code)), None)
    if refusal is not None:
        chosen.append(DemoInstruction(refusal, "refuse", (code,), why="aims into the keep-out zone around the "
                                                                      "robot base: the safety filter must refuse it"))
    if not chosen:
        raise ModelError(
            f"no demo instruction works in scene {scene.seed} for {model.name}; try another --seed or give "
            "--instruction yourself"
        )
    return chosen
