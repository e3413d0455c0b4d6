"""The trace stage's settings in one typed model: backend, sampling, depth and frame handling.

``trace_node`` declares every field as a ROS parameter (``ros.params.ParameterBinding``); the demo and
tools build it directly. Backend fields are read-only at run time (the client is built once); the
rest can change between requests.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.trace.pipeline import PipelineConfig

_RO = {"read_only": True}
HTTP_BACKENDS = ("robotracer", "openai", "http")


class TraceStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # -- backend (fixed once the node is up) ---------------------------------------------------------
    backend: Literal["robotracer", "openai", "http", "oracle"] = Field(
        "http", description="trace model client", json_schema_extra=_RO
    )
    base_url: str = Field("", description="model server address; empty = the backend's default", json_schema_extra=_RO)
    model: str = Field("", description="model name for the openai backend (as the server lists it)",
                       json_schema_extra=_RO)
    api_key_env: str = Field(
        "", description="environment variable holding the server's bearer token (never the token itself)",
        json_schema_extra=_RO,
    )
    convention: Literal["", "robotracer", "roborefer", "robobrain", "gemini", "molmoact"] = Field(
        "", description="answer coordinate convention; empty = the backend's default", json_schema_extra=_RO
    )
    prompt: str = Field(
        "", description="prompt template name or text with {instruction}; empty = the backend's default",
        json_schema_extra=_RO,
    )
    trace_dim: Literal["3d", "2d"] = Field(
        "3d", description="ask for a 3D trace (model depth) or a 2D trace (sensor depth)", json_schema_extra=_RO
    )
    timeout_s: float = Field(30.0, gt=0.0, le=600.0, description="time limit of one model request [s]",
                             json_schema_extra=_RO)
    max_retries: int = Field(2, ge=0, le=10, description="extra attempts after a failed request", json_schema_extra=_RO)
    retry_backoff_s: float = Field(0.5, ge=0.0, le=30.0, json_schema_extra=_RO,
                                   description="wait before the first retry, doubled each time [s]")
    backend_options_json: str = Field(
        "{}", description="further backend options as a JSON object (see docs/trace.md)", json_schema_extra=_RO
    )

    # -- sampling and consensus -----------------------------------------------------------------------
    n_samples: int = Field(1, ge=1, le=16, description="samples per instruction; > 1 picks the consensus trace")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="sampling temperature; must be > 0 when n_samples > 1")
    min_agreement: float = Field(0.5, ge=0.0, le=1.0,
                                 description="refuse a multi-sample trace below this agreement [0-1]")
    agreement_radius_m: float = Field(0.05, gt=0.0, le=5.0,
                                      description="samples within this DTW distance of the medoid agree [m]")

    # -- depth ------------------------------------------------------------------------------------------
    depth_source: Literal["auto", "model", "sensor"] = Field(
        "auto", description="point depth: the model's where it gave one (auto), only the model's, or the sensor's"
    )
    depth_window_px: int = Field(5, ge=1, le=51, description="window for robust sensor depth sampling [px], odd")
    depth_check_threshold_m: float = Field(
        0.1, ge=0.0, le=10.0, description="check model depth against the sensor: points further off fail [m]; "
        "0 = off (refused for RGB-only backends asked for 3D traces)"
    )
    depth_check_side: Literal["behind", "both"] = Field(
        "behind", description="depth check fails points behind the visible surface, or also in front of it (both)"
    )
    depth_mismatch_action: Literal["flag", "invalidate"] = Field(
        "invalidate", description="drop points that fail the depth check, or only report them (flag)"
    )
    min_valid_fraction: float = Field(0.5, ge=0.0, le=1.0,
                                      description="refuse a trace when fewer points have a usable depth [0-1]")

    # -- frames and requests ----------------------------------------------------------------------------
    use_depth: bool = Field(True, description="require a time-matched aligned depth image with each color image",
                            json_schema_extra=_RO)
    max_frame_age_s: float = Field(1.0, gt=0.0, le=60.0, description="refuse camera frames older than this [s]")
    max_sync_skew_s: float = Field(0.05, ge=0.0, le=1.0, description="largest color/depth stamp difference [s]")
    max_clock_skew_s: float = Field(
        0.5, ge=0.0, le=10.0, description="refuse frames stamped further than this ahead of now (clock skew) [s]"
    )
    on_busy: Literal["cancel", "queue"] = Field(
        "cancel", description="a new instruction while one is running: cancel the running one, or queue behind it"
    )
    max_queue: int = Field(4, ge=1, le=32, description="instructions waiting at most (on_busy = queue)")
    qos_reliability: Literal["best_effort", "reliable"] = Field(
        "best_effort", description="camera subscription reliability (realsense-ros publishes best effort)",
        json_schema_extra=_RO,
    )

    @model_validator(mode="after")
    def _consistent(self) -> TraceStageConfig:
        if self.n_samples > 1 and self.temperature <= 0:
            raise ValueError(
                f"n_samples = {self.n_samples} needs temperature > 0 (identical greedy samples cannot disagree); "
                "set temperature to e.g. 0.7"
            )
        if self.depth_window_px % 2 == 0:
            raise ValueError(f"depth_window_px must be odd, got {self.depth_window_px}")
        self._model_depth_verifiable()
        return self

    def _rgb_only(self) -> bool:
        """True when the backend sends the model no depth image (it guesses metric depth from RGB)."""
        if self.backend == "openai" or not self.use_depth:
            return True
        try:
            extra = json.loads(self.backend_options_json or "{}")
        except json.JSONDecodeError:
            return False  # backend_options() reports the bad JSON
        return isinstance(extra, dict) and extra.get("send_depth") is False

    def _model_depth_verifiable(self) -> None:
        """An RGB-only HTTP backend is asked for metric depth only when sensor depth checks or replaces it."""
        if self.backend not in HTTP_BACKENDS or self.trace_dim != "3d" or self.depth_source == "sensor":
            return
        if not self.use_depth:
            raise ValueError(
                "trace_dim '3d' with use_depth false asks the model for metric depth that no sensor depth can check "
                "or replace; enable use_depth (aligned depth), or set depth_source 'sensor' with use_depth true"
            )
        if self._rgb_only() and self.depth_check_threshold_m == 0:
            raise ValueError(
                f"backend {self.backend!r} sends the model no depth image, so its metric depth must be checked "
                "against the sensor: set depth_check_threshold_m > 0 (default 0.1), or depth_source 'sensor', or "
                "trace_dim '2d'"
            )

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            depth_source=self.depth_source, depth_window_px=self.depth_window_px,
            depth_check_threshold_m=self.depth_check_threshold_m, depth_check_side=self.depth_check_side,
            depth_mismatch_action=self.depth_mismatch_action,
            min_valid_fraction=self.min_valid_fraction, min_agreement=self.min_agreement,
            agreement_radius_m=self.agreement_radius_m,
        )

    def backend_options(self) -> dict[str, Any]:
        """Keyword options for ``make_trace_model(self.backend, ...)``.

        The HTTP backends get the common fields that are set plus ``backend_options_json``; other
        backends (the simulation oracle, plugins) get only ``backend_options_json``.
        """
        try:
            extra = json.loads(self.backend_options_json or "{}")
        except json.JSONDecodeError as err:
            raise ConfigError(f"backend_options_json is not valid JSON ({err}); give a JSON object") from None
        if not isinstance(extra, dict):
            raise ConfigError(f"backend_options_json must be a JSON object, got {type(extra).__name__}")
        if self.backend not in HTTP_BACKENDS:
            return extra
        options: dict[str, Any] = {
            "timeout_s": self.timeout_s, "max_retries": self.max_retries,
            "retry_backoff_s": self.retry_backoff_s, "trace_dim": self.trace_dim,
        }
        for key in ("base_url", "model", "api_key_env", "convention", "prompt"):
            value = getattr(self, key)
            if value and not (key == "model" and self.backend != "openai"):
                options[key] = value
        return {**options, **extra}
