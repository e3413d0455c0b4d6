"""The project's exception tree.

Every error says what went wrong and what to do about it, so nodes can log ``str(err)`` and a person
can act on it. Library code raises these; it never prints or exits.
"""

from __future__ import annotations


class SpatialTraceError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SpatialTraceError, ValueError):
    """A parameter, YAML file or command-line value is invalid; the message names it and the fix."""


class CalibrationError(ConfigError):
    """A camera calibration (extrinsics) file is missing, malformed or physically impossible."""


class DepthError(SpatialTraceError):
    """No usable depth where a 3D point was needed (holes, out of range, outside the image)."""


class TraceParseError(SpatialTraceError, ValueError):
    """A model's answer could not be turned into a trace; the message quotes the offending text."""


class ModelError(SpatialTraceError):
    """The trace model could not be reached, timed out, or answered with an error."""


class SafetyError(SpatialTraceError):
    """A plan or setpoint was refused by a safety check. Nothing was sent to the robot."""


class RobotError(SpatialTraceError):
    """The robot or its controller reported a fault (protective stop, lost connection, ...)."""


class CameraError(SpatialTraceError):
    """The camera or recording is missing, disconnected or misconfigured."""


def format_choices(name: str, value: object, choices: list[str] | tuple[str, ...]) -> str:
    """The standard 'unknown X' sentence: names the bad value and lists the valid ones."""
    listed = ", ".join(sorted(choices)) or "(none available)"
    return f"unknown {name} {value!r}; available: {listed}"
