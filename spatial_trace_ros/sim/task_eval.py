"""Tasks in the simulated cell without ROS: plan a trace as a task, run it with the sim arm and gripper
in lockstep (as fast as the CPU allows), and judge the outcome from the simulated world.

``judge_task`` says whether the object ended where the instruction wanted it: inside the receptacle,
at the side of the reference object (within ``PLACE_TOLERANCE_M`` of the goal, on the table), or lifted
by at least ``LIFT_FRACTION`` of the asked lift while held. The benchmark (``bench/bench_tasks.py``),
``spatial-trace eval --execute`` and the demo's summary use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.geometry.calibration import Calibration
from spatial_trace_ros.planning.planner import Planner
from spatial_trace_ros.planning.safety import SafetyConfig, SafetyFilter, SetpointGuard
from spatial_trace_ros.planning.task import TaskPlanner, task_kind
from spatial_trace_ros.policies.base import load_policy_class
from spatial_trace_ros.robots.execution import ExecutionLoop
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.task_runner import TaskRunner
from spatial_trace_ros.sim.config import WorldConfig
from spatial_trace_ros.sim.gripper import SimGripper
from spatial_trace_ros.sim.robot import SimRobotDriver
from spatial_trace_ros.sim.scene import ObjectSpec, SceneSpec, calibration_dict
from spatial_trace_ros.sim.tasks import TaskTrace, plan_task
from spatial_trace_ros.sim.ur_arm import HOME_Q_RAD
from spatial_trace_ros.sim.world import World

PLACE_TOLERANCE_M = 0.04  # the object's centre ends this close (x, y) to where the instruction wanted it
LIFT_FRACTION = 0.7
SETTLE_S = 0.5  # physics after the task, before judging (a released object comes to rest)


@dataclass
class TaskOutcome:
    """One executed task: the plan's verdict, the grasp, the execution and the judgement."""

    instruction: str
    kind: str
    planned: bool
    success: bool = False
    grasp: str = "none"  # none | held | failed
    execution: str = ""  # succeeded | aborted | stopped | '' (not run)
    reason: str = ""
    object_start_m: list[float] = field(default_factory=list)
    object_end_m: list[float] = field(default_factory=list)
    object_path_m: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "object_path_m"}


def judge_task(truth: TaskTrace, start_m: np.ndarray, end_m: np.ndarray, world_objects: dict[str, np.ndarray],
               held: bool) -> tuple[bool, str]:
    """Whether the object (centre ``start_m`` -> ``end_m``) did what ``truth`` asked, and why not."""
    obj: ObjectSpec = truth.obj
    if truth.template == "pick_up" or (truth.template == "shift" and "up" in truth.instruction.split()):
        asked = float(truth.goal_m[2] - obj.top_z_m)
        lifted = float(end_m[2] - start_m[2])
        ok = held and lifted >= LIFT_FRACTION * asked
        return bool(ok), f"lifted {lifted * 100:.1f} cm of {asked * 100:.1f} cm" + ("" if held else ", not held")
    if held:
        return False, "the object is still in the gripper"
    if truth.template == "place_in" and truth.reference is not None:
        ref = truth.reference
        centre = world_objects[ref.name]
        inner = ref.size_m[0] / 2 - ref.wall_m if ref.kind == "bowl" else min(ref.size_m[:2]) / 2 - ref.wall_m
        off = float(np.linalg.norm(end_m[:2] - centre[:2]))
        inside = off <= inner and end_m[2] < centre[2] + ref.size_m[2] / 2 + obj.size_m[2] / 2
        return bool(inside), f"{off * 100:.1f} cm from the {ref.name}'s centre (inner radius {inner * 100:.1f} cm)"
    goal_centre = truth.goal_m[:2]
    off = float(np.linalg.norm(end_m[:2] - goal_centre))
    resting = abs(end_m[2] - (truth.goal_m[2] - obj.size_m[2] / 2)) < 0.02
    ok = off <= PLACE_TOLERANCE_M and resting
    return bool(ok), f"{off * 100:.1f} cm from the goal" + ("" if resting else ", not resting at the goal height")


def goal_is_clear(truth: TaskTrace, scene: SceneSpec, gap_m: float = 0.01) -> bool:
    """Whether the object fits at its goal without overlapping any other object (receptacle targets
    excepted): the oracle's programs place by geometry and do not look."""
    if truth.template in ("place_in", "place_on", "pick_up"):
        return True
    obj = truth.obj
    for other in scene.objects:
        if other.name in (obj.name, truth.reference.name if truth.reference else ""):
            continue
        apart = obj.footprint_radius_m + other.footprint_radius_m + gap_m
        if np.linalg.norm(truth.goal_m[:2] - other.centre[:2]) < apart:
            return False
    if truth.reference is not None and truth.template != "go_around":
        ref = truth.reference
        if np.linalg.norm(truth.goal_m[:2] - ref.centre[:2]) < obj.footprint_radius_m + ref.footprint_radius_m:
            return False
    return True


