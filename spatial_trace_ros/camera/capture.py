"""Keep frames flowing from a ``FrameSource`` on a thread of its own, through unplugs and restarts.

The loop opens the source, retrying with exponential backoff while the camera (or recording) is not
there; hands every new frame to a callback; and, when the camera goes away mid-stream, reports it and
goes back to reconnecting. It only ever passes on frames the source has just read, with stamps that grow
within a connection, so a consumer never sees a stale frame as new. It stops for good at the end of a
recording (state ``ended``) or on a settings error that retrying cannot fix (state ``failed``).
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from spatial_trace_ros.camera.source import EndOfRecordingError, FrameSource
from spatial_trace_ros.errors import CameraError, ConfigError
from spatial_trace_ros.geometry.camera_model import RgbdFrame


@dataclass(frozen=True)
class CaptureStatus:
    """A snapshot for diagnostics."""

    state: str  # opening | streaming | reconnecting | ended | failed | closed
    detail: str
    frames: int
    drops: int
    reconnects: int
    stale_skipped: int
    rate_hz: float
    since_last_frame_s: float | None
    handling_ms: float | None  # median time ``on_frame`` took (conversion + publishing) in the rate window


class CaptureLoop:
    def __init__(
        self,
        source: FrameSource,
        on_frame: Callable[[RgbdFrame], None],
        read_timeout_s: float = 1.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 5.0,
        rate_window_s: float = 2.0,
        on_state: Callable[[str, str], None] | None = None,
    ) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ConfigError(
                f"reconnect backoff must satisfy 0 < initial ({backoff_initial_s} s) <= max ({backoff_max_s} s)"
            )
        self.source = source
        self._on_frame = on_frame
        self._on_state = on_state
        self._read_timeout_s = read_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._rate_window_s = rate_window_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._deliveries: collections.deque[tuple[float, float]] = collections.deque()  # (time, handling s)
        self._last_delivery: float | None = None
        self._stale_skipped = 0
        self._state, self._detail = "opening", ""

    # -- control --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the source (waits up to ``timeout_s`` for a read in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.source.close()
        if self._state in ("opening", "streaming", "reconnecting"):
            self._set_state("closed", "stopped", notify=False)  # the owner asked; it needs no callback

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the loop to end by itself (end of recording, failure); True if it has."""
        if self._thread is None:
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _forget_old_deliveries(self, now: float) -> None:
        while self._deliveries and now - self._deliveries[0][0] > self._rate_window_s:
            self._deliveries.popleft()

    def status(self) -> CaptureStatus:
        now = time.monotonic()
        with self._lock:
            self._forget_old_deliveries(now)
            n = len(self._deliveries)
            span = self._deliveries[-1][0] - self._deliveries[0][0] if n > 1 else 0.0
            rate = (n - 1) / span if span > 0 else 0.0
            handling = 1e3 * statistics.median(d for _, d in self._deliveries) if n else None
            since = None if self._last_delivery is None else now - self._last_delivery
            stats = self.source.stats
            return CaptureStatus(self._state, self._detail, stats.frames, stats.drops, stats.reconnects,
                                 self._stale_skipped, rate, since, handling)

    # -- the thread -----------------------------------------------------------------------------
    def _set_state(self, state: str, detail: str, notify: bool = True) -> None:
        changed = (state, detail) != (self._state, self._detail)
        self._state, self._detail = state, detail
        self.source.stats.state, self.source.stats.detail = state, detail
        if notify and changed and self._on_state is not None:
            self._on_state(state, detail)

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        try:
            while not self._stop.is_set():
                try:
                    self.source.open()
                except ConfigError as err:
                    self._set_state("failed", str(err))
                    return
                except CameraError as err:
                    self._set_state("reconnecting", f"{err} (next try in {backoff:.2f} s)")
                    if self._stop.wait(backoff):
                        return
                    backoff = min(2 * backoff, self._backoff_max_s)
                    continue
                backoff = self._backoff_initial_s
                self._set_state("streaming", self.source.stats.detail or "streaming")
                try:
                    self._stream()
                except EndOfRecordingError as err:
                    self.source.close()
                    self._set_state("ended", str(err))
                    return
                except ConfigError as err:
                    self.source.close()
                    self._set_state("failed", str(err))
                    return
                except CameraError as err:
                    self.source.close()
                    self.source.stats.reconnects += 1
                    self._set_state("reconnecting", f"camera lost: {err}")
        except Exception as err:  # a bug or a publishing failure: report it, never die silently
            self.source.close()
            if self._stop.is_set():
                return  # publishing into a context that is shutting down
            self._set_state("failed", f"capture stopped by an unexpected error: {type(err).__name__}: {err}")
            raise

    def _stream(self) -> None:
        last_stamp_s = float("-inf")
        while not self._stop.is_set():
            frame = self.source.read(self._read_timeout_s)
            if frame.stamp_s <= last_stamp_s:
                self._stale_skipped += 1
                continue
            last_stamp_s = frame.stamp_s
            began = time.monotonic()
            self._on_frame(frame)
            now = time.monotonic()
            with self._lock:
                self._deliveries.append((now, now - began))
                self._last_delivery = now
                self._forget_old_deliveries(now)


def summarize(status: CaptureStatus, new_drops: int) -> tuple[str, str]:
    """Diagnostic level ("ok", "warn" or "error") and one line for a person, given the frames dropped
    since the previous summary."""
    if status.state == "streaming":
        line = f"streaming at {status.rate_hz:.1f} Hz"
        if new_drops > 0:
            return "warn", f"{line}; {new_drops} frame(s) dropped since the last report"
        return "ok", line
    if status.state in ("opening", "closed"):
        return "warn", f"camera {status.state}"
    if status.state == "ended":
        return "warn", status.detail
    return "error", f"{status.state}: {status.detail}"
