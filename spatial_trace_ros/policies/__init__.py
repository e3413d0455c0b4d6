"""Control policies: how a timed plan becomes a stream of robot setpoints (plugins by entry point)."""
