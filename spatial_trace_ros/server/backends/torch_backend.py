"""TorchScript (``.pt``, ``.ts``) and torch.export (``.pt2``) backend, on CUDA when present.

Loading a TorchScript or exported program runs no client data: it is the server's own model file,
chosen by the operator. Neither format records the input size, so ``--input-size`` is required.
With ``--precision auto`` on CUDA the model runs in fp16 when its fp16 outputs match fp32 within
``FP16_TOLERANCE`` on a probe input; otherwise it stays in fp32 and says so in the log.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.backends.base import TensorBackend, model_identity, require_model_file
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)
FP16_TOLERANCE = 1e-2  # normalised image coordinates: 1 % of the image size
_SUFFIXES = (".pt", ".ts", ".pt2")


class TorchBackend(TensorBackend):
    def __init__(self, settings: ServerSettings) -> None:
        path = require_model_file(settings, "a TorchScript (.pt) or torch.export (.pt2) file", _SUFFIXES)
        if settings.input_size is None:
            raise ConfigError("TorchScript and torch.export files do not record their input size; "
                              "pass --input-size WIDTHxHEIGHT")
        import torch

        self._torch = torch
        if settings.device == "auto":
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        elif settings.device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"--device {settings.device}: this torch build sees no CUDA GPU; use --device cpu")
            device = settings.device if ":" in settings.device else "cuda:0"
        else:
            device = "cpu"
        if settings.cpu_threads:
            torch.set_num_threads(settings.cpu_threads)
        self.device = device
        self._path = path
        self.input_width, self.input_height = settings.input_size
        self.batch_limit = None
        self.identity = model_identity(settings)
        self._module, n_inputs = self._load()
        if n_inputs not in (1, 2):
            raise ConfigError(f"{path} takes {n_inputs} inputs; the tensor-model contract has image and optionally "
                              "depth")
        self.takes_depth = n_inputs == 2
        self._dtype = torch.float32
        self.check_output(str(path))
        if settings.precision == "fp16" or (settings.precision == "auto" and device.startswith("cuda")):
            self._try_fp16(required=settings.precision == "fp16")

    def _load(self) -> tuple[object, int]:
        torch = self._torch
        try:
            if self._path.suffix == ".pt2":
                program = torch.export.load(str(self._path))
                module = program.module().to(self.device)  # exported in inference mode already; no .eval()
                n_inputs = len(program.graph_signature.user_inputs)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream but still widely shipped
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(str(self._path), map_location=self.device).eval()
                n_inputs = len(module.forward.schema.arguments) - 1
        except Exception as err:  # torch raises many unrelated types for a bad file
            raise ModelError(f"cannot load torch model {self._path}: {str(err).strip().splitlines()[0]}") from None
        return module, n_inputs

    def _try_fp16(self, required: bool) -> None:
        images, depths = self.probe_inputs()
        reference = self.infer(images, depths)
        self._module = self._module.half()
        self._dtype = self._torch.float16
        try:
            half = self.infer(images, depths)
            error = float(np.nanmax(np.abs(half - reference)))
        except Exception as err:  # some graphs cannot run in fp16
            error, reason = float("inf"), str(err).strip().splitlines()[0]
        else:
            reason = f"fp16 differs from fp32 by {error:.3g} (tolerance {FP16_TOLERANCE})"
        if error <= FP16_TOLERANCE:
            log.info("running in fp16 (max difference from fp32 %.3g)", error)
            return
        if required:
            raise ConfigError(f"--precision fp16: {reason}; use --precision auto or fp32")
        log.warning("staying in fp32: %s", reason)
        self._module, _ = self._load()  # a fresh fp32 copy: converting back would keep fp16-rounded weights
        self._dtype = self._torch.float32

    def infer(self, images: np.ndarray, depths: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, self._dtype, non_blocking=True)
            if self.takes_depth:
                depth = torch.from_numpy(np.ascontiguousarray(depths)).to(self.device, self._dtype, non_blocking=True)
                out = self._module(image, depth)
            else:
                out = self._module(image)
            if isinstance(out, (tuple, list)):
                out = out[0]
            return out.float().cpu().numpy()

    def describe(self) -> str:
        fmt = "torch.export" if Path(self._path).suffix == ".pt2" else "TorchScript"
        return (f"{fmt} on {self.device}, input {self.input_width}x{self.input_height} "
                f"{str(self._dtype).removeprefix('torch.')}{' + depth' if self.takes_depth else ''}")
