"""The HTTP face of ``TraceService``: FastAPI routes, auth, error bodies, body limit, request metrics.

Routes: ``POST /v1/trace`` (bearer token), ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and
warmed up, not draining), ``GET /metrics`` (Prometheus; bearer token when auth is on) and
``GET /openapi.json``. Every error body is ``{"detail": "<reason>"}``, validation errors included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from spatial_trace_ros import __version__
from spatial_trace_ros.server.auth import BearerAuth
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.metrics import ServerMetrics
from spatial_trace_ros.server.schema import (
    HEALTH_PATH,
    METRICS_PATH,
    READY_PATH,
    TRACE_PATH,
    ErrorResponse,
    TraceRequest,
    TraceResponse,
)
from spatial_trace_ros.server.service import TraceService

log = logging.getLogger(__name__)
_MAX_DETAIL_CHARS = 1000
_STATUS_OUTCOMES = {200: "ok", 401: "unauthorized", 413: "too_large", 503: "not_ready", 504: "timeout"}


class BodyTooLargeError(HTTPException):
    """The request body grew past the limit while it was being read. An ``HTTPException`` so that FastAPI's
    body reader passes it on instead of turning it into a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_detail(limit), headers={"Connection": "close"})


class RequestGuard:
    """ASGI middleware: refuses bodies over ``max_body_bytes`` (declared or streamed) and records the
    outcome and latency of every trace request, whichever layer answered it."""

    def __init__(self, app: Any, max_body_bytes: int, metrics: ServerMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        counted = scope["path"] == TRACE_PATH
        state = scope.setdefault("state", {})
        status = {"code": 500}

        async def send_recording(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        declared = dict(scope.get("headers", ())).get(b"content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                state["outcome"] = "too_large"
                await self._refuse_too_large(send_recording)
            else:
                await self.app(scope, limited_receive, send_recording)
        finally:
            if counted:
                outcome = state.get("outcome") or _outcome_of(status["code"])
                self.metrics.requests.labels(outcome).inc()
                self.metrics.request_latency.observe(time.perf_counter() - started)

    async def _refuse_too_large(self, send: Any) -> None:
        body = json.dumps({"detail": _too_large_detail(self.max_body_bytes)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _outcome_of(status: int) -> str:
    if status in _STATUS_OUTCOMES:
        return _STATUS_OUTCOMES[status]
    return "error" if status >= 500 else "bad_request"


def _too_large_detail(limit: int) -> str:
    return (f"request body is larger than {limit} bytes; send a smaller (or JPEG) image, "
            "or raise --max-body-bytes on the server")


def _validation_detail(err: RequestValidationError) -> str:
    """pydantic's error list as one sentence: where, what. Input values are never echoed."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            msg = f"not valid JSON ({e.get('ctx', {}).get('error', 'decode error')})"
        elif loc == "body" and e.get("type") in ("model_attributes_type", "model_type", "dict_type", "missing"):
            msg = "the body must be a JSON object sent with Content-Type: application/json"
        parts.append(f"{loc}: {msg}")
    detail = "invalid request: " + "; ".join(parts)
    return detail if len(detail) <= _MAX_DETAIL_CHARS else detail[: _MAX_DETAIL_CHARS - 3] + "..."


_TRACE_REQUEST_BODY = {"required": True,
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TraceRequest"}}}}
_JSON_TYPES = ("application/json",)


async def _read_trace_request(request: Request) -> TraceRequest:
    """The body as a ``TraceRequest``, validated straight from the JSON bytes (pydantic's parser, about 3x
    faster than decoding to Python objects first: the base64 images are megabytes of string)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",), "msg": "not JSON"}])
    raw = await request.body()
    try:
        return TraceRequest.model_validate_json(raw)
    except ValidationError as err:
        raise RequestValidationError(err.errors(include_url=False, include_input=False)) from None


_BEARER = HTTPBearer(auto_error=False, description="the server's token (--token-file)")


def _require_token(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]) -> None:
    """Declares bearer auth in the OpenAPI document; the check itself reads the raw header."""
    request.app.state.auth.check(request.headers.get("authorization"))


def create_app(service: TraceService, auth: BearerAuth, max_body_bytes: int, request_timeout_s: float) -> Any:
    """The ASGI application (FastAPI wrapped in the body-limit / metrics guard)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="spatial_trace_ros trace server",
        version=__version__,
        description="Hosts one trace model (ONNX, TorchScript/torch.export or a transformers VLM) for "
        "spatial_trace_ros clients. See docs/server.md.",
        docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.auth = auth
    authorized = [Security(_require_token)]

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text}
        for code, text in (
            (400, "malformed image or depth"), (401, "missing or wrong bearer token"), (413, "body or image too large"),
            (422, "body does not match the schema"), (500, "the model failed"),
            (503, "queue full, warming up or shutting down"), (504, "no answer within --request-timeout-s"),
        )
    }

    @app.post(TRACE_PATH, response_model=TraceResponse, responses=errors, dependencies=authorized,
              summary="Predict a trace for one frame", openapi_extra={"requestBody": _TRACE_REQUEST_BODY})
    async def trace(request: Request) -> TraceResponse:
        body = await _read_trace_request(request)
        try:
            response = await asyncio.wait_for(service.trace(body), request_timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(504, f"no answer within {request_timeout_s:g} s (--request-timeout-s); the server "
                               "may be overloaded", "timeout") from None
        request.state.outcome = "ok"
        return response

    @app.get(HEALTH_PATH, summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(READY_PATH, summary="Readiness: model loaded and warmed up", responses={503: {"model": ErrorResponse}})
    async def readyz() -> Any:
        ready, reason = service.readiness()
        if not ready:
            return JSONResponse({"detail": reason}, status_code=503, headers={"Retry-After": "1"})
        return {"status": "ready", "model": service.model_info.model_dump(), "device": service.backend.device}

    @app.get(METRICS_PATH, summary="Prometheus metrics", response_class=Response, dependencies=authorized)
    async def metrics() -> Response:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            request_schema = TraceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(request_schema.pop("$defs", {}))
            schemas["TraceRequest"] = request_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, err: RequestError) -> JSONResponse:
        request.state.outcome = err.outcome
        return JSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        request.state.outcome = "bad_request"
        return JSONResponse({"detail": _validation_detail(err)}, status_code=422)

    @app.exception_handler(BodyTooLargeError)
    async def on_body_too_large(request: Request, err: BodyTooLargeError) -> JSONResponse:
        request.state.outcome = "too_large"
        return JSONResponse({"detail": err.detail}, status_code=413, headers=err.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, err: Exception) -> JSONResponse:
        request.state.outcome = "error"
        log.error("unexpected %s while serving %s", err.__class__.__name__, request.url.path, exc_info=err)
        return JSONResponse({"detail": f"internal server error ({err.__class__.__name__}); see the server log"},
                            status_code=500)

    return RequestGuard(app, max_body_bytes, service.metrics)
