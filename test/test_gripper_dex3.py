"""The G1's Dex3-1 hand as a gripper, through real Cyclone DDS against a fake hand in its own process."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("cyclonedds")

from spatial_trace_ros.robots.g1 import idl
from spatial_trace_ros.testing.fake_dex3 import start_fake_dex3
from spatial_trace_ros.testing.processes import ProcessGroup
from spatial_trace_ros.tools.dex3 import Dex3Hand
from spatial_trace_ros.tools.gripper import GripperError, gripper_factory

TIMEOUT_S = 10.0
_used: set[int] = set()


def fresh_domain() -> int:
    rng = random.SystemRandom()
    while (d := rng.randint(100, 229)) in _used:
        pass
    _used.add(d)
    return d


@pytest.fixture
def make_hand(procs: ProcessGroup, tmp_path: Path) -> Iterator[Callable[..., tuple[Dex3Hand, Path]]]:
    hands: list[Dex3Hand] = []

    def make(*fake_args: str, side: str = "left", connect: bool = True, **options: object) -> tuple[Dex3Hand, Path]:
        domain = fresh_domain()
        status = start_fake_dex3(procs, tmp_path / f"dex3_{domain}.json", domain, "--side", side, *fake_args)
        hand = gripper_factory("dex3")(None, side=side, domain_id=domain, network_interface="lo", **options)
        hands.append(hand)
        if connect:
            hand.connect()
        return hand, status

    yield make
    for hand in hands:
        hand.disconnect()


@pytest.mark.parametrize("cls", [idl.HandCmd_, idl.HandState_, idl.PressSensorState_])
def test_hand_messages_keep_the_robot_type_names(cls: type) -> None:
    from cyclonedds.topic import Topic

    participant = idl.join_domain(231, "lo")
    assert Topic(participant, f"test/{cls.__name__}", cls).typename == f"unitree_hg::msg::dds_::{cls.__name__}"
    assert cls.__idl_annotations__["extensibility"] == "final"


def test_hand_messages_round_trip() -> None:
    state = idl.HandState_(press_sensor_state=[idl.PressSensorState_(lost=3)], error=[7, 0])
    back = idl.HandState_.deserialize(state.serialize())
    assert len(back.motor_state) == 7 and back.press_sensor_state[0].lost == 3 and back.error == [7, 0]
    assert idl.dex3_topics("right") == ("rt/dex3/right/cmd", "rt/dex3/right/state")


def test_close_on_an_object_stalls_the_fingers_and_reports_it(make_hand: Callable[..., tuple]) -> None:
    hand, status = make_hand("--object-fraction", "0.5")
    assert hand.activate(TIMEOUT_S).width_m == pytest.approx(hand.max_width_m, abs=1e-3)
    state = hand.close(0.2, 10.0, TIMEOUT_S)
    assert state.object_detected and not state.moving
    assert state.width_m == pytest.approx(0.5 * hand.max_width_m, abs=0.005)
    seen = json.loads(status.read_text())
    assert seen["modes"] == [i | 0x10 for i in range(7)]  # motor id and status 1 in the RIS mode byte
    assert seen["kp"] == pytest.approx([1.5] * 7)  # full force = the stiffest grip
    opened = hand.open(0.2, 5.0, TIMEOUT_S)
    assert not opened.object_detected and opened.width_m == pytest.approx(hand.max_width_m, abs=0.005)


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_grasp_that_closes_on_nothing_ends_at_min_width(make_hand: Callable[..., tuple], side: str) -> None:
    hand, status = make_hand(side=side)
    state = hand.close(0.2, 5.0, TIMEOUT_S)
    assert not state.object_detected
    assert state.width_m == pytest.approx(hand.min_width_m, abs=0.003)
    q = json.loads(status.read_text())["q"]
    assert q[2] == pytest.approx(1.2 if side == "left" else -1.2, abs=0.02)  # thumb_2 at the closed pose


def test_move_to_width_sends_targets_on_the_open_close_line(make_hand: Callable[..., tuple]) -> None:
    hand, status = make_hand()
    state = hand.move_to_width(0.025, 0.1, 2.0, TIMEOUT_S)
    assert state.width_m == pytest.approx(0.025, abs=0.003) and not state.object_detected
    seen = json.loads(status.read_text())
    assert seen["target"][4] == pytest.approx(-1.4 * 0.75, abs=1e-4)  # middle_1 three quarters closed
    assert seen["kp"] == pytest.approx([1.5 * 2.0 / 10.0] * 7)


def test_a_hand_error_is_surfaced_and_nothing_moves(make_hand: Callable[..., tuple]) -> None:
    hand, status = make_hand("--error", "0x40")
    with pytest.raises(GripperError, match=r"Dex3 left hand reports hand error words 0x00000040"):
        hand.close(0.2, 5.0, TIMEOUT_S)
    assert json.loads(status.read_text())["commands"] == 0


def test_a_silent_hand_is_named_with_its_topics(make_hand: Callable[..., tuple]) -> None:
    hand, _ = make_hand("--silent", connect=False, connect_timeout_s=0.5)
    with pytest.raises(GripperError, match=r"no HandState_ from the Dex3 left hand \(rt/dex3/left/cmd, "
                                           r"rt/dex3/left/state; DDS domain \d+, interface lo\) within 0.5 s"):
        hand.connect()


def test_out_of_range_commands_are_refused(make_hand: Callable[..., tuple]) -> None:
    hand, status = make_hand()
    with pytest.raises(GripperError, match=r"force \[N\] 50 is outside 0..10"):
        hand.close(0.2, 50.0, TIMEOUT_S)
    assert json.loads(status.read_text())["commands"] == 0
    with pytest.raises(GripperError, match="unknown Dex3 hand side 'middle'"):
        gripper_factory("dex3")(None, side="middle")
