"""The e-stop latch file: engaged survives a new reader, release needs the call and records the note,
an unreadable file counts as engaged."""

from __future__ import annotations

import json
from pathlib import Path

from spatial_trace_ros.robots.estop_latch import EstopLatch, default_latch_path


def test_an_engaged_latch_is_read_back_engaged(tmp_path: Path) -> None:
    path = tmp_path / "latch" / "estop.json"
    EstopLatch(path).engage("/spatial_trace/estop")
    again = EstopLatch(path)
    assert again.engaged and "/spatial_trace/estop" in again.reason
    again.release("bob: cell cleared")
    after = EstopLatch(path)
    assert not after.engaged
    assert [e["event"] for e in after.history] == ["engaged", "released"]
    assert after.history[-1]["note"] == "bob: cell cleared"


def test_an_unreadable_latch_file_counts_as_engaged(tmp_path: Path) -> None:
    path = tmp_path / "estop.json"
    path.write_text("{not json")
    latch = EstopLatch(path)
    assert latch.engaged and "could not be read" in latch.reason
    path.write_text(json.dumps({"reason": "no engaged key"}))
    assert EstopLatch(path).engaged


def test_no_file_means_released_and_the_default_path_follows_ros_home(tmp_path: Path, monkeypatch) -> None:
    assert not EstopLatch(tmp_path / "none.json").engaged
    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    assert default_latch_path("ur5e") == tmp_path / "spatial_trace" / "estop_ur5e.json"
