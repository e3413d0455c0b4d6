"""The ``TraceModel`` contract every backend implements (RoboTracer Flask API, OpenAI-compatible,
the project's own server, the simulation oracle) and the lazy registry of backends.

A backend only talks to a model: it sends one frame and an instruction and returns the model's raw
answers. Parsing, deprojection and consensus happen downstream, identically for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spatial_trace_ros.geometry.camera_model import RgbdFrame
from spatial_trace_ros.registry import load_registered


@dataclass(frozen=True)
class TraceQuery:
    """What a backend sends: one aligned RGB-D frame and the operator's instruction."""

    frame: RgbdFrame
    instruction: str
    n_samples: int = 1
    temperature: float = 0.0


@dataclass(frozen=True)
class ModelAnswer:
    """One sample from the model.

    ``text`` is the raw answer (parsed later with ``convention``). Backends whose server already
    returns coordinates (the project's own server) fill ``points_uvd`` with pixel u, v and depth in
    metres (NaN where the model gave none) and may leave ``text`` empty.
    """

    text: str
    convention: str
    model: str = ""
    latency_s: float = 0.0
    points_uvd: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class TraceModel(ABC):
    """An async client for one trace model. Raises ``ModelError`` when the model is down, slow or
    answers with an error; never returns a partial result silently."""

    name: str
    convention: str

    @abstractmethod
    async def answer(self, query: TraceQuery) -> list[ModelAnswer]:
        """``query.n_samples`` answers (fewer only if some samples failed; at least one or raise)."""

    def check_sampling(self, n_samples: int, temperature: float) -> None:  # noqa: B027 - optional hook
        """Raise ``ConfigError`` when this backend cannot give ``n_samples`` independent answers (e.g. a
        server that decodes greedily). Called at start-up by the trace node and ``eval``, and per request."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


# name -> "module:factory"; factory(**options) -> TraceModel.
BACKENDS: dict[str, str] = {
    "robotracer": "spatial_trace_ros.trace.backends.robotracer:RoboTracerBackend",
    "openai": "spatial_trace_ros.trace.backends.openai_compat:OpenAICompatibleBackend",
    "http": "spatial_trace_ros.trace.backends.http:TraceServerBackend",
    "oracle": "spatial_trace_ros.sim.oracle:OracleBackend",
}


def make_trace_model(name: str, **options: Any) -> TraceModel:
    """Build the backend registered under ``name``; unknown names are answered with the known ones."""
    return load_registered(BACKENDS, name, "trace backend")(**options)
