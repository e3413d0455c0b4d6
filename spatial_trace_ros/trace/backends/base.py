"""What every HTTP trace backend shares: validated options, one async client, retries with
exponential backoff, image encoding off the event loop, and concurrent samples.

Retry policy: connection failures, timeouts and HTTP 408/429/5xx are retried up to ``max_retries``
times, waiting ``retry_backoff_s`` * 2^attempt (capped, or the server's Retry-After); any other 4xx
is the client's fault and fails at once with the server's reason. Cancellation (``task.cancel()``)
is never swallowed: it aborts the request in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.trace.conventions import get_convention
from spatial_trace_ros.trace.encoding import ImageFormat, depth_as_uint16, encode_color, encode_depth_png
from spatial_trace_ros.trace.model import ModelAnswer, TraceModel, TraceQuery
from spatial_trace_ros.trace.prompts import resolve_prompt

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
# Stands in for a large base64 value in a payload until the serialised body is assembled.
IMAGE_PLACEHOLDER = "@@image@@"
DEPTH_PLACEHOLDER = "@@depth@@"


@dataclass(frozen=True)
class EncodedFrame:
    """A frame ready to send: base64 color (and depth PNG), depth scale, and the encoding time."""

    color_b64: bytes
    depth_b64: bytes | None
    depth_scale_m: float
    encode_s: float

    def blobs(self, color_prefix: bytes = b"") -> dict[str, bytes]:
        out = {IMAGE_PLACEHOLDER: color_prefix + self.color_b64}
        if self.depth_b64 is not None:
            out[DEPTH_PLACEHOLDER] = self.depth_b64
        return out


class HttpBackendOptions(BaseModel):
    """Options every HTTP backend takes (``make_trace_model(name, **options)``)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="server address, e.g. http://gpu-host:25547")
    timeout_s: float = Field(30.0, gt=0, le=600, description="time limit of one attempt [s]")
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="time limit to open a connection [s]")
    max_retries: int = Field(2, ge=0, le=10, description="extra attempts after a failed one")
    retry_backoff_s: float = Field(0.5, ge=0, le=30, description="wait before the first retry, doubled each time [s]")
    retry_backoff_max_s: float = Field(8.0, ge=0, le=120, description="longest wait between attempts [s]")
    convention: str = Field("", description="answer convention; empty = the backend's default")
    prompt: str = Field("", description="prompt template name or text with {instruction}; empty = default")
    trace_dim: str = Field("3d", pattern="^(2d|3d)$", description="ask for a 3D (with depth) or 2D trace")
    api_key: str = Field("", description="bearer token (prefer api_key_env)")
    api_key_env: str = Field("", description="name of the environment variable holding the bearer token")
    image_format: ImageFormat = Field("jpeg", description="how the color image is sent")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality [1-100]")
    depth_png_compression: int = Field(
        1, ge=0, le=9, description="16-bit depth PNG deflate level [0-9]: 0 stores rows, 1-3 ISA-L levels (4-9 = 3)")
    max_concurrency: int = Field(8, ge=1, le=64, description="requests in flight at once for multi-sample queries")
    trust_env: bool = Field(False, description="honour HTTP(S)_PROXY and friends from the environment")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {v!r}")
        return v.rstrip("/")


def _format_option_errors(err: ValidationError, backend: str, options: type[BaseModel]) -> str:
    parts = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"]) or "(options)"
        if e["type"] == "missing":
            field = options.model_fields.get(name)
            parts.append(f"{name} is required ({field.description if field else 'no description'})")
        else:
            parts.append(f"{name} = {e['input']!r}: {e['msg']}")
    return f"invalid options for trace backend {backend!r}: " + "; ".join(parts)


