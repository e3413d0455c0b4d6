"""TorchScript (``.pt``, ``.ts``) and torch.export (``.pt2``) backend, on CUDA when present.

Inputs after the image are told apart by name: ``depth`` [B, 1, H, W]; an instruction as strings
(TorchScript ``List[str]`` argument named ``instruction``/``text``/``prompt``) or as UTF-8 byte ids
(int64 [B, 64] named ``tokens``/``input_ids``/``instruction_tokens``, the only form torch.export keeps).
Loading a TorchScript or exported program runs no client data: it is the server's own model file,
chosen by the operator. Neither format records the input size, so ``--input-size`` is required.
With ``--precision auto`` on CUDA the model runs in fp16 when its fp16 outputs match fp32 within
``FP16_TOLERANCE`` on a probe input; otherwise it stays in fp32 and says so in the log.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.backends.base import (
    DEFAULT_TOKEN_LENGTH,
    TEXT_INPUT_NAMES,
    TOKEN_INPUT_NAMES,
    TensorBackend,
    model_identity,
    require_model_file,
    utf8_tokens,
)
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
        self._module, names = self._load()
        self._extra_inputs = [self._input_kind(name, k) for k, name in enumerate(names[1:])]
        kinds = [k for k in self._extra_inputs if k]
        if not names or len(kinds) != len(names) - 1 or len(set(kinds)) != len(kinds) or (
                "text" in kinds and "tokens" in kinds):
            raise ConfigError(
                f"{path} takes the inputs ({', '.join(names)}); the tensor-model contract has image, optionally "
                f"depth and optionally one instruction input named {' / '.join(TEXT_INPUT_NAMES)} (strings) or "
                f"{' / '.join(TOKEN_INPUT_NAMES)} (int64 UTF-8 byte ids)")
        self.takes_depth = "depth" in kinds
        self.instruction_input = next((k for k in kinds if k != "depth"), None)
        self._dtype = torch.float32
        self.check_output(str(path))
        if settings.precision == "fp16" or (settings.precision == "auto" and device.startswith("cuda")):
            self._try_fp16(required=settings.precision == "fp16")

    @staticmethod
    def _input_kind(name: str, position: int) -> str | None:
        """What an input after the image is: "depth", "text", "tokens" (None: unknown). An unnamed second
        input is depth, as in models made before instruction inputs existed."""
        name = name.lower()
        if name in TEXT_INPUT_NAMES:
            return "text"
        if name in TOKEN_INPUT_NAMES:
            return "tokens"
        if name == "depth" or position == 0:
            return "depth"
        return None

    def _load(self) -> tuple[object, list[str]]:
        torch = self._torch
        try:
            if self._path.suffix == ".pt2":
                program = torch.export.load(str(self._path))
                module = program.module().to(self.device)  # exported in inference mode already; no .eval()
                names = list(program.graph_signature.user_inputs)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated upstream but still widely shipped
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(str(self._path), map_location=self.device).eval()
                names = [a.name for a in module.forward.schema.arguments[1:]]
        except Exception as err:  # torch raises many unrelated types for a bad file
            raise ModelError(f"cannot load torch model {self._path}: {str(err).strip().splitlines()[0]}") from None
        return module, names

    def _try_fp16(self, required: bool) -> None:
        images, depths = self.probe_inputs()
        probe = ["probe", "move the cup to the left"]
        reference = self.infer(images, depths, probe)
        self._module = self._module.half()
        self._dtype = self._torch.float16
        try:
            half = self.infer(images, depths, probe)
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

    def infer(self, images: np.ndarray, depths: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, self._dtype, non_blocking=True)
            args: list = [image]
            for kind in self._extra_inputs:
                if kind == "depth":
                    args.append(torch.from_numpy(np.ascontiguousarray(depths)).to(self.device, self._dtype,
                                                                                  non_blocking=True))
                elif kind == "text":
                    args.append(list(instructions))
                else:
                    args.append(torch.from_numpy(utf8_tokens(instructions, DEFAULT_TOKEN_LENGTH)).to(self.device))
            out = self._module(*args)
            if isinstance(out, (tuple, list)):
                out = out[0]
            return out.float().cpu().numpy()

    def describe(self) -> str:
        fmt = "torch.export" if Path(self._path).suffix == ".pt2" else "TorchScript"
        return (f"{fmt} on {self.device}, input {self.input_width}x{self.input_height} "
                f"{str(self._dtype).removeprefix('torch.')}{' + depth' if self.takes_depth else ''}"
                f"{f' + instruction ({self.instruction_input})' if self.instruction_input else ''}")
