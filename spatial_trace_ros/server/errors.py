"""Why a request was refused: an HTTP status, a reason the client can act on, and a metrics outcome."""

from __future__ import annotations

from spatial_trace_ros.errors import SpatialTraceError


class RequestError(SpatialTraceError):
    """A request the server will not (or cannot now) answer. ``detail`` goes back to the client verbatim,
    so it must never contain secrets; ``outcome`` labels the request counter in /metrics."""

    def __init__(self, status_code: int, detail: str, outcome: str = "bad_request",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.outcome = outcome
        self.headers = headers or {}
