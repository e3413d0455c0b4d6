"""A fake UR controller (RTDE 30004, script 30003, dashboard 29999) for testing against the real
ur_rtde client: ``server.FakeUrController`` runs in its own process (``python -m
spatial_trace_ros.testing.fake_ur``); ``client.FakeUrClient`` is the test side of its control port."""
