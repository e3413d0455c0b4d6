"""Gripper kind ``robotiq_urcap``: a Robotiq 2F gripper on a UR arm, through the Robotiq Grippers URCap.

The URCap listens on TCP 63352 of the UR controller and relays ASCII lines to the gripper:
``SET NAME value [NAME value ...]`` answered ``ack``, ``GET NAME`` answered ``NAME value``. One request
is in flight at a time; every answer must arrive within ``timeout_s``, else the gripper is reported
unreachable with what to check.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from spatial_trace_ros.tools.gripper import GripperError, described
from spatial_trace_ros.tools.robotiq import RobotiqGripper, RobotiqStatus

URCAP_PORT = 63352
STATUS_NAMES = ("ACT", "GTO", "STA", "OBJ", "FLT", "PRE", "POS")
CHECK = ("check that the UR controller is reachable at that address, that the Robotiq Grippers URCap is "
         "installed and running (PolyScope: Installation > URCaps > Gripper) and that the gripper is powered")


class UrcapLink:
    """The URCap's ASCII protocol over one TCP connection."""

    def __init__(self, host: str, port: int = URCAP_PORT, timeout_s: float = 1.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.endpoint = f"URCap socket {host}:{port}"
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as err:
            raise GripperError(f"cannot connect to the Robotiq {self.endpoint} ({err}); {CHECK}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def request(self, line: str) -> str:
        """Send one line, return the answer line (without the newline)."""
        with self._lock:
            if self._sock is None:
                raise GripperError(f"the Robotiq {self.endpoint} is not connected; call connect() first")
            try:
                self._sock.sendall(line.encode("ascii") + b"\n")
                while b"\n" not in self._buffer:
                    chunk = self._sock.recv(1024)
                    if not chunk:
                        raise OSError("the URCap closed the connection")
                    self._buffer += chunk
            except TimeoutError:
                self._drop()
                raise GripperError(f"no answer from the Robotiq {self.endpoint} within {self.timeout_s:g} s to "
                                   f"{line!r}; {CHECK}") from None
            except OSError as err:
                self._drop()
                raise GripperError(f"lost the Robotiq {self.endpoint} during {line!r} ({err}); {CHECK}") from None
            answer, _, self._buffer = self._buffer.partition(b"\n")
            return answer.decode("ascii", errors="replace").strip()

    def _drop(self) -> None:
        """A late answer would pair with the next request: start over on a new connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def write(self, **requests: int) -> None:
        line = "SET " + " ".join(f"{name} {int(value)}" for name, value in requests.items())
        answer = self.request(line)
        if answer != "ack":
            raise GripperError(f"the Robotiq {self.endpoint} refused {line!r} (answered {answer!r})")

    def get(self, name: str) -> int:
        answer = self.request(f"GET {name}")
        parts = answer.split()
        if len(parts) != 2 or parts[0] != name or not parts[1].lstrip("-").isdigit():
            raise GripperError(f"the Robotiq {self.endpoint} answered {answer!r} to 'GET {name}'; "
                               "expected '{name} <number>'")
        return int(parts[1])

    def read(self) -> RobotiqStatus:
        values = {name.lower(): self.get(name) for name in STATUS_NAMES}
        return RobotiqStatus(**values)


def robotiq_urcap_gripper(description: Any = None, *, host: str | None = None, port: int = URCAP_PORT,
                          model: str | None = None, timeout_s: float = 1.0, open_count: int = 0,
                          closed_count: int = 255) -> RobotiqGripper:
    """Factory of kind ``robotiq_urcap``: ``host`` is the UR controller's address (the robot_ip)."""
    host = host or described(description, "host", None)
    if not host:
        raise GripperError("the robotiq_urcap gripper needs host= (the UR controller's IP address)")
    model = model or described(description, "model", "2f85")
    return RobotiqGripper(UrcapLink(host, port, timeout_s), model, open_count, closed_count)
