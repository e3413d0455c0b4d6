"""The ``unitree_hg`` DDS messages the G1 arm speaks, and how to join the robot's DDS domain.

The types are written here (the PyPI ``unitree_sdk2`` wheel is broken) with the robot's exact type
names (``unitree_hg::msg::dds_::LowCmd_`` ...), final extensibility and field layout, so a real G1
and the fake G1 both accept them. Importing this module needs ``cyclonedds`` (``pip install .[g1]``).
"""

import socket
import threading
from dataclasses import dataclass, field

import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as types
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.robots.g1.motors import NUM_MOTORS

# Topics of the G1 low-level interface. Readers and writers use Cyclone's default QoS, as the Unitree
# SDK does (reliable writers, best-effort readers, newest sample only), so they match the robot's.
ARM_SDK_TOPIC = "rt/arm_sdk"
LOWSTATE_TOPIC = "rt/lowstate"
LOOPBACK_INTERFACES = ("lo", "127.0.0.1", "localhost")


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorCmd_(IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):  # noqa: N801 - the robot's type name
    mode: types.uint8 = 0
    q: types.float32 = 0.0
    dq: types.float32 = 0.0
    tau: types.float32 = 0.0
    kp: types.float32 = 0.0
    kd: types.float32 = 0.0
    reserve: types.uint32 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowCmd_(IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):  # noqa: N801
    mode_pr: types.uint8 = 0
    mode_machine: types.uint8 = 0
    motor_cmd: types.array[MotorCmd_, NUM_MOTORS] = field(
        default_factory=lambda: [MotorCmd_() for _ in range(NUM_MOTORS)]
    )
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])
    crc: types.uint32 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class IMUState_(IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):  # noqa: N801
    quaternion: types.array[types.float32, 4] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    gyroscope: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    accelerometer: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rpy: types.array[types.float32, 3] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    temperature: types.int16 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class MotorState_(IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):  # noqa: N801
    mode: types.uint8 = 0
    q: types.float32 = 0.0
    dq: types.float32 = 0.0
    ddq: types.float32 = 0.0
    tau_est: types.float32 = 0.0
    temperature: types.array[types.int16, 2] = field(default_factory=lambda: [0, 0])
    vol: types.float32 = 0.0
    sensor: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])
    motorstate: types.uint32 = 0
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])


@dataclass
@annotate.final
@annotate.autoid("sequential")
class LowState_(IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):  # noqa: N801
    version: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])
    mode_pr: types.uint8 = 0
    mode_machine: types.uint8 = 0
    tick: types.uint32 = 0
    imu_state: IMUState_ = field(default_factory=IMUState_)
    motor_state: types.array[MotorState_, NUM_MOTORS] = field(
        default_factory=lambda: [MotorState_() for _ in range(NUM_MOTORS)]
    )
    wireless_remote: types.array[types.uint8, 40] = bytes(40)  # uint8 arrays travel as bytes
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])
    crc: types.uint32 = 0


# The Dex3-1 hands (``unitree_hg`` HandCmd_/HandState_ of unitree_sdk2): 7 motors per hand, commands on
# ``rt/dex3/<side>/cmd``, state on ``rt/dex3/<side>/state`` (``rt/lf/dex3/<side>/state`` at a low rate).
DEX3_MOTORS = 7


def dex3_topics(side: str) -> tuple[str, str]:
    """(command topic, state topic) of the ``left`` or ``right`` hand."""
    return f"rt/dex3/{side}/cmd", f"rt/dex3/{side}/state"


@dataclass
@annotate.final
@annotate.autoid("sequential")
class HandCmd_(IdlStruct, typename="unitree_hg.msg.dds_.HandCmd_"):  # noqa: N801
    motor_cmd: types.sequence[MotorCmd_] = field(default_factory=lambda: [MotorCmd_() for _ in range(DEX3_MOTORS)])
    reserve: types.array[types.uint32, 4] = field(default_factory=lambda: [0, 0, 0, 0])


@dataclass
@annotate.final
@annotate.autoid("sequential")
class PressSensorState_(IdlStruct, typename="unitree_hg.msg.dds_.PressSensorState_"):  # noqa: N801
    pressure: types.array[types.float32, 12] = field(default_factory=lambda: [0.0] * 12)
    temperature: types.array[types.float32, 12] = field(default_factory=lambda: [0.0] * 12)
    lost: types.uint32 = 0
    reserve: types.uint32 = 0


@dataclass
@annotate.final
@annotate.autoid("sequential")
class HandState_(IdlStruct, typename="unitree_hg.msg.dds_.HandState_"):  # noqa: N801
    motor_state: types.sequence[MotorState_] = field(
        default_factory=lambda: [MotorState_() for _ in range(DEX3_MOTORS)]
    )
    press_sensor_state: types.sequence[PressSensorState_] = field(default_factory=list)
    imu_state: IMUState_ = field(default_factory=IMUState_)
    power_v: types.float32 = 0.0
    power_a: types.float32 = 0.0
    system_v: types.float32 = 0.0
    device_v: types.float32 = 0.0
    error: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])
    reserve: types.array[types.uint32, 2] = field(default_factory=lambda: [0, 0])


def dds_config_xml(network_interface: str) -> str:
    """Cyclone DDS configuration for one network interface.

    On loopback (tests, a robot simulated on this PC) multicast does not exist, so discovery goes to
    unicast peers on 127.0.0.1 with automatic participant indices.
    """
    if network_interface in LOOPBACK_INTERFACES:
        return (
            "<CycloneDDS><Domain id=\"any\"><General><Interfaces><NetworkInterface name=\"lo\"/></Interfaces>"
            "<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
            "<MaxAutoParticipantIndex>30</MaxAutoParticipantIndex><Peers><Peer address=\"127.0.0.1\"/></Peers>"
            "</Discovery></Domain></CycloneDDS>"
        )
    if network_interface.replace(".", "").isdigit():
        selector = f"address=\"{network_interface}\""  # the PC's own IP on the robot's network
    else:
        names = [name for _, name in socket.if_nameindex()]
        if network_interface not in names:
            raise ConfigError(
                f"network interface {network_interface!r} does not exist on this PC; available: {', '.join(names)} "
                "(set network_interface to the one on the robot's 192.168.123.x network)"
            )
        selector = f"name=\"{network_interface}\""
    return (
        "<CycloneDDS><Domain id=\"any\"><General><Interfaces>"
        f"<NetworkInterface {selector} priority=\"default\" multicast=\"default\"/>"
        "</Interfaces></General></Domain></CycloneDDS>"
    )


_domains: dict[int, tuple[Domain | None, str]] = {}
_domains_lock = threading.Lock()


def join_domain(domain_id: int, network_interface: str) -> DomainParticipant:
    """A participant in ``domain_id`` bound to ``network_interface`` ('' = CYCLONEDDS_URI or defaults).

    Cyclone configures a domain once per process, so every participant of one domain in a process
    shares the first one's interface; asking for another interface is an error, not a silent mix.
    """
    with _domains_lock:
        if domain_id in _domains:
            configured = _domains[domain_id][1]
            if configured != network_interface:
                raise ConfigError(
                    f"DDS domain {domain_id} is already set up on interface {configured!r} in this process; "
                    f"use the same network_interface (not {network_interface!r}) or another domain"
                )
        else:
            domain = Domain(domain_id, dds_config_xml(network_interface)) if network_interface else None
            _domains[domain_id] = (domain, network_interface)
    return DomainParticipant(domain_id)
