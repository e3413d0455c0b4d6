"""Hugging Face ``transformers`` backend: a local vision-language checkpoint folder answering in text.

Any checkpoint that ``AutoProcessor`` / ``AutoModelForImageTextToText`` load and whose processor has a
chat template works (Qwen2.5-VL / Qwen3-VL family such as RoboBrain 2.x, LLaVA, ...). Loading is
strictly offline (``local_files_only`` and ``HF_HUB_OFFLINE=1``): nothing is downloaded, a missing
file is a startup error. The prompt comes from ``spatial_trace_ros.trace.prompts``; the server parses
each answer with ``spatial_trace_ros.trace.parser``. Requests run one at a time (``n_samples`` answers
per call through ``num_return_sequences``, seeded by the request's ``seed``); depth is not fed to generic
checkpoints. A request's own ``prompt`` replaces the template.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from spatial_trace_ros.errors import ConfigError, ModelError
from spatial_trace_ros.server.backends.base import TextBackend, TextQuery, model_identity
from spatial_trace_ros.server.settings import ServerSettings

log = logging.getLogger(__name__)
PINNED = "transformers==5.23.0"


class TransformersBackend(TextBackend):
    def __init__(self, settings: ServerSettings) -> None:
        from spatial_trace_ros.trace.conventions import get_convention
        from spatial_trace_ros.trace.prompts import resolve_prompt

        path = Path(settings.model_path).expanduser()
        if not path.is_dir():
            what = "does not exist" if not path.exists() else "is a file"
            raise ConfigError(f"--model {path} {what}; the transformers backend needs a local checkpoint folder")
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a transformers checkpoint folder (no config.json in it)")
        self._template = resolve_prompt(settings.prompt_template)
        self.convention = get_convention(settings.convention).name
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            import transformers
        except ImportError as err:
            raise ConfigError(f"the transformers backend needs {PINNED} (pip install {PINNED}): {err}") from None
        self._torch = torch
        self.device = self._device(settings.device)
        self._dtype = self._precision(settings.precision)
        options = {"local_files_only": True, "trust_remote_code": settings.trust_remote_code}
        try:
            self._processor = self._load_processor(transformers, path, options)
            model = transformers.AutoModelForImageTextToText.from_pretrained(str(path), dtype=self._dtype, **options)
        except ImportError as err:
            raise ConfigError(f"{path} needs a library that is not installed: {err}") from None
        except Exception as err:  # transformers raises many types for a bad checkpoint
            hint = ""
            if "torchvision" in str(err).lower() or "VIDEO_PROCESSOR" in str(err):
                hint = " (this processor needs torchvision built for your torch: pip install torchvision)"
            raise ModelError(f"cannot load checkpoint {path}: {str(err).strip().splitlines()[0]}{hint}") from None
        if getattr(self._processor, "chat_template", None) is None:
            raise ConfigError(f"checkpoint {path} has no chat template (chat_template.jinja); add the model's template")
        self._model = model.to(self.device).eval()
        self.identity = model_identity(settings)

    @staticmethod
    def _load_processor(transformers: object, path: Path, options: dict) -> object:
        """The checkpoint's processor; without torchvision, its image-only form (video is never served)."""
        try:
            return transformers.AutoProcessor.from_pretrained(str(path), **options)
        except ImportError as err:
            if "torchvision" not in str(err).lower():
                raise
            from spatial_trace_ros.server.backends.image_only_processor import load_image_only_processor

            log.info("torchvision is not installed: loading the image half of the processor (%s)",
                     str(err).strip().splitlines()[0])
            return load_image_only_processor(transformers, path, **options)

    def _device(self, requested: str) -> str:
        torch = self._torch
        if requested == "auto":
            return "cuda:0" if torch.cuda.is_available() else "cpu"
        if requested.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"--device {requested}: this torch build sees no CUDA GPU; use --device cpu")
            return requested if ":" in requested else "cuda:0"
        return "cpu"

    def _precision(self, precision: str) -> object:
        torch = self._torch
        if precision == "fp32" or not self.device.startswith("cuda"):
            return torch.float32
        if precision == "fp16":
            return torch.float16
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def generate(self, query: TextQuery) -> list[str]:
        from PIL import Image

        from spatial_trace_ros.trace.prompts import render_prompt

        prompt = query.prompt or render_prompt(self._template, query.instruction)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self._processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        image = Image.fromarray(np.ascontiguousarray(query.rgb))
        inputs = self._processor(text=[text], images=[image], return_tensors="pt").to(self.device, dtype=self._dtype)
        sampling = query.temperature > 0
        options: dict = {"max_new_tokens": query.max_new_tokens, "do_sample": sampling}
        if sampling:
            options.update(temperature=query.temperature, num_return_sequences=query.n_samples)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if query.seed is not None:
            self._torch.manual_seed(query.seed)
        with self._torch.inference_mode():
            out = self._model.generate(**inputs, **options)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self._processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def describe(self) -> str:
        return (f"transformers {type(self._model).__name__} on {self.device} "
                f"({str(self._dtype).removeprefix('torch.')}), answers parsed as {self.convention}")
