"""Every knob of ``spatial-trace serve`` in one validated pydantic model.

The command line maps one-to-one onto these fields (``--max-batch-size`` → ``max_batch_size``), so a
bad value is reported with the option's name, all problems at once, before anything is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spatial_trace_ros.errors import ConfigError

TOKEN_ENV_VAR = "SPATIAL_TRACE_SERVER_TOKEN"
BACKEND_NAMES = ("onnx", "torch", "transformers", "robotracer-relay")
RELAY = "robotracer-relay"
_OPTION_NAMES = {"model_path": "--model", "upstream_url": "--upstream", "spool_dir": "--spool"}
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ServerSettings(BaseModel):
    """Configuration of one trace server process (one model, one device)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["onnx", "torch", "transformers", "robotracer-relay"] = Field(
        description="how the model file is run, or robotracer-relay: pass frames on to a RoboTracer server"
    )
    model_path: Path | None = Field(
        default=None, description="ONNX file, TorchScript .pt / torch.export .pt2 file, or checkpoint folder"
    )
    upstream_url: str | None = Field(
        default=None, description="robotracer-relay: the RoboTracer spatial-encoder server, e.g. http://127.0.0.1:25554"
    )
    spool_dir: Path | None = Field(
        default=None, description="robotracer-relay: folder for the frame files the RoboTracer server reads"
    )
    depth_format: Literal["png16_mm", "npy_m"] = Field(
        default="png16_mm", description="robotracer-relay: depth files as 16-bit PNG [mm] or float32 .npy [m]"
    )
    enable_spatial: bool = Field(
        default=True, description="robotracer-relay: spatial encoder on when the request does not say"
    )
    upstream_timeout_s: float = Field(
        default=120.0, gt=0.0, le=3600.0, description="robotracer-relay: time limit of one upstream answer [s]"
    )
    device: str = Field(
        default="auto", description="auto (CUDA when present, else CPU), cpu, cuda or cuda:N"
    )
    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0 for every interface)")
    port: int = Field(default=8500, ge=1, le=65535, description="TCP port to listen on")
    token_file: Path | None = Field(
        default=None, description=f"file holding the bearer token (else the {TOKEN_ENV_VAR} variable)"
    )
    allow_no_auth: bool = Field(default=False, description="serve without a bearer token (trusted networks only)")
    model_name: str | None = Field(default=None, description="name reported to clients (default: file name)")
    model_version: str | None = Field(
        default=None, description="version reported to clients (default: content hash of the model)"
    )
    input_size: tuple[int, int] | None = Field(
        default=None, description="model input width and height [px]; required for TorchScript / torch.export"
    )
    precision: Literal["auto", "fp32", "fp16"] = Field(
        default="auto", description="auto: fp16 on CUDA when the model's outputs allow it, else fp32"
    )
    max_batch_size: int = Field(default=8, ge=1, le=256, description="largest micro-batch [requests]")
    max_batch_wait_ms: float = Field(
        default=2.0, ge=0.0, le=1000.0, description="how long the first request of a batch waits for others [ms]"
    )
    max_queue: int = Field(default=64, ge=1, le=100_000, description="requests waiting beyond this get 503")
    request_timeout_s: float = Field(
        default=30.0, gt=0.0, le=3600.0, description="decode + queue + inference time limit per request [s]"
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="largest request body accepted [bytes]"
    )
    max_image_side_px: int = Field(default=4096, ge=16, le=65535, description="largest image width or height [px]")
    warmup_batches: int = Field(default=2, ge=0, le=100, description="dummy batches run before /readyz says ready")
    cpu_threads: int = Field(default=0, ge=0, le=1024, description="intra-op CPU threads (0: library default)")
    prompt_template: str = Field(
        default="robotracer_3d",
        description="text models: a template name from spatial_trace_ros.trace.prompts, or a template with "
        "{instruction}",
    )
    convention: str = Field(default="robotracer", description="text models: how the answer writes coordinates")
    trust_remote_code: bool = Field(
        default=False, description="let a transformers checkpoint run the Python code in its own folder"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a device; use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (8 <= value[0] <= 8192 and 8 <= value[1] <= 8192):
            raise ValueError(f"{value[0]}x{value[1]} is not a usable model input size; each side 8..8192 px")
        return value

    @field_validator("upstream_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _combinations(self) -> ServerSettings:
        relay_only = [f for f in ("upstream_url", "spool_dir") if getattr(self, f) is not None]
        if self.backend == RELAY:
            missing = [_OPTION_NAMES[f] for f in ("upstream_url", "spool_dir") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"the robotracer-relay backend needs {' and '.join(missing)} (the RoboTracer "
                                 "server's address and a folder it can read)")
            if self.model_path is not None:
                raise ValueError("the robotracer-relay backend hosts no model file; drop --model")
        else:
            if self.model_path is None:
                raise ValueError(f"the {self.backend} backend needs --model (the model file or checkpoint folder)")
            if relay_only:
                raise ValueError(f"{', '.join(_OPTION_NAMES[f] for f in relay_only)} apply only to "
                                 "--backend robotracer-relay")
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("--precision fp16 needs a CUDA device; use --precision fp32 (or auto) on the CPU")
        if self.precision == "fp16" and self.backend == "onnx":
            raise ValueError(
                "--precision fp16 does not apply to ONNX: the server feeds the dtype the graph declares, "
                "so export the model in fp16 instead"
            )
        return self


def parse_size(text: str) -> tuple[int, int]:
    """``"320x240"`` → (320, 240); width first, as image sizes are written."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 320x240)")
    return int(match.group(1)), int(match.group(2))


def build_settings(**values: object) -> ServerSettings:
    """Validate all values at once; errors name the command-line option and the fix."""
    try:
        return ServerSettings(**values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            option = _OPTION_NAMES.get(field, "--" + field.replace("_", "-")) if field else "settings"
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(message if option == "settings" else f"{option}: {message}")
        raise ConfigError("invalid server settings: " + "; ".join(problems)) from None
