"""The ``ControlPolicy`` plugin contract and its entry-point registry.

A policy turns a ``Plan`` into setpoints, one control period at a time. It never talks to the robot
itself: it returns a ``Setpoint`` that the execution loop checks (per-setpoint guard) and only then
hands to the driver. Policies are found through the ``spatial_trace_ros.control_policies`` entry-point
group, so a lab's own policy in another package is chosen by name exactly like the built-in ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

import numpy as np

from spatial_trace_ros.errors import ConfigError, format_choices
from spatial_trace_ros.planning.plan import Plan
from spatial_trace_ros.robots.driver import MovePathCommand, RobotState
from spatial_trace_ros.robots.model import RobotModel

ENTRY_POINT_GROUP = "spatial_trace_ros.control_policies"


@dataclass(frozen=True)
class Setpoint:
    """One command for this period. Exactly the field matching ``kind`` is set."""

    kind: Literal["servo_pose", "servo_joints", "speed_tcp", "move_path", "hold"]
    pose: np.ndarray | None = None  # servo_pose: base_T_tool target
    q: np.ndarray | None = None  # servo_joints target
    twist: np.ndarray | None = None  # speed_tcp: vx, vy, vz, wx, wy, wz in the base frame
    path: MovePathCommand | None = None  # move_path (sent once; progress is then read from the state)
    lookahead_s: float = 0.1
    gain: float = 300.0
    accel_mps2: float = 0.5


@dataclass(frozen=True)
class PolicyStep:
    """What a policy decided this period: a setpoint (or None to send nothing new), and whether the
    plan is finished."""

    setpoint: Setpoint | None
    done: bool = False
    progress: float = 0.0  # 0..1 along the plan


class ControlPolicy(ABC):
    """Follows one plan. ``start`` is called once with the state at start; ``step`` once per period."""

    name: str = ""
    requires: frozenset[str] = frozenset()  # driver command kinds this policy uses

    def __init__(self, model: RobotModel, **options: Any) -> None:
        self.model = model

    @abstractmethod
    def start(self, plan: Plan, state: RobotState) -> None: ...

    @abstractmethod
    def step(self, t_s: float, state: RobotState) -> PolicyStep:
        """``t_s`` is the time since ``start``."""


def available_policies() -> dict[str, Any]:
    """Installed policies by name (entry points of every installed package)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_policy_class(name: str) -> type[ControlPolicy]:
    """The policy class registered under ``name``; unknown names are answered with the installed ones."""
    found = available_policies()
    if name not in found:
        raise ConfigError(format_choices("control_policy", name, list(found)))
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, ControlPolicy)):
        raise ConfigError(f"control_policy {name!r} ({found[name].value}) is not a ControlPolicy subclass")
    return cls
