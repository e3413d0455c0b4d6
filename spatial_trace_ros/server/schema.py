"""The trace server's wire format: ``POST /v1/trace`` request and response bodies.

Plain pydantic models, shared by the server (``spatial_trace_ros.server.app``) and the ``http``
trace client backend, and published by the server as OpenAPI (``GET /openapi.json``). Errors are
any 4xx/5xx status with ``ErrorResponse`` (``{"detail": "<reason>"}``) as the body.

Coordinates in responses are pixels of the image the client sent (u right, v down, pixel centres at
integers as in OpenCV) and depth in metres along the optical axis; ``null`` depth means the model
gave none for that point.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

TRACE_PATH = "/v1/trace"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"

MAX_INSTRUCTION_CHARS = 2000
MAX_SAMPLES = 16
MAX_NEW_TOKENS = 4096
MAX_PROMPT_CHARS = 8000


class Intrinsics(BaseModel):
    """Pinhole intrinsics of the color image (pixels). Optional: models that need them may use them."""

    model_config = ConfigDict(extra="forbid")

    fx: float = Field(gt=0, description="focal length along u [px]")
    fy: float = Field(gt=0, description="focal length along v [px]")
    cx: float = Field(description="principal point u [px]")
    cy: float = Field(description="principal point v [px]")
    width: int = Field(gt=0, description="image width the intrinsics belong to [px]")
    height: int = Field(gt=0, description="image height the intrinsics belong to [px]")

    @field_validator("fx", "fy", "cx", "cy")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class TraceRequest(BaseModel):
    """One RGB-D frame and an instruction. Images travel base64-encoded inside the JSON body."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=1, max_length=MAX_INSTRUCTION_CHARS, description="what the robot should do, in words"
    )
    image_b64: str = Field(min_length=1, description="color image, PNG or JPEG, base64 (standard alphabet)")
    depth_png_b64: str | None = Field(
        default=None,
        description="depth aligned to the color image: single-channel 16-bit PNG, base64; 0 = no reading",
    )
    depth_scale_m: float = Field(
        default=0.001, gt=0, le=1.0, description="metres per depth unit (RealSense: 0.001) [m]"
    )
    intrinsics: Intrinsics | None = Field(default=None, description="color camera intrinsics, if known")
    n_samples: int = Field(
        default=1, ge=1, le=MAX_SAMPLES,
        description="answers wanted; more than 1 needs a model that samples (text models, temperature > 0): "
        "deterministic models answer 400",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature; 0 = greedy")
    seed: int | None = Field(default=None, ge=0, description="sampling seed (text models): the same seed, request "
                             "and model give the same samples")
    prompt: str | None = Field(
        default=None, min_length=1, max_length=MAX_PROMPT_CHARS,
        description="text models: the exact prompt to send (default: the server's --prompt-template filled with "
        "the instruction)",
    )
    enable_spatial: bool | None = Field(
        default=None, description="robotracer-relay: RoboTracer's spatial encoder on or off (default: the relay's "
        "--enable-spatial)",
    )
    max_new_tokens: int = Field(
        default=512, ge=1, le=MAX_NEW_TOKENS, description="longest text answer (text models only) [tokens]"
    )

    @field_validator("instruction")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instruction is blank; say what the robot should do")
        return value


class TraceSample(BaseModel):
    """One answer: the trace as pixel u, v and depth in metres (or null), plus the raw text if any."""

    points: list[tuple[float, float, float | None]] = Field(
        description="trace points [u px, v px, depth m or null], in order"
    )
    text: str | None = Field(default=None, description="the model's raw answer, for text-generating models")


class ModelInfo(BaseModel):
    name: str = Field(description="model name (from the model file or --model-name)")
    version: str = Field(description="model version: --model-version, or a content hash of the model file")
    backend: str = Field(description="serving backend: onnx, torch or transformers")


class Timings(BaseModel):
    """Server-side time spent on this request [ms]."""

    decode: float = Field(description="decoding and resizing the images [ms]")
    queue: float = Field(description="waiting for a batch slot [ms]")
    inference: float = Field(description="running the model on the batch this request was in [ms]")
    total: float = Field(description="from request received to response ready [ms]")


class TraceResponse(BaseModel):
    samples: list[TraceSample] = Field(min_length=1)
    model: ModelInfo
    timings_ms: Timings


class ErrorResponse(BaseModel):
    detail: str = Field(description="what was wrong and how to fix it")
