"""A fake UR controller process that the real ur_rtde client library accepts.

It listens on one loopback address (tests use a distinct 127.x.y.z each, because ur_rtde's ports are
fixed) on the RTDE port 30004, the script port 30003 and the dashboard port 29999, runs the control
loop at the controller rate (125 Hz for CB3 arms, 500 Hz for e-Series) in one thread, and streams
RTDE output packages to every synchronised client. A JSON-over-HTTP control port lets a test read
the arm's state and TCP log and inject faults: protective stop, emergency stop, a dropped network
(all sockets closed, new connections refused until cleared), an arm that silently stops following
commands (``stuck_arm``) or one pushed off its path (``displace``), immediately or after the arm has
moved for a given time. A protective stop can be unlocked from the dashboard 5 s after it happened,
as on a real controller.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import selectors
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from spatial_trace_ros.robots.ur.pose_vector import ur_pose
from spatial_trace_ros.testing.fake_ur import dashboard
from spatial_trace_ros.testing.fake_ur.arm import InverseKinematicsError, SimulatedArm
from spatial_trace_ros.testing.fake_ur.control_script import (
    MOTION_COMMANDS,
    ControlScript,
    command_name,
)
from spatial_trace_ros.testing.fake_ur.digital_io import DigitalIo
from spatial_trace_ros.testing.fake_ur.kinematics import FakeArmKinematics
from spatial_trace_ros.testing.fake_ur.rtde_protocol import (
    FrameReader,
    MessageType,
    Recipe,
    frame,
    input_type,
    output_type,
    parse_input_setup,
    parse_output_setup,
)

RTDE_PORT = 30004
SCRIPT_PORT = 30003
DASHBOARD_PORT = 29999
LOG_LENGTH = 200_000
TRANSITION_LOG_LENGTH = 20_000

# robot_mode, safety_mode and runtime_state values of the RTDE guide.
ROBOT_MODE_POWER_OFF, ROBOT_MODE_RUNNING = 3, 7
SAFETY_MODES = {"NORMAL": 1, "PROTECTIVE_STOP": 3, "ROBOT_EMERGENCY_STOP": 7}
SAFETY_STATUS_BITS = {
    "NORMAL": 1 << 0,
    "PROTECTIVE_STOP": (1 << 2) | (1 << 10),
    "ROBOT_EMERGENCY_STOP": (1 << 6) | (1 << 7) | (1 << 10),
}
RUNTIME_STATES = {"STOPPED": 1, "PLAYING": 2, "PAUSED": 4}
# A real controller refuses to unlock a protective stop until this long after it happened.
PROTECTIVE_STOP_UNLOCK_DELAY_S = 5.0
JOINT_MODE_RUNNING = 253


@dataclass(frozen=True)
class ControllerIdentity:
    """What the fake reports about itself: CB3 (PolyScope 3) for ur5, e-Series (PolyScope 5) for ur5e."""

    robot: str
    version: tuple[int, int, int, int]
    model_label: str
    rate_hz: float

    @property
    def polyscope_version(self) -> str:
        return ".".join(map(str, self.version))

    @classmethod
    def for_robot(cls, robot: str, rate_hz: float | None = None) -> ControllerIdentity:
        e_series = robot.endswith("e")
        version = (5, 11, 1, 108318) if e_series else (3, 15, 7, 106331)
        return cls(robot, version, robot.upper().replace("E", "e"), rate_hz or (500.0 if e_series else 125.0))


@dataclass
class FaultTrigger:
    kind: str
    after_motion_s: float


@dataclass
class _RtdeClient:
    sock: socket.socket
    reader: FrameReader = field(default_factory=FrameReader)
    output: Recipe | None = None
    inputs: dict[int, Recipe] = field(default_factory=dict)
    started: bool = False
    every_ticks: int = 1


@dataclass
class _TextClient:
    sock: socket.socket
    kind: str  # "script" or "dashboard"
    buffer: str = ""


FAULT_KINDS = ("protective_stop", "emergency_stop", "drop_connection", "stuck_arm", "displace")
# "displace": the arm is pushed this far about the base axis at once (a collision the controller did not
# notice), and stays there until the next command moves it.
DISPLACE_RAD = 0.15


class FakeUrController:
    """The controller: sockets, the control loop, the arm and the emulated control script."""

    def __init__(self, host: str, robot: str, q0: np.ndarray, control_port: int, rate_hz: float | None = None) -> None:
        self.host = host
        self.identity = ControllerIdentity.for_robot(robot, rate_hz)
        self.model = FakeArmKinematics(robot)
        self.arm = SimulatedArm(self.model, q0)
        self.script = ControlScript(self.arm, self.protective_stop)
        self.safety = "NORMAL"
        self.robot_mode = ROBOT_MODE_RUNNING
        self.offline = False
        self.serial_number = "20235500001"
        self.inputs: dict[str, Any] = {}
        self.io = DigitalIo()
        self.t0 = time.monotonic()
        self.now_s = self.t0
        self.trigger: FaultTrigger | None = None
        self.protective_stop_at_s = 0.0
        self.motion_time_s = 0.0
        self.faults: list[dict] = []
        self.secondary_programs = 0
        self.command_counts: dict[int, int] = {}
        self.transitions: deque[tuple[float, int]] = deque(maxlen=TRANSITION_LOG_LENGTH)
        self.last_command = 0
        self.motion_packages = 0
        self.log: deque[tuple[float, float, float, float]] = deque(maxlen=LOG_LENGTH)
        self.log_offset = 0
        self.ticks = 0
        self.late_ticks = 0
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[str, socket.socket] = {}
        self._clients: dict[socket.socket, _RtdeClient | _TextClient] = {}
        self._input_owners: dict[str, socket.socket] = {}
        self._requests: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._open_listeners()
        self._http = ThreadingHTTPServer((host, control_port), _make_handler(self._requests))
        self._http.daemon_threads = True
        self.control_port = self._http.server_address[1]

    # -- identity seen by the dashboard ---------------------------------------------------------------
    @property
    def polyscope_version(self) -> str:
        return self.identity.polyscope_version

    @property
    def model_label(self) -> str:
        return self.identity.model_label

    @property
    def robot_mode_name(self) -> str:
        return "RUNNING" if self.robot_mode == ROBOT_MODE_RUNNING else "POWER_OFF"

    @property
    def program_state_name(self) -> str:
        if self.script.running:
            return "PLAYING"
        return "PAUSED" if self.script.paused else "STOPPED"

    def dashboard_stop(self) -> None:
        self.script.terminate("program stopped from the dashboard")

    def dashboard_play(self) -> bool:
        return self.safety == "NORMAL" and self.script.resume(self.now_s)

    def dashboard_pause(self) -> None:
        self.script.pause("program paused from the dashboard")

    def unlock_protective_stop(self) -> bool:
        if self.safety != "PROTECTIVE_STOP" or self.now_s - self.protective_stop_at_s < PROTECTIVE_STOP_UNLOCK_DELAY_S:
            return False
        self.safety = "NORMAL"
        return True

    # -- faults ------------------------------------------------------------------------------------------
    def protective_stop(self, reason: str) -> None:
        self.arm.halt()
        self.safety = "PROTECTIVE_STOP"
        self.protective_stop_at_s = self.now_s
        self.script.pause(reason)
        self.faults.append({"kind": "protective_stop", "t": self.now_s, "reason": reason})

    def emergency_stop(self, reason: str) -> None:
        self.arm.halt()
        self.safety = "ROBOT_EMERGENCY_STOP"
        self.robot_mode = ROBOT_MODE_POWER_OFF
        self.script.terminate(reason)
        self.faults.append({"kind": "emergency_stop", "t": self.now_s, "reason": reason})

    def drop_connections(self) -> None:
        """The network goes away: every connection closes and new ones are refused. The program keeps
        running, so the arm keeps doing what it was told until the RTDE watchdog (if set) stops it."""
        for sock in list(self._clients):
            self._close(sock)
        for sock in self._listeners.values():
            self._selector.unregister(sock)
            sock.close()
        self._listeners.clear()
        self.offline = True
        self.faults.append({"kind": "drop_connection", "t": self.now_s, "reason": "network dropped"})

    def apply_fault(self, kind: str) -> None:
        if kind == "protective_stop":
            self.protective_stop("protective stop injected by the test")
        elif kind == "emergency_stop":
            self.emergency_stop("emergency stop injected by the test")
        elif kind == "drop_connection":
            self.drop_connections()
        elif kind == "stuck_arm":  # commands are taken, nothing moves, nothing is reported
            self.arm.stuck = True
            self.faults.append({"kind": kind, "t": self.now_s, "reason": "arm stuck"})
        elif kind == "displace":
            self.arm.q = self.arm.q + np.array([DISPLACE_RAD, 0.0, 0.0, 0.0, 0.0, 0.0])
            self.faults.append({"kind": kind, "t": self.now_s, "reason": "arm pushed"})
        else:
            raise ValueError(f"unknown fault {kind!r}; available: {', '.join(FAULT_KINDS)}")

    def clear_faults(self) -> None:
        self.arm.stuck = False
        self.safety = "NORMAL"
        self.robot_mode = ROBOT_MODE_RUNNING
        self.trigger = None
        if self.offline:
            self._open_listeners()
            self.offline = False

    # -- sockets -----------------------------------------------------------------------------------------
    def _open_listeners(self) -> None:
        for name, port in (("rtde", RTDE_PORT), ("script", SCRIPT_PORT), ("dashboard", DASHBOARD_PORT)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, port))
            except OSError as err:
                sock.close()
                raise OSError(f"cannot listen on {self.host}:{port} ({err}); is another fake or controller "
                              f"using this address? Use a different 127.x.y.z per fake.") from None
            sock.listen(8)
            sock.setblocking(False)
            self._listeners[name] = sock
            self._selector.register(sock, selectors.EVENT_READ, ("listen", name))

    def _accept(self, name: str) -> None:
        conn, _ = self._listeners[name].accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(1.0)  # sends only; reads happen when the selector says data is there
        client: _RtdeClient | _TextClient = _RtdeClient(conn) if name == "rtde" else _TextClient(conn, name)
        self._clients[conn] = client
        self._selector.register(conn, selectors.EVENT_READ, ("client", name))
        if name == "dashboard":
            self._send(conn, (dashboard.WELCOME + "\n").encode())

    def _close(self, sock: socket.socket) -> None:
        self._clients.pop(sock, None)
        self._input_owners = {name: owner for name, owner in self._input_owners.items() if owner is not sock}
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()

    def _send(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            self._close(sock)

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        client = self._clients[sock]
        if isinstance(client, _RtdeClient):
            try:
                messages = client.reader.feed(data)
            except ValueError:
                self._close(sock)
                return
            for msg_type, payload in messages:
                self._rtde_message(client, msg_type, payload)
        elif client.kind == "script":
            client.buffer += data.decode("utf-8", errors="replace")
            self._take_programs(client)
        else:
            client.buffer += data.decode("utf-8", errors="replace")
            while "\n" in client.buffer and sock in self._clients:
                line, client.buffer = client.buffer.split("\n", 1)
                reply, close = dashboard.answer(line, self)
                self._send(sock, (reply + "\n").encode())
                if close:
                    self._close(sock)

    # -- script port ---------------------------------------------------------------------------------------
    _PROGRAM_START = re.compile(r"^def\s+(\w+)\s*\(\s*\)\s*:", re.MULTILINE)
    _PROGRAM_END = re.compile(r"^end[ \t]*\r?$", re.MULTILINE)

    def _take_programs(self, client: _TextClient) -> None:
        """Programs arrive as ``def name(): ... end`` with the closing ``end`` in column 0."""
        while True:
            start = self._PROGRAM_START.search(client.buffer)
            if not start:
                return
            end = self._PROGRAM_END.search(client.buffer, start.end())
            if not end:
                return
            program = client.buffer[start.start() : end.end()]
            client.buffer = client.buffer[end.end() :]
            if start.group(1) == "rtde_control":
                self.script.load(program, self.now_s)
            else:
                self.secondary_programs += 1

    # -- RTDE ------------------------------------------------------------------------------------------------
    def _rtde_message(self, client: _RtdeClient, msg_type: int, payload: bytes) -> None:
        sock = client.sock
        if msg_type == MessageType.REQUEST_PROTOCOL_VERSION:
            (version,) = struct.unpack_from(">H", payload)
            self._send(sock, frame(MessageType.REQUEST_PROTOCOL_VERSION, bytes([1 if version in (1, 2) else 0])))
        elif msg_type == MessageType.GET_URCONTROL_VERSION:
            self._send(sock, frame(MessageType.GET_URCONTROL_VERSION, struct.pack(">IIII", *self.identity.version)))
        elif msg_type == MessageType.SETUP_OUTPUTS:
            frequency, names = parse_output_setup(payload)
            types = [output_type(n) or "NOT_FOUND" for n in names]
            ok = "NOT_FOUND" not in types and 0 < frequency <= self.identity.rate_hz
            if ok:
                client.output = Recipe(1, names, types, frequency)
                client.every_ticks = max(1, round(self.identity.rate_hz / frequency))
            self._send(sock, frame(MessageType.SETUP_OUTPUTS, bytes([1 if ok else 0]) + ",".join(types).encode()))
        elif msg_type == MessageType.SETUP_INPUTS:
            names = parse_input_setup(payload)
            # An input written by another connection is IN_USE, as on a real controller.
            types = ["IN_USE" if self._input_owners.get(n, sock) is not sock else (input_type(n) or "NOT_FOUND")
                     for n in names]
            recipe_id = 0
            if not {"NOT_FOUND", "IN_USE"} & set(types) and len(client.inputs) < 255:
                recipe_id = len(client.inputs) + 1
                client.inputs[recipe_id] = Recipe(recipe_id, names, types)
                self._input_owners.update(dict.fromkeys(names, sock))
            self._send(sock, frame(MessageType.SETUP_INPUTS, bytes([recipe_id]) + ",".join(types).encode()))
        elif msg_type == MessageType.START:
            client.started = client.output is not None
            self._send(sock, frame(MessageType.START, bytes([1 if client.started else 0])))
        elif msg_type == MessageType.PAUSE:
            client.started = False
            self._send(sock, frame(MessageType.PAUSE, b"\x01"))
        elif msg_type == MessageType.DATA_PACKAGE and payload:
            recipe = client.inputs.get(payload[0])
            if recipe is not None:
                self._input_package(recipe, recipe.unpack(payload[1:]))

    def _input_package(self, recipe: Recipe, values: dict[str, Any]) -> None:
        self.inputs.update(values)
        self.io.apply(values)
        self.script.note_input(recipe.names, time.monotonic())  # the arrival time, even after a stall
        key = f"input_int_register_{self.script.reg_offset}"
        if key in values:
            code = int(values[key])
            self.command_counts[code] = self.command_counts.get(code, 0) + 1
            if code in MOTION_COMMANDS:
                self.motion_packages += 1
            if code != self.last_command:
                self.transitions.append((time.monotonic(), code))
                self.last_command = code

    def _output_values(self) -> dict[str, Any]:
        arm, script = self.arm, self.script
        q, qd = arm.q.tolist(), arm.qd.tolist()
        tcp = ur_pose(arm.tcp)
        tcp_speed = arm.tcp_speed.tolist()
        program = self.program_state_name
        status_bits = (1 if self.robot_mode == ROBOT_MODE_RUNNING else 0) | (2 if script.running else 0)
        values: dict[str, Any] = {
            "timestamp": self.now_s - self.t0,
            "target_q": q, "actual_q": q, "target_qd": qd, "actual_qd": qd,
            "actual_TCP_pose": tcp, "target_TCP_pose": tcp, "actual_TCP_speed": tcp_speed,
            "target_TCP_speed": tcp_speed,
            "robot_mode": self.robot_mode,
            "joint_mode": [JOINT_MODE_RUNNING] * 6,
            "safety_mode": SAFETY_MODES[self.safety],
            "safety_status": SAFETY_MODES[self.safety],
            "safety_status_bits": SAFETY_STATUS_BITS[self.safety],
            "runtime_state": RUNTIME_STATES[program],
            "robot_status_bits": status_bits,
            "speed_scaling": 1.0,
            "target_speed_fraction": 1.0,
            "actual_main_voltage": 48.0,
            "actual_robot_voltage": 48.0,
            "actual_joint_voltage": [48.0] * 6,
            "joint_temperatures": [30.0] * 6,
            "actual_tool_accelerometer": [0.0, 0.0, 9.81],
            **self.io.outputs(),
        }
        return values

    @staticmethod
    def _default(typ: str) -> Any:
        if typ in ("VECTOR6D",):
            return [0.0] * 6
        if typ == "VECTOR3D":
            return [0.0] * 3
        if typ in ("VECTOR6INT32", "VECTOR6UINT32"):
            return [0] * 6
        if typ == "DOUBLE":
            return 0.0
        if typ == "BOOL":
            return False
        return 0

    def _value(self, name: str, typ: str, values: dict[str, Any]) -> Any:
        if name in values:
            return values[name]
        m = re.match(r"output_(int|double)_register_(\d+)$", name)
        if m:
            index = int(m.group(2))
            return self.script.out_int[index] if m.group(1) == "int" else self.script.out_double[index]
        return self.inputs.get(name, self._default(typ))

    def _publish(self) -> None:
        values: dict[str, Any] | None = None
        for client in list(self._clients.values()):
            if not isinstance(client, _RtdeClient) or not client.started or client.output is None:
                continue
            if self.ticks % client.every_ticks:
                continue
            if values is None:
                values = self._output_values()
            recipe = client.output
            body = recipe.pack({n: self._value(n, t, values) for n, t in zip(recipe.names, recipe.types, strict=True)})
            self._send(client.sock, frame(MessageType.DATA_PACKAGE, body))

    # -- control loop ------------------------------------------------------------------------------------------
    def _tick(self, dt: float) -> None:
        self.ticks += 1
        if self.trigger is not None and (self.arm.moving and self.motion_time_s >= self.trigger.after_motion_s):
            kind, self.trigger = self.trigger.kind, None
            self.apply_fault(kind)
        try:
            self.arm.step(dt)
        except InverseKinematicsError as err:
            self.script.motion_failed(err)
        if self.arm.moving:
            self.motion_time_s += dt
        self.script.tick(self.now_s, self.inputs)
        x, y, z = self.arm.tcp[:3, 3]
        self.log.append((self.now_s, float(x), float(y), float(z)))
        self._publish()

    def serve_forever(self) -> None:
        http_thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        http_thread.start()
        period = 1.0 / self.identity.rate_hz
        next_tick = time.monotonic() + period
        last_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                timeout = max(0.0, next_tick - time.monotonic())
                for key, _ in self._selector.select(timeout):
                    role, name = key.data
                    if role == "listen":
                        if name in self._listeners:
                            self._accept(name)
                    elif key.fileobj in self._clients:
                        self._read(key.fileobj)
                self._serve_requests()
                now = time.monotonic()
                if now >= next_tick:
                    self.now_s = now
                    self._tick(min(now - last_tick, 5 * period))
                    last_tick = now
                    next_tick += period
                    if next_tick < now:
                        self.late_ticks += 1
                        next_tick = now + period
        finally:
            self._http.shutdown()
            for sock in list(self._clients):
                self._close(sock)
            for sock in self._listeners.values():
                sock.close()

    def shutdown(self) -> None:
        self._stop.set()

    # -- HTTP control port --------------------------------------------------------------------------------------
    def _serve_requests(self) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                request.reply = (200, self._control(request.method, request.path, request.body))
            except (ValueError, KeyError, TypeError) as err:
                request.reply = (400, {"error": str(err)})
            request.done.set()

    def _control(self, method: str, path: str, body: dict) -> dict:
        url = urlparse(path)
        route = (method, url.path)
        if route == ("GET", "/state"):
            return self.state()
        if route == ("GET", "/log"):
            since = int(parse_qs(url.query).get("since", ["0"])[0])
            start = max(0, since - self.log_offset)
            rows = list(self.log)[start:]
            return {"t": [r[0] for r in rows], "tcp": [r[1:] for r in rows], "next": self.log_offset + len(self.log)}
        if route == ("GET", "/commands"):
            return {
                "counts": {command_name(c): n for c, n in sorted(self.command_counts.items())},
                "motion_packages": self.motion_packages,
                "transitions": [[t, c, command_name(c)] for t, c in self.transitions],
            }
        if route == ("POST", "/fault"):
            kind = str(body["kind"])
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; available: {', '.join(FAULT_KINDS)}")
            after = float(body.get("after_motion_s", 0.0))
            if after > 0:
                self.motion_time_s = 0.0
                self.trigger = FaultTrigger(kind, after)
            else:
                self.apply_fault(kind)
            return {"armed" if after > 0 else "applied": kind}
        if route == ("POST", "/digital_inputs"):
            self.io.input_bits = int(body["bits"])
            return self.state()
        if route == ("POST", "/clear"):
            self.clear_faults()
            return self.state()
        if route == ("POST", "/reset_log"):
            self.log_offset += len(self.log)
            self.log.clear()
            self.transitions.clear()
            self.command_counts.clear()
            self.motion_packages = 0
            return {"next": self.log_offset}
        if route == ("POST", "/tcp_offset"):  # the TCP the installation holds, optionally locked
            self.script.tcp_offset = [float(v) for v in body["offset"]]
            self.script.tcp_locked = bool(body.get("locked", False))
            return {"tcp_offset": self.script.tcp_offset, "locked": self.script.tcp_locked}
        if route == ("POST", "/joints"):
            q = np.asarray(body["q"], float)
            if q.shape != (self.model.dof,) or not self.arm.idle:
                raise ValueError(f"need {self.model.dof} joint values and an idle arm")
            self.arm.q = q
            return self.state()
        raise KeyError(f"no route {method} {url.path}")

    def state(self) -> dict:
        arm, script = self.arm, self.script
        return {
            "now_s": self.now_s,
            "robot": self.identity.robot,
            "rate_hz": self.identity.rate_hz,
            "q": arm.q.tolist(),
            "qd": arm.qd.tolist(),
            "tcp_pose": ur_pose(arm.tcp),
            "moving": arm.moving,
            "motion": type(arm.motion).__name__ if arm.motion is not None else None,
            "program": self.program_state_name,
            "program_error": script.error,
            "script_uploads": script.uploads,
            "safety": self.safety,
            "offline": self.offline,
            "watchdog_min_hz": script.watchdog_min_hz,
            "tcp_offset": script.tcp_offset,
            "watchdog_tripped": script.watchdog_tripped,
            "trigger": None if self.trigger is None else {"kind": self.trigger.kind,
                                                          "after_motion_s": self.trigger.after_motion_s},
            "faults": self.faults,
            "rtde_clients": sum(isinstance(c, _RtdeClient) for c in self._clients.values()),
            "ticks": self.ticks,
            "late_ticks": self.late_ticks,
            "secondary_programs": self.secondary_programs,
            "digital_output_bits": self.io.output_bits,
            "digital_input_bits": self.io.input_bits,
        }


class _Request:
    def __init__(self, method: str, path: str, body: dict) -> None:
        self.method, self.path, self.body = method, path, body
        self.done = threading.Event()
        self.reply: tuple[int, dict] = (500, {"error": "controller loop did not answer"})


def _make_handler(requests: queue.Queue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError as err:
                self._reply(400, {"error": f"body is not JSON: {err}"})
                return
            request = _Request(method, self.path, body)
            requests.put(request)
            request.done.wait(5.0)
            self._reply(*request.reply)

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
