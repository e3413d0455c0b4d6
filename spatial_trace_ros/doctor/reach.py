"""Can this PC reach what the stack talks to: the UR controller (dashboard and RTDE, spoken in their
own protocols), the G1 (rt/lowstate on DDS), the trace model server (HTTP, /readyz)."""

from __future__ import annotations

import socket
import struct
import time

from spatial_trace_ros.doctor.findings import Finding, Level

DASHBOARD_PORT = 29999
RTDE_PORT = 30004
RTDE_HEADER = struct.Struct(">HB")
RTDE_REQUEST_PROTOCOL_VERSION = 86  # 'V'
RTDE_GET_URCONTROL_VERSION = 118  # 'v'
RTDE_PROTOCOL_VERSION = 2
READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the controller closed the connection")
        data += chunk
    return data


def _rtde_request(sock: socket.socket, msg_type: int, payload: bytes = b"") -> bytes:
    sock.sendall(RTDE_HEADER.pack(RTDE_HEADER.size + len(payload), msg_type) + payload)
    while True:  # skip text messages the controller may send in between
        size, reply_type = RTDE_HEADER.unpack(_recv_exact(sock, RTDE_HEADER.size))
        body = _recv_exact(sock, size - RTDE_HEADER.size)
        if reply_type == msg_type:
            return body


def check_ur(host: str, timeout_s: float) -> list[Finding]:
    """The dashboard server's greeting and robot mode, then an RTDE protocol handshake (version 2)
    and the controller version: what ur_rtde does first, with a timeout (ur_rtde itself can block)."""
    findings = []
    try:
        with socket.create_connection((host, DASHBOARD_PORT), timeout=timeout_s) as sock:
            stream = sock.makefile("rwb")
            greeting = stream.readline().decode(errors="replace").strip()
            stream.write(b"robotmode\n")
            stream.flush()
            mode = stream.readline().decode(errors="replace").strip()
        level = Level.OK if mode.endswith("RUNNING") else Level.WARN
        findings.append(Finding("ur dashboard", level, f"{host}:{DASHBOARD_PORT} {greeting!r}, {mode}",
                                "power on and release the brakes on the pendant (robot mode RUNNING)"))
    except OSError as err:
        findings.append(Finding("ur dashboard", Level.FAIL, f"{host}:{DASHBOARD_PORT} not reachable ({err})",
                                "check robot_ip, the cable and that the PC is on the robot's subnet"))
    try:
        with socket.create_connection((host, RTDE_PORT), timeout=timeout_s) as sock:
            accepted = _rtde_request(sock, RTDE_REQUEST_PROTOCOL_VERSION, struct.pack(">H", RTDE_PROTOCOL_VERSION))
            if not accepted or not accepted[0]:
                findings.append(Finding("ur rtde", Level.FAIL, f"{host}:{RTDE_PORT} refused RTDE protocol 2",
                                        "update PolyScope (RTDE v2 needs CB3 3.4 / e-Series 5.0 or newer)"))
                return findings
            major, minor, bugfix, build = struct.unpack(">IIII", _rtde_request(sock, RTDE_GET_URCONTROL_VERSION)[:16])
        findings.append(Finding("ur rtde", Level.OK, f"{host}:{RTDE_PORT} RTDE v2, controller {major}.{minor}.{bugfix}"
                                f".{build}"))
    except (OSError, struct.error) as err:
        findings.append(Finding("ur rtde", Level.FAIL, f"{host}:{RTDE_PORT} no RTDE answer ({err})",
                                "enable remote control on the pendant; check that no firewall blocks port 30004"))
    return findings


def check_g1(network_interface: str, domain_id: int, timeout_s: float) -> list[Finding]:
    """One rt/lowstate sample with a matching crc on ``network_interface``, as the G1 driver needs."""
    where = f"interface {network_interface or '(default)'}, DDS domain {domain_id}"
    try:
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        from spatial_trace_ros.robots.g1 import idl
        from spatial_trace_ros.robots.g1.crc import low_state_crc
    except ImportError as err:
        return [Finding("g1 lowstate", Level.FAIL, f"cyclonedds not importable ({err})",
                        "pip install '.[g1]' (cyclonedds 0.10.2 built against cyclonedds-dev, docs/g1.md)")]
    try:
        participant = idl.join_domain(domain_id, network_interface)
        reader = DataReader(participant, Topic(participant, idl.LOWSTATE_TOPIC, idl.LowState_))
    except Exception as err:  # ConfigError names the interfaces; Cyclone raises its own DDSException
        return [Finding("g1 lowstate", Level.FAIL, f"cannot join {where}: {err}",
                        "set network_interface to the PC's port on the robot's 192.168.123.x network")]
    deadline = time.monotonic() + timeout_s
    bad_crc = 0
    while time.monotonic() < deadline:
        for sample in reader.take(N=8):
            if not isinstance(sample, idl.LowState_):
                continue
            if low_state_crc(sample) == sample.crc:
                return [Finding("g1 lowstate", Level.OK, f"rt/lowstate on {where}")]
            bad_crc += 1
        time.sleep(0.01)
    crc = f" ({bad_crc} samples failed their crc)" if bad_crc else ""
    return [Finding("g1 lowstate", Level.FAIL, f"no rt/lowstate within {timeout_s:g} s on {where}{crc}",
                    "is the robot on and the cable plugged in; is network_interface the port on its network?")]


def check_model_server(base_url: str, backend: str, timeout_s: float) -> list[Finding]:
    """This project's server (backend http) must answer /readyz with 200; other APIs have no readiness
    route, so for them any HTTP answer means reachable."""
    import httpx

    base = base_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout_s) as client:
            if backend != "http":
                status = client.get(base + ("/v1/models" if backend == "openai" else "/")).status_code
                return [Finding("model server", Level.OK, f"{base} answers HTTP ({status}); {backend} API has no "
                                "readiness route")]
            ready = client.get(base + READY_PATH)
    except httpx.HTTPError as err:
        return [Finding("model server", Level.FAIL, f"{base} not reachable ({type(err).__name__}: {err})",
                        "start `spatial-trace serve` on the GPU host; check backend_url and the firewall")]
    if ready.status_code == 200:
        return [Finding("model server", Level.OK, f"{base} ready")]
    if ready.status_code == 503:
        return [Finding("model server", Level.WARN, f"{base} up but not ready: {ready.text[:200]}",
                        "wait for the model to load and warm up, then check again")]
    return [Finding("model server", Level.FAIL, f"{base}{READY_PATH} answered {ready.status_code}",
                    "is this spatial_trace_ros's server (backend http)? otherwise set --backend to its API")]
