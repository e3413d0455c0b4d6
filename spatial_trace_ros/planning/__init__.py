"""From a camera-frame trace to checked, timed robot-frame waypoints."""
