"""The Fast DDS profile every node starts with (ros/dds.py): chosen only where the user chose nothing,
and large enough for a 1280x720 color + aligned-depth pair. Its effect end to end (every frame reaches
another process) is tested in test_camera_node.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from spatial_trace_ros.ros.dds import (
    LARGE_MESSAGE_SEGMENT_BYTES,
    PROFILE_ENV_VARS,
    large_message_profile,
    use_large_message_profile,
)

NS = {"dds": "http://www.eprosima.com"}
PAIR_720P_BYTES = 1280 * 720 * 3 + 1280 * 720 * 2


@pytest.mark.parametrize("rmw", [None, "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"])
@pytest.mark.parametrize(("distro", "variable"), [
    (None, "FASTDDS_DEFAULT_PROFILES_FILE"),  # the Kilted wheels of .venv set no ROS_DISTRO
    ("kilted", "FASTDDS_DEFAULT_PROFILES_FILE"), ("rolling", "FASTDDS_DEFAULT_PROFILES_FILE"),
    ("jazzy", "FASTRTPS_DEFAULT_PROFILES_FILE"), ("humble", "FASTRTPS_DEFAULT_PROFILES_FILE"),
])
def test_fast_dds_gets_the_packaged_profile_when_nothing_was_chosen(rmw: str | None, distro: str | None,
                                                                    variable: str) -> None:
    environ = {} if rmw is None else {"RMW_IMPLEMENTATION": rmw}
    if distro is not None:
        environ["ROS_DISTRO"] = distro
    profile = use_large_message_profile(environ)
    assert profile is not None and profile.is_file()
    assert environ[variable] == str(profile)
    assert [name for name in PROFILE_ENV_VARS if name in environ] == [variable], "only the name Fast DDS reads"


@pytest.mark.parametrize("name", [*PROFILE_ENV_VARS, "FASTDDS_BUILTIN_TRANSPORTS"])
def test_a_profile_or_transports_the_user_set_are_kept(name: str) -> None:
    environ = {name: "/etc/my_fastdds.xml"}
    assert use_large_message_profile(environ) is None
    assert environ == {name: "/etc/my_fastdds.xml"}


def test_other_rmws_are_left_alone() -> None:
    environ = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert use_large_message_profile(environ) is None
    assert environ == {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}


def test_profile_keeps_the_default_transports_with_a_segment_for_two_720p_pairs() -> None:
    root = ET.parse(large_message_profile()).getroot()
    descriptors = {d.findtext("dds:transport_id", namespaces=NS): d
                   for d in root.iterfind(".//dds:transport_descriptor", NS)}
    participant = root.find(".//dds:participant", NS)
    assert participant is not None and participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id", NS)]
    assert sorted(descriptors[t].findtext("dds:type", namespaces=NS) for t in used) == ["SHM", "UDPv4"]
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=NS) == "false"
    shm = next(descriptors[t] for t in used if descriptors[t].findtext("dds:type", namespaces=NS) == "SHM")
    segment = int(shm.findtext("dds:segment_size", namespaces=NS))
    assert segment == LARGE_MESSAGE_SEGMENT_BYTES >= 2 * PAIR_720P_BYTES