def _error_detail(resp: httpx.Response) -> str:
    """The server's own reason for an error reply, short."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip().replace("\n", " ")
        return text[:200] or resp.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                value = body[key]
                if isinstance(value, dict) and "message" in value:
                    value = value["message"]
                return str(value)[:300]
    return json.dumps(body)[:200]


def _retry_after_s(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpTraceModel(TraceModel):
    """Base of the HTTP backends. Subclasses set ``Options``, ``name``, ``default_convention`` and
    implement ``_sample`` (one request for ``count`` samples)."""

    Options: ClassVar[type[HttpBackendOptions]] = HttpBackendOptions
    name: ClassVar[str] = "http"
    default_convention: ClassVar[str] = "robotracer"
    samples_per_request: bool = False  # True: one request carries all n_samples

    def __init__(self, **options: Any) -> None:
        try:
            self.options = self.Options(**options)
        except ValidationError as err:
            raise ConfigError(_format_option_errors(err, self.name, self.Options)) from None
        self.convention = get_convention(self.options.convention or self.default_convention).name
        self.prompt_template = resolve_prompt(self.options.prompt or self._default_prompt())
        self._token = self._read_token()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    # -- hooks for subclasses ----------------------------------------------------------------------
    def _default_prompt(self) -> str:
        return f"robotracer_{self.options.trace_dim}"

    async def _sample(self, query: TraceQuery, count: int, first_index: int = 0) -> list[ModelAnswer]:
        """``count`` answers in one request; ``first_index`` numbers the first (for per-sample seeds)."""
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------------------------------
    def _read_token(self) -> str:
        if self.options.api_key:
            return self.options.api_key
        if self.options.api_key_env:
            token = os.environ.get(self.options.api_key_env, "")
            if not token:
                raise ConfigError(
                    f"environment variable {self.options.api_key_env} (api_key_env) is not set or empty; "
                    "export the server's token there"
                )
            return token
        return ""

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _http(self) -> httpx.AsyncClient:
        """The client for the running event loop (created on first use, so any loop can own it)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            opts = self.options
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(opts.timeout_s, connect=opts.connect_timeout_s),
                limits=httpx.Limits(max_connections=opts.max_concurrency,
                                    max_keepalive_connections=opts.max_concurrency),
                trust_env=opts.trust_env,
            )
            self._client_loop = loop
            self._semaphore = asyncio.Semaphore(opts.max_concurrency)
        return self._client

    async def encode_frame(self, query: TraceQuery, with_depth: bool) -> EncodedFrame:
        """Color (and depth PNG) as base64, encoded in worker threads in parallel (OpenCV releases the GIL;
        pybase64 turns a megabyte into base64 in ~0.03 ms where the standard library takes ~1.7 ms)."""
        t0 = time.perf_counter()
        frame, opts = query.frame, self.options

        def color_job() -> bytes:
            return pybase64.b64encode(encode_color(frame.color, opts.image_format, opts.jpeg_quality))

        if with_depth and frame.depth is not None:
            depth_u16, scale = depth_as_uint16(frame)

            def depth_job() -> bytes:
                return pybase64.b64encode(encode_depth_png(depth_u16, opts.depth_png_compression))

            color, depth = await asyncio.gather(asyncio.to_thread(color_job), asyncio.to_thread(depth_job))
        else:
            color, depth, scale = await asyncio.to_thread(color_job), None, frame.depth_scale_m
        return EncodedFrame(color, depth, scale, time.perf_counter() - t0)

    async def post_json(
        self, path: str, payload: dict[str, Any], what: str, blobs: dict[str, bytes] | None = None
    ) -> tuple[Any, dict[str, float]]:
        """POST ``payload`` to ``base_url + path`` with retries; the decoded JSON reply and timings [ms].

        ``blobs`` maps placeholder strings used as values in ``payload`` to large ASCII values (base64
        images): they are spliced into the serialised body instead of passing through ``json.dumps``,
        which would scan every byte of them again.
        """
        url = f"{self.options.base_url}{path}"
        t0 = time.perf_counter()
        body = json.dumps(payload).encode()
        for placeholder, blob in (blobs or {}).items():
            body = body.replace(json.dumps(placeholder).encode(), b'"' + blob + b'"', 1)
        timings = {"serialize_ms": (time.perf_counter() - t0) * 1e3}
        client = self._http()
        opts = self.options
        last = ""
        for attempt in range(opts.max_retries + 1):
            wait_s = min(opts.retry_backoff_s * (2**attempt), opts.retry_backoff_max_s)
            t0 = time.perf_counter()
            try:
                resp = await client.post(url, content=body, headers=self._headers())
            except httpx.TimeoutException:
                last = f"no reply within timeout_s = {opts.timeout_s:g} s"
            except httpx.TransportError as err:
                last = f"cannot reach the server ({type(err).__name__}: {err or 'connection failed'})"
            else:
                t1 = time.perf_counter()
                if resp.status_code == 200:
                    try:
                        reply = resp.json()
                    except ValueError:
                        raise ModelError(
                            f"{what} at {url} answered with a body that is not JSON: {resp.text[:200]!r}"
                        ) from None
                    timings["round_trip_ms"] = (t1 - t0) * 1e3
                    timings["decode_ms"] = (time.perf_counter() - t1) * 1e3
                    timings["attempts"] = attempt + 1
                    return reply, timings
                detail = _error_detail(resp)
                if resp.status_code not in _RETRY_STATUS:
                    raise ModelError(
                        f"{what} at {url} refused the request: HTTP {resp.status_code}: {detail}"
                        + (" (check api_key / api_key_env)" if resp.status_code in (401, 403) else "")
                    )
                last = f"HTTP {resp.status_code}: {detail}"
                retry_after = _retry_after_s(resp)
                if retry_after is not None:
                    wait_s = min(retry_after, opts.retry_backoff_max_s)
            if attempt < opts.max_retries:
                await asyncio.sleep(wait_s)
        tries = opts.max_retries + 1
        raise ModelError(f"{what} at {url} failed after {tries} attempt{'s' * (tries > 1)}: {last}")

    def check_sampling(self, n_samples: int, temperature: float) -> None:
        if n_samples > 1 and temperature <= 0:
            raise ConfigError(f"n_samples = {n_samples} needs temperature > 0: greedy decoding gives the same answer "
                              "every time, so the samples could not disagree; set temperature to e.g. 0.7")

    async def _limited(self, job: Callable[[], Awaitable[list[ModelAnswer]]]) -> list[ModelAnswer]:
        self._http()
        assert self._semaphore is not None
        async with self._semaphore:
            return await job()

    async def answer(self, query: TraceQuery) -> list[ModelAnswer]:
        if query.n_samples < 1:
            raise ConfigError(f"n_samples must be at least 1, got {query.n_samples}")
        self.check_sampling(query.n_samples, query.temperature)
        if self.samples_per_request or query.n_samples == 1:
            return await self._limited(lambda: self._sample(query, query.n_samples))
        results = await asyncio.gather(
            *(self._limited(lambda k=k: self._sample(query, 1, k)) for k in range(query.n_samples)),
            return_exceptions=True,
        )
        answers: list[ModelAnswer] = []
        errors: list[ModelError] = []
        for result in results:
            if isinstance(result, ModelError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                answers.extend(result)
        if not answers:
            raise ModelError(f"all {query.n_samples} sample requests failed; first: {errors[0]}")
        for a in answers:
            a.metadata["failed_samples"] = len(errors)
        return answers

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
