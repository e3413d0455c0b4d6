"""Gripper kind ``robotiq_modbus``: a Robotiq 2F gripper wired to the PC (USB/RS-485), Modbus RTU.

Facts from Robotiq's 2F manual: slave id 9, 115200 baud 8N1; the request registers (action byte
ACT/GTO/ATR/ADR, position, speed, force) are written together with function 16 from 0x03E8, the
status registers (status byte ACT/GTO/STA/OBJ, fault, position echo, position, current) read with
function 4 from 0x07D0, two bytes per register, high byte first.

``pyrobotiqgripper`` (3.3) was judged and not used: a 3,000-line class that prints from library code,
probes serial ports in child processes, keeps numpy histories and fixes its own 1 s timeout. The
framing, CRC and retries are ``minimalmodbus``'s; only the register layout is ours.
"""

from __future__ import annotations

import threading
from typing import Any

from spatial_trace_ros.tools.gripper import GripperError, described
from spatial_trace_ros.tools.robotiq import RobotiqGripper, RobotiqStatus

REQUEST_REGISTER = 0x03E8
STATUS_REGISTER = 0x07D0
REGISTERS = 3
ACTION_BITS = {"ACT": 0, "GTO": 3, "ATR": 4, "ADR": 5}
DEFAULT_SLAVE_ID = 9
DEFAULT_BAUD = 115200


class ModbusRtuLink:
    """The gripper's registers over a serial port. Keeps the request image so writing one request
    (say ``POS``) rewrites the others unchanged, as the registers are written together."""

    def __init__(self, port: str, slave_id: int = DEFAULT_SLAVE_ID, baud: int = DEFAULT_BAUD,
                 timeout_s: float = 0.5) -> None:
        self.port, self.slave_id, self.baud, self.timeout_s = port, slave_id, baud, timeout_s
        self.endpoint = f"{port} (slave {slave_id}, {baud} baud)"
        self._instrument: Any = None
        self._requests = {"ACT": 0, "GTO": 0, "ATR": 0, "ADR": 0, "POS": 0, "SPE": 0, "FOR": 0}
        self._lock = threading.Lock()

    def _check(self) -> str:
        return (f"check that the gripper is powered, that its USB/RS-485 adapter is {self.port}, that the user "
                f"may open it (group dialout), and the slave id ({self.slave_id}) and baud ({self.baud})")

    def open(self) -> None:
        if self._instrument is not None:
            return
        import minimalmodbus
        import serial

        try:
            instrument = minimalmodbus.Instrument(self.port, self.slave_id, close_port_after_each_call=False)
        except (serial.SerialException, OSError) as err:
            raise GripperError(f"cannot open the Robotiq serial port {self.port} ({err}); {self._check()}") from None
        instrument.serial.baudrate = self.baud
        instrument.serial.timeout = self.timeout_s
        instrument.clear_buffers_before_each_transaction = True
        self._instrument = instrument
        try:
            status = self.read()  # the gripper may already run: keep what it was asked last
        except GripperError:
            self.close()
            raise
        self._requests.update(ACT=status.act, GTO=status.gto, POS=status.pre)

    def close(self) -> None:
        with self._lock:
            if self._instrument is not None:
                self._instrument.serial.close()
                self._instrument = None

    def _call(self, what: str, action: Any) -> Any:
        import minimalmodbus

        with self._lock:
            if self._instrument is None:
                raise GripperError(f"the Robotiq on {self.endpoint} is not connected; call connect() first")
            try:
                return action(self._instrument)
            except minimalmodbus.NoResponseError:
                raise GripperError(f"no answer from the Robotiq on {self.endpoint} within {self.timeout_s:g} s "
                                   f"to {what}; {self._check()}") from None
            except (minimalmodbus.ModbusException, OSError, ValueError) as err:
                raise GripperError(f"the Robotiq on {self.endpoint} failed {what} ({err}); {self._check()}") from None

    def write(self, **requests: int) -> None:
        unknown = set(requests) - set(self._requests)
        if unknown:
            raise GripperError(f"unknown Robotiq request(s) {sorted(unknown)}; known: {sorted(self._requests)}")
        image = {**self._requests, **requests}
        action = sum((image[name] & 1) << bit for name, bit in ACTION_BITS.items())
        values = [action << 8, image["POS"] & 0xFF, (image["SPE"] & 0xFF) << 8 | (image["FOR"] & 0xFF)]
        self._call("writing the requests", lambda inst: inst.write_registers(REQUEST_REGISTER, values))
        self._requests = image

    def read(self) -> RobotiqStatus:
        words = self._call("reading the status",
                           lambda inst: inst.read_registers(STATUS_REGISTER, REGISTERS, functioncode=4))
        status_byte, fault_byte = words[0] >> 8, words[1] >> 8
        return RobotiqStatus(
            act=status_byte & 1, gto=status_byte >> 3 & 1, sta=status_byte >> 4 & 3, obj=status_byte >> 6 & 3,
            flt=fault_byte & 0x0F, pre=words[1] & 0xFF, pos=words[2] >> 8,
        )


def robotiq_modbus_gripper(description: Any = None, *, port: str | None = None, slave_id: int = DEFAULT_SLAVE_ID,
                           baud: int = DEFAULT_BAUD, model: str | None = None, timeout_s: float = 0.5,
                           open_count: int = 0, closed_count: int = 255) -> RobotiqGripper:
    """Factory of kind ``robotiq_modbus``: ``port`` is the serial device (e.g. /dev/ttyUSB0)."""
    port = port or described(description, "port", None)
    if not port:
        raise GripperError("the robotiq_modbus gripper needs port= (its serial device, e.g. /dev/ttyUSB0)")
    model = model or described(description, "model", "2f85")
    return RobotiqGripper(ModbusRtuLink(port, slave_id, baud, timeout_s), model, open_count, closed_count)
