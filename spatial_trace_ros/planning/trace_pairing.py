"""Pairs each trace with the trace stage's status for the same frame, by the exact frame stamp.

The trace (nav_msgs/Path, valid points only, so RViz can draw it) and its status (JSON: how many points
the stage found and how many had a valid depth, how many samples were drawn and how well they agreed)
are two messages; which one arrives first is up to DDS. The planner plans only once it has both, so
DEPTH_INVALID and MODEL_DISAGREEMENT are judged on every trace regardless of the order, and a trace
whose status never comes is refused after a timeout instead of being planned unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEMORY = 16  # unmatched statuses kept (a status may come before its trace)


@dataclass(frozen=True)
class TraceStageFacts:
    """What the trace stage knew about one trace: its frame, validity and agreement."""

    frame_stamp_ns: int
    n_points_total: int
    n_valid: int
    n_samples: int
    agreement: float | None
    instruction: str = ""  # what the trace was asked for (with a tool: which task it is)

    @property
    def valid_fraction(self) -> float:
        return self.n_valid / self.n_points_total if self.n_points_total else 0.0

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> TraceStageFacts | None:
        """From a ``trace_status`` JSON of state ``ok``; None when it is not one or lacks the fields."""
        if status.get("state") != "ok":
            return None
        try:
            agreement = status.get("agreement")
            return cls(int(status["frame_stamp_ns"]), int(status["n_points_total"]), int(status["n_points"]),
                       int(status["n_samples"]), None if agreement is None else float(agreement),
                       str(status.get("instruction", "")))
        except (KeyError, TypeError, ValueError):
            return None

    def metadata(self) -> dict[str, Any]:
        """The trace metadata the planner reads (``Planner.plan_detailed``)."""
        return {"valid_fraction": self.valid_fraction, "agreement": self.agreement, "n_samples": self.n_samples,
                "instruction": self.instruction}


@dataclass
class _Waiting:
    item: Any
    since_s: float


class TracePairing:
    """Holds traces until their status arrives (and statuses until their trace), keyed by frame stamp [ns]."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._traces: dict[int, _Waiting] = {}
        self._facts: dict[int, TraceStageFacts] = {}

    def add_trace(self, stamp_ns: int, item: Any, now_s: float) -> tuple[Any, TraceStageFacts] | None:
        """The pair when this trace's status is already here; else the trace waits for it."""
        facts = self._facts.pop(stamp_ns, None)
        if facts is not None:
            return item, facts
        self._traces[stamp_ns] = _Waiting(item, now_s)
        return None

    def add_status(self, facts: TraceStageFacts) -> tuple[Any, TraceStageFacts] | None:
        """The pair when this status's trace is waiting; else the status is kept for it."""
        waiting = self._traces.pop(facts.frame_stamp_ns, None)
        if waiting is not None:
            return waiting.item, facts
        self._facts[facts.frame_stamp_ns] = facts
        while len(self._facts) > MEMORY:
            self._facts.pop(next(iter(self._facts)))
        return None

    def overdue(self, now_s: float) -> list[Any]:
        """Traces that waited longer than ``timeout_s`` for their status (removed)."""
        late = [k for k, w in self._traces.items() if now_s - w.since_s > self.timeout_s]
        return [self._traces.pop(k).item for k in late]
