"""The e-stop latch, kept in a file so that it outlives the controller process.

A controller that restarts (crash, relaunch, power cycle of the PC) must come back with the e-stop
still engaged if it was engaged before: the latch is written to ``path`` (atomically, synced to disk)
the moment it engages, and read back when the controller starts. It is released only by ``release``
with a note saying who and why (the controller's ``~/reset_estop`` service), which is logged and
appended to the file's history. A latch file that cannot be read counts as engaged.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

HISTORY_LENGTH = 50


def default_latch_path(robot: str) -> Path:
    """``$ROS_HOME/spatial_trace/estop_<robot>.json`` (ROS_HOME defaults to ~/.ros, as in ROS 2)."""
    home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros")
    return home / "spatial_trace" / f"estop_{robot}.json"


class EstopLatch:
    """Engaged or not, persisted in ``path``; ``reason`` says since when and why."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.engaged = False
        self.reason = ""
        self.history: list[dict] = []
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            self.engaged = bool(data["engaged"])
            self.reason = str(data.get("reason", ""))
            self.history = list(data.get("history", []))[-HISTORY_LENGTH:]
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.engaged = True
            self.reason = (f"the e-stop latch file {self.path} could not be read ({err}); treated as engaged: "
                           "check the file, then release with ~/reset_estop")

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"engaged": self.engaged, "reason": self.reason, "history": self.history}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".estop-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _record(self, event: str, note: str) -> None:
        self.history.append({"event": event, "note": note, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self.history = self.history[-HISTORY_LENGTH:]

    def engage(self, source: str) -> None:
        """Engage (again) and persist before returning."""
        if not self.engaged:
            self.reason = f"e-stop engaged by {source} at {time.strftime('%Y-%m-%d %H:%M:%S')}"
            self._record("engaged", source)
        self.engaged = True
        self._write()

    def release(self, note: str) -> None:
        """Release, recording who and why (``note``), and persist."""
        self._record("released", note)
        self.engaged = False
        self.reason = ""
        self._write()
