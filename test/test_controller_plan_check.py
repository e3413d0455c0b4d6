"""The controller re-checks every plan it receives with its own safety limits: a plan that breaks them
(published by anyone on /spatial_trace/plan) is refused with the reason and never held for execution."""

from __future__ import annotations

import pytest

from helpers.plans import HOME_Q, offset_plan
from spatial_trace_ros.robots.controller import Controller
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig


@pytest.fixture
def controller() -> Controller:
    # Not started: no worker, no robot; only the plan bookkeeping is exercised.
    return Controller(ControllerNodeConfig(robot="ur5e", robot_ip="127.0.0.1"))


def test_a_plan_within_the_limits_is_held_for_execute(controller: Controller) -> None:
    plan = offset_plan(controller.model, HOME_Q, [(0.05, 0.0, 0.0)], duration_s=2.0, trapezoid=True)
    controller.on_plan(plan)
    assert controller.plan is plan
    assert controller.status.state == "waiting_for_execute"


def test_a_too_fast_plan_is_refused_with_the_reason(controller: Controller) -> None:
    # 0.3 m in 0.2 s at constant speed: 1.5 m/s, far above the 0.25 m/s TCP limit of the default limits.
    plan = offset_plan(controller.model, HOME_Q, [(0.3, 0.0, 0.0)], duration_s=0.2)
    text = controller.on_plan(plan)
    assert controller.plan is None
    status = controller.status
    assert status.state == "idle"
    assert "TCP" in status.reason and "safety check" in status.reason, status.reason
    assert "refused" in text
