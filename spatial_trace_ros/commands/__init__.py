"""Subcommands of ``spatial-trace``; see :mod:`spatial_trace_ros.cli`."""
