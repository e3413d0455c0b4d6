"""The fake controller's digital I/O: RTDE input recipes set outputs under their masks (as ur_rtde's
``RTDEIOInterface`` does), and the output recipe reports them in ``actual_digital_output_bits``.

Bit layout of ``actual_digital_{output,input}_bits`` (RTDE guide): standard 0-7, configurable 8-15,
tool 16-17. Tests set the input bits (a gripper's sensor on a tool input) through the control port.
"""

from __future__ import annotations

from typing import Any

# RTDE input name prefix -> first bit in actual_digital_output_bits
OUTPUT_GROUPS = {"standard_digital_output": 0, "configurable_digital_output": 8, "tool_digital_output": 16}


class DigitalIo:
    def __init__(self) -> None:
        self.output_bits = 0
        self.input_bits = 0

    def apply(self, values: dict[str, Any]) -> None:
        """One input data package: each group's mask says which of its 8 bits to set."""
        for name, shift in OUTPUT_GROUPS.items():
            if f"{name}_mask" in values and name in values:
                mask = (int(values[f"{name}_mask"]) & 0xFF) << shift
                self.output_bits = (self.output_bits & ~mask) | ((int(values[name]) & 0xFF) << shift & mask)

    def outputs(self) -> dict[str, int]:
        return {"actual_digital_output_bits": self.output_bits, "actual_digital_input_bits": self.input_bits}
