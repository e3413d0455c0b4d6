"""The Modbus RTU side of the fake Robotiq: a pseudo-terminal that answers as the gripper does.

Function 16 writes the request registers from 0x03E8, function 4 reads the status registers from
0x07D0 (layout in ``tools/robotiq_modbus``, facts from Robotiq's manual, written again here so the
fake checks the client rather than sharing its code). Frames with another slave id or a bad CRC get
no answer, as on a real bus.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import tty
from pathlib import Path

from spatial_trace_ros.testing.fake_robotiq import SimulatedRobotiq

WRITE_MULTIPLE, READ_INPUT = 16, 4
ILLEGAL_ADDRESS = 2


def crc16(data: bytes) -> bytes:
    """Modbus CRC (reflected 0xA001, start 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def serve_rtu(sim: SimulatedRobotiq, link_file: str, slave_id: int, silent: bool, stop: threading.Event) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = Path(link_file)
    tmp = link.with_suffix(".tmp")
    tmp.write_text(os.ttyname(slave))
    os.replace(tmp, link)
    print(f"fake Robotiq Modbus RTU on {os.ttyname(slave)} (slave {slave_id})", flush=True)
    buffer = b""
    while not stop.is_set():
        readable, _, _ = select.select([master], [], [], 0.2)
        if not readable:
            buffer = b""  # a silence ends any partial frame, as RTU's inter-frame gap does
            continue
        buffer += os.read(master, 1024)
        while True:
            size = frame_size(buffer)
            if size is None or len(buffer) < size:
                break
            request, buffer = buffer[:size], buffer[size:]
            if request[-2:] != crc16(request[:-2]) or request[0] != slave_id or silent:
                continue
            with sim.lock:
                body = answer(sim, request[1:-2])
            os.write(master, bytes([slave_id]) + body + crc16(bytes([slave_id]) + body))
    os.close(master)
    os.close(slave)


def frame_size(buffer: bytes) -> int | None:
    if len(buffer) < 2:
        return None
    if buffer[1] == WRITE_MULTIPLE:
        return None if len(buffer) < 7 else 9 + buffer[6]
    return 8  # read requests and anything else: fixed 8 bytes


def answer(sim: SimulatedRobotiq, pdu: bytes) -> bytes:
    function = pdu[0]
    if function == WRITE_MULTIPLE:
        address, count = struct.unpack(">HH", pdu[1:5])
        if address != 0x03E8 or count != 3:
            return bytes([function | 0x80, ILLEGAL_ADDRESS])
        action, _, _, position, speed, force = pdu[6:12]
        requests = {"ATR": action >> 4 & 1, "ADR": action >> 5 & 1, "POS": position, "SPE": speed, "FOR": force,
                    "ACT": action & 1, "GTO": action >> 3 & 1}
        for name, value in requests.items():
            sim.set(name, value)
        return pdu[:5]
    if function == READ_INPUT:
        address, count = struct.unpack(">HH", pdu[1:5])
        if address != 0x07D0 or not 1 <= count <= 3:
            return bytes([function | 0x80, ILLEGAL_ADDRESS])
        g = {name: sim.get(name) or 0 for name in ("ACT", "GTO", "STA", "OBJ", "FLT", "PRE", "POS")}
        status = g["ACT"] | g["GTO"] << 3 | g["STA"] << 4 | g["OBJ"] << 6
        data = bytes([status, 0, g["FLT"], g["PRE"], g["POS"], 0])[: 2 * count]
        return bytes([function, len(data)]) + data
    return bytes([function | 0x80, 1])
