"""Robotiq 2F grippers through the real clients: the URCap socket client and the Modbus RTU client,
each against a fake gripper in its own process (TCP on loopback, or a pseudo-terminal)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spatial_trace_ros.testing.fake_robotiq import start_fake_robotiq
from spatial_trace_ros.testing.processes import ProcessGroup, wait_for
from spatial_trace_ros.tools.gripper import Gripper, GripperError, gripper_factory
from spatial_trace_ros.tools.robotiq import RobotiqGripper
from spatial_trace_ros.tools.robotiq_urcap import UrcapLink

TIMEOUT_S = 10.0
SPEED_MPS, FORCE_N = 0.15, 100.0


def urcap_gripper(procs: ProcessGroup, tmp_path: Path, *fake_args: str, model: str = "2f85",
                  timeout_s: float = 2.0) -> Gripper:
    host, _, port = start_fake_robotiq(procs, "--model", model, *fake_args).rpartition(":")
    return gripper_factory("robotiq_urcap")(None, host=host, port=int(port), model=model, timeout_s=timeout_s)


def modbus_gripper(procs: ProcessGroup, tmp_path: Path, *fake_args: str, model: str = "2f85",
                   timeout_s: float = 2.0) -> Gripper:
    port = start_fake_robotiq(procs, "--model", model, *fake_args, rtu_link=tmp_path / "pty")
    return gripper_factory("robotiq_modbus")(None, port=port, model=model, timeout_s=timeout_s)


LINKS: dict[str, Callable[..., Gripper]] = {"urcap": urcap_gripper, "modbus": modbus_gripper}


@pytest.fixture(params=sorted(LINKS))
def make_gripper(request: pytest.FixtureRequest, procs: ProcessGroup, tmp_path: Path) -> Callable[..., Gripper]:
    made: list[Gripper] = []

    def make(*fake_args: str, **options: object) -> Gripper:
        gripper = LINKS[request.param](procs, tmp_path, *fake_args, **options)
        made.append(gripper)
        gripper.connect()
        return gripper

    yield make
    for gripper in made:
        gripper.disconnect()


def test_activation_then_close_on_an_object_reports_its_width(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper("--object-width-m", "0.040")
    assert not gripper.read_state().activated
    state = gripper.activate(TIMEOUT_S)
    assert state.activated and state.width_m == pytest.approx(0.085, abs=1e-3)
    closed = gripper.close(SPEED_MPS, FORCE_N, TIMEOUT_S)
    assert closed.object_detected and not closed.moving
    assert closed.width_m == pytest.approx(0.040, abs=0.001)
    opened = gripper.open(SPEED_MPS, FORCE_N, TIMEOUT_S)
    assert not opened.object_detected and opened.width_m == pytest.approx(0.085, abs=1e-3)


def test_a_grasp_that_closes_on_nothing_ends_at_min_width(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper()
    gripper.activate(TIMEOUT_S)
    state = gripper.close(SPEED_MPS, FORCE_N, TIMEOUT_S)
    assert not state.object_detected
    assert state.width_m == pytest.approx(gripper.min_width_m, abs=1e-3)


def test_move_to_width_on_the_2f140_maps_counts_to_its_stroke(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper(model="2f140")
    assert gripper.max_width_m == pytest.approx(0.140)
    gripper.activate(TIMEOUT_S)
    state = gripper.move_to_width(0.070, 0.25, 50.0, TIMEOUT_S)
    assert state.width_m == pytest.approx(0.070, abs=0.001) and not state.object_detected


def test_a_fault_is_surfaced_in_words(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper("--fault", "0x0E")
    with pytest.raises(GripperError, match=r"0x0E: overcurrent"):
        gripper.activate(TIMEOUT_S)
    assert "overcurrent" in gripper.read_state().fault


def test_out_of_range_commands_are_refused_before_anything_is_sent(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper()
    gripper.activate(TIMEOUT_S)
    with pytest.raises(GripperError, match=r"width \[m\] 0.2 is outside 0..0.085"):
        gripper.move_to_width(0.2, SPEED_MPS, FORCE_N, TIMEOUT_S)
    with pytest.raises(GripperError, match=r"force \[N\] 500 is outside 20..235"):
        gripper.close(SPEED_MPS, 500.0, TIMEOUT_S)
    assert gripper.read_state().width_m == pytest.approx(0.085, abs=1e-3)


def test_moving_before_activation_is_refused(make_gripper: Callable[..., Gripper]) -> None:
    gripper = make_gripper()
    with pytest.raises(GripperError, match="not activated"):
        gripper.close(SPEED_MPS, FORCE_N, TIMEOUT_S)


def test_a_gripper_that_never_answers_names_where_and_what_to_check(procs: ProcessGroup, tmp_path: Path) -> None:
    gripper = urcap_gripper(procs, tmp_path, "--silent", timeout_s=0.3)
    gripper.connect()
    expected = r"no answer from the Robotiq URCap socket 127.0.0.1:\d+ within 0.3 s.*URCap"
    with pytest.raises(GripperError, match=expected):
        gripper.read_state()


def test_nobody_listening_is_a_clear_connect_error(procs: ProcessGroup) -> None:
    from spatial_trace_ros.testing.processes import free_port

    port = free_port()
    gripper = gripper_factory("robotiq_urcap")(None, host="127.0.0.1", port=port)
    with pytest.raises(GripperError, match=rf"cannot connect to the Robotiq URCap socket 127.0.0.1:{port}"):
        gripper.connect()


def test_a_silent_modbus_gripper_names_the_serial_port(procs: ProcessGroup, tmp_path: Path) -> None:
    gripper = modbus_gripper(procs, tmp_path, "--silent", timeout_s=0.3)
    with pytest.raises(GripperError, match=r"no answer from the Robotiq on /dev/pts/\d+ \(slave 9, 115200 baud\)"):
        gripper.connect()  # connecting reads the status, so a silent gripper is found at once
    gripper.disconnect()


def test_a_missing_serial_port_is_named() -> None:
    gripper = gripper_factory("robotiq_modbus")(None, port="/dev/ttyNOSUCH0")
    with pytest.raises(GripperError, match="cannot open the Robotiq serial port /dev/ttyNOSUCH0"):
        gripper.connect()


def test_unknown_model_and_missing_host_are_config_errors() -> None:
    with pytest.raises(GripperError, match="unknown Robotiq model 'hand-e'; available: 2f85, 2f140"):
        gripper_factory("robotiq_urcap")(None, host="127.0.0.1", model="hand-e")
    with pytest.raises(GripperError, match="needs host="):
        gripper_factory("robotiq_urcap")(None)
    with pytest.raises(GripperError, match="needs port="):
        gripper_factory("robotiq_modbus")(None)


def test_factory_reads_the_tool_description_when_given() -> None:
    class Description:
        class gripper:  # noqa: N801 - shaped like the tool description's gripper section
            model = "2f140"
            host = "127.0.0.9"

    gripper = gripper_factory("robotiq_urcap")(Description())
    assert gripper.max_width_m == pytest.approx(0.140) and "127.0.0.9:63352" in gripper.endpoint


@given(width_m=st.floats(0.0, 0.140), closed_count=st.integers(200, 255), model=st.sampled_from(["2f85", "2f140"]))
def test_width_to_count_round_trips_within_one_count(width_m: float, closed_count: int, model: str) -> None:
    gripper = RobotiqGripper(UrcapLink("127.0.0.1"), model, open_count=3, closed_count=closed_count)
    width_m = min(width_m, gripper.max_width_m)
    count = gripper.width_to_count(width_m)
    assert 3 <= count <= closed_count
    resolution_m = gripper.max_width_m / (closed_count - 3)
    assert abs(gripper.count_to_width(count) - width_m) <= resolution_m / 2 + 1e-12
    assert gripper.width_to_count(0.0) == closed_count and gripper.width_to_count(gripper.max_width_m) == 3


def test_an_object_that_slips_out_shows_in_the_state(make_gripper: Callable[..., Gripper],
                                                     procs: ProcessGroup) -> None:
    gripper = make_gripper("--object-width-m", "0.030")
    gripper.activate(TIMEOUT_S)
    assert gripper.close(SPEED_MPS, FORCE_N, TIMEOUT_S).object_detected
    procs.processes[-1].popen.send_signal(signal.SIGUSR1)
    wait_for(lambda: (s := gripper.read_state()).width_m < 0.001 and not s.moving, TIMEOUT_S,
             "the fingers to close on once the object is gone")
    assert not gripper.read_state().object_detected
