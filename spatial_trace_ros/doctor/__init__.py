"""``spatial-trace doctor``: what a robot PC needs, checked one finding at a time, each with its fix."""

from spatial_trace_ros.doctor.findings import Finding, Level, exit_code, format_finding

__all__ = ["Finding", "Level", "exit_code", "format_finding"]
