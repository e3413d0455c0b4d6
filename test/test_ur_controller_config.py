"""Controller and driver configuration: the shipped parameter files validate, and bad values are
refused with a sentence that names the value and the fix (before anything connects)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.planning.node_config import PlannerNodeConfig
from spatial_trace_ros.planning.safety_config import SafetyConfig
from spatial_trace_ros.robots.controller_config import ControllerNodeConfig
from spatial_trace_ros.robots.model import make_robot_model
from spatial_trace_ros.robots.ur.driver import RtdeDriver, RtdeDriverOptions

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@pytest.mark.parametrize("robot", ["ur5", "ur5e"])
def test_shipped_parameter_files_validate(robot: str) -> None:
    params = yaml.safe_load((CONFIG_DIR / f"{robot}.yaml").read_text())
    controller = ControllerNodeConfig.model_validate(params["controller_node"]["ros__parameters"])
    planner = PlannerNodeConfig.model_validate(params["planner_node"]["ros__parameters"])
    assert controller.robot == planner.robot == robot
    assert controller.driver_name == "ur_rtde"
    assert controller.driver_options() == {"watchdog_min_hz": 10.0, "stop_decel_mps2": 2.0,
                                           "robot_ip": controller.robot_ip}
    RtdeDriver(make_robot_model(robot), **controller.driver_options())  # accepted without connecting


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("control_policy", "teleport", "unknown control_policy 'teleport'; available: movel_path, servo_stream"),
        ("driver", "ros_control", "unknown driver 'ros_control'; available: g1_arm_sdk, sim, ur_rtde"),
        ("driver_options_json", "{watchdog: 5}", "driver_options_json is not JSON"),
        ("driver_options_json", "[1, 2]", "must be a JSON object"),
        ("gain", 50.0, "greater than or equal to 100"),
    ],
)
def test_bad_controller_parameters_are_named(field: str, value: object, expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        ControllerNodeConfig(robot="ur5", **{field: value})


def test_policy_limits_never_exceed_the_safety_file() -> None:
    cfg = ControllerNodeConfig(robot="ur5e", max_tcp_speed_mps=0.8, lookahead_s=0.05)
    safety = SafetyConfig.model_validate({"motion": {"max_tcp_speed_mps": 0.1}})
    options = cfg.policy_options(safety)
    assert options["max_tcp_speed_mps"] == 0.1 and options["lookahead_s"] == 0.05


def test_driver_options_reach_the_driver_with_the_robot_ip() -> None:
    cfg = ControllerNodeConfig(robot="ur5", robot_ip="10.0.0.7",
                               driver_options_json=json.dumps({"command_kinds": ["servo_joints"]}))
    driver = RtdeDriver(make_robot_model("ur5"), **cfg.driver_options())
    assert driver.options.robot_ip == "10.0.0.7" and driver.supports == {"servo_joints"}
    assert cfg.worker_config().driver_options == {"command_kinds": ["servo_joints"], "robot_ip": "10.0.0.7"}


@pytest.mark.parametrize(
    ("robot", "options", "expected"),
    [
        ("ur5", {}, "robot_ip: Field required"),
        ("ur5", {"robot_ip": "  "}, "robot_ip is empty"),
        ("ur5", {"robot_ip": "10.0.0.7", "watchdog_hz": 5}, "watchdog_hz: Extra inputs are not permitted"),
        ("ur5", {"robot_ip": "10.0.0.7", "command_kinds": ["teleport"]}, "command_kinds.0"),
        ("g1_left_arm", {"robot_ip": "10.0.0.7"}, "drives UR arms, not 'g1_left_arm'"),
    ],
)
def test_rtde_driver_refuses_bad_options_before_connecting(robot: str, options: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        RtdeDriver(make_robot_model(robot), **options)


def test_docs_list_every_controller_parameter_and_ur_rtde_option() -> None:
    text = (CONFIG_DIR.parent / "docs" / "controller.md").read_text()
    for name in [*ControllerNodeConfig.model_fields, *RtdeDriverOptions.model_fields]:
        assert f"`{name}`" in text, f"docs/controller.md does not describe {name}"
