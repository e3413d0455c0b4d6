"""On/off grippers on a UR's tool digital outputs, through ur_rtde's RTDEIOInterface and
RTDEReceiveInterface against the fake UR controller in its own process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from spatial_trace_ros.testing.fake_robotiq import start_fake_robotiq
from spatial_trace_ros.testing.fake_ur.client import FakeUrClient, start_fake_ur, unique_loopback_host
from spatial_trace_ros.testing.processes import ProcessGroup
from spatial_trace_ros.tools.gripper import Gripper, GripperError, gripper_factory

TIMEOUT_S = 5.0
TOOL_IN_0 = 1 << 16


@pytest.fixture
def fake(procs: ProcessGroup) -> FakeUrClient:
    return start_fake_ur(procs, "ur5e")


@pytest.fixture
def make_gripper(fake: FakeUrClient) -> Iterator[Callable[..., Gripper]]:
    made: list[Gripper] = []

    def make(**options: object) -> Gripper:
        gripper = gripper_factory("ur_tool_io")(None, host=fake.host, actuation_s=0.05, **options)
        gripper.connect()
        made.append(gripper)
        return gripper

    yield make
    for gripper in made:
        gripper.disconnect()


def test_close_and_open_switch_the_tool_output_the_controller_reports(
    fake: FakeUrClient, make_gripper: Callable[..., Gripper]
) -> None:
    gripper = make_gripper(close_output=1, max_width_m=0.04)
    closed = gripper.close(0.1, 10.0, TIMEOUT_S)
    assert fake.state()["digital_output_bits"] == 1 << 17  # tool output 1 = bit 17
    assert closed.width_m == 0.0 and not closed.object_detected
    assert not gripper.senses_object  # no sensor wired: a grasp cannot be verified
    opened = gripper.open(0.1, 10.0, TIMEOUT_S)
    assert fake.state()["digital_output_bits"] == 0 and opened.width_m == pytest.approx(0.04)


def test_a_double_acting_valve_drives_both_outputs_opposite(
    fake: FakeUrClient, make_gripper: Callable[..., Gripper]
) -> None:
    gripper = make_gripper(close_output=0, open_output=1, close_level=False)
    gripper.open(0.1, 10.0, TIMEOUT_S)
    assert fake.state()["digital_output_bits"] == 1 << 16  # close_level False: open = output 0 high
    gripper.close(0.1, 10.0, TIMEOUT_S)
    assert fake.state()["digital_output_bits"] == 1 << 17


def test_a_sensor_on_a_tool_input_tells_an_object_from_nothing(
    fake: FakeUrClient, make_gripper: Callable[..., Gripper]
) -> None:
    gripper = make_gripper(grip_input=0)
    assert gripper.senses_object
    on_nothing = gripper.close(0.1, 10.0, TIMEOUT_S)
    assert not on_nothing.object_detected and on_nothing.width_m == gripper.min_width_m
    gripper.open(0.1, 10.0, TIMEOUT_S)
    fake.set_digital_inputs(TOOL_IN_0)
    assert gripper.close(0.1, 10.0, TIMEOUT_S).object_detected
    assert not gripper.open(0.1, 10.0, TIMEOUT_S).object_detected  # open: nothing held, whatever the sensor says


def test_widths_between_open_and_closed_are_refused(fake: FakeUrClient, make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper(max_width_m=0.04)
    with pytest.raises(GripperError, match=r"only opens \(0.04 m\) or closes"):
        gripper.move_to_width(0.02, 0.1, 10.0, TIMEOUT_S)
    assert fake.state()["digital_output_bits"] == 0


def test_a_controller_that_never_answers_is_named_before_ur_rtde_could_block(procs: ProcessGroup) -> None:
    host = unique_loopback_host()
    start_fake_robotiq(procs, "--silent", urcap_host=host, port=30004)  # accepts, never answers
    gripper = gripper_factory("ur_tool_io")(None, host=host, timeout_s=0.3)
    with pytest.raises(GripperError, match=rf"RTDE port {host}:30004 did not answer within 0.3 s"):
        gripper.connect()


def test_bad_wiring_options_are_refused() -> None:
    with pytest.raises(GripperError, match="close_output 2 is not a UR tool digital I/O"):
        gripper_factory("ur_tool_io")(None, host="127.0.0.1", close_output=2)
    with pytest.raises(GripperError, match="both tool output 0"):
        gripper_factory("ur_tool_io")(None, host="127.0.0.1", open_output=0)


def test_outputs_owned_by_another_rtde_client_are_reported(fake: FakeUrClient) -> None:
    import rtde_io

    other = rtde_io.RTDEIOInterface(fake.host)  # e.g. a PLC adapter or another program on the same registers
    gripper = gripper_factory("ur_tool_io")(None, host=fake.host)
    try:
        with pytest.raises(GripperError, match=rf"could not open the I/O interface of the UR at {fake.host} "
                                               r"\(One of the RTDE input registers are already in use"):
            gripper.connect()
    finally:
        gripper.disconnect()
        other.disconnect()
    assert fake.state()["digital_output_bits"] == 0