class SimTaskExecutor:
    """One simulated cell that executes tasks one after another (reset between them on request)."""

    def __init__(self, robot: str = "ur5e", scene: SceneSpec | None = None, seed: int = 0, policy: str = "servo_stream",
                 safety: SafetyConfig | None = None) -> None:
        self.config = WorldConfig(robot=robot, scene_seed=seed)
        self.world = World(self.config, scene)
        self.scene = self.world.scene
        self.model = make_robot_model(robot)
        self.safety = safety or SafetyConfig()
        self.calibration = Calibration.from_dict(calibration_dict(self.scene), "simulated camera")
        self.base_T_camera = self.calibration.base_T_camera().matrix
        self.planner = Planner(self.model, self.calibration, safety=self.safety)
        self.tasks = TaskPlanner(self.planner, self.world.tool)
        self.driver = SimRobotDriver(self.model, world=self.world, real_time=False, period_s=0.008)
        self.gripper = SimGripper(self.world.tool, world=self.world)
        self.guard = SetpointGuard(self.safety, self.model)
        self.filter = SafetyFilter(self.safety, self.model)
        self.policy_cls = load_policy_class(policy)
        self.driver.connect()
        self.gripper.connect()
        self._home = np.asarray(HOME_Q_RAD[robot], float)
        self._object_path: list[np.ndarray] = []
        self._watched = ""

    def reset(self) -> None:
        import mujoco

        with self.world.lock:
            mujoco.mj_resetData(self.world.model, self.world.data)
            self.world.set_joint_positions(self._home)
            self.gripper.reset()
        self.driver.connect()

    def _loop(self) -> ExecutionLoop:
        policy = self.policy_cls(self.model, period_s=self.driver.period_s, driver_supports=self.driver.supports,
                                 max_tcp_speed_mps=self.safety.motion.max_tcp_speed_mps,
                                 max_tcp_accel_mps2=self.safety.motion.max_tcp_accel_mps2,
                                 max_tool_angular_speed_radps=self.safety.motion.max_tool_angular_speed_radps)
        return ExecutionLoop(self.driver, policy, self.guard, on_period=self._record, goal_tolerance_m=0.01,
                             clock=lambda: self.world.time_s)

    def _record(self, _report: object) -> None:
        if self._watched:
            self._object_path.append(self.world.object_pose(self._watched)[:3, 3].copy())

    def run(self, instruction: str, points_base: np.ndarray | None = None) -> TaskOutcome:
        """Execute ``instruction`` with ``points_base`` (the trace in the base frame; None: the oracle's)."""
        t0 = time.perf_counter()
        try:
            truth = plan_task(instruction, self.scene, self.base_T_camera)
        except ModelError as err:
            return TaskOutcome(instruction, task_kind(instruction), False, reason=str(err))
        points = truth.points_m if points_base is None else np.asarray(points_base, float)
        kind = task_kind(instruction)
        q = self.world.joint_positions()
        result = self.tasks.plan(points, kind, q, q)
        outcome = TaskOutcome(instruction, kind, result.plan is not None)
        name = truth.obj.name
        start = self.world.object_pose(name)[:3, 3].copy()
        outcome.object_start_m = start.round(4).tolist()
        if result.plan is None:
            outcome.reason = f"refused: {result.report.summary()}"
            outcome.seconds = time.perf_counter() - t0
            return outcome
        self._watched, self._object_path = name, []
        runner = TaskRunner(self.gripper, self.world.tool, self._loop, self.filter)
        executed, progress = runner.run(result.plan)
        self._watched = ""
        if kind != "pick_up":
            self.world.step(SETTLE_S)
        end = self.world.object_pose(name)[:3, 3]
        held = self.gripper.held_object == name
        outcome.execution = executed.outcome
        outcome.grasp = progress.grasp_outcome() if progress is not None else "none"
        outcome.object_end_m = end.round(4).tolist()
        outcome.object_path_m = [p.round(4).tolist() for p in self._object_path[::10]]
        ok, why = judge_task(truth, start, end, self.world.object_positions(), held)
        outcome.success = ok and executed.succeeded
        outcome.reason = why if executed.succeeded else f"{executed.outcome}: {executed.reason}; {why}"
        outcome.seconds = time.perf_counter() - t0
        return outcome
