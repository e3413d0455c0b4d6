"""An image-only processor for VLM checkpoints whose processor also handles video.

In transformers 5.x the Qwen2.5-VL / Qwen3-VL processors (RoboBrain 2.x, RoboTracer's base) refuse
to load without torchvision, only because of their video half; a trace server needs images only,
and a matching torchvision build is not always at hand (CPU hosts, pinned CUDA stacks). Here the
checkpoint's own processor class is built from its image processor, tokenizer and chat template with
the video slot left out, so prompts, image tokens and pixel patches are exactly the model's.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from spatial_trace_ros.errors import ConfigError

_CONFIG_FILES = ("processor_config.json", "preprocessor_config.json")


def _processor_class_name(path: Path) -> str:
    for name in _CONFIG_FILES:
        file = path / name
        if file.is_file():
            value = json.loads(file.read_text(encoding="utf-8")).get("processor_class")
            if value:
                return str(value)
    raise ConfigError(f"{path} names no processor_class in {' or '.join(_CONFIG_FILES)}; cannot build its processor")


def _chat_template(path: Path, tokenizer: Any) -> str | None:
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    as_json = path / "chat_template.json"
    if as_json.is_file():
        return json.loads(as_json.read_text(encoding="utf-8")).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


def load_image_only_processor(transformers: Any, path: Path, **options: Any) -> Any:
    """The checkpoint's processor class without its video processor (raises ConfigError if it has none)."""
    name = _processor_class_name(path)
    base = getattr(transformers, name, None)
    if base is None or "video_processor" not in inspect.signature(base.__init__).parameters:
        raise ConfigError(f"{path}: processor {name} cannot be built without its video processor; install "
                          "torchvision built for your torch")

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
                     **kwargs: Any) -> None:
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = f"{name}ImageOnly"
    image_processor = transformers.AutoImageProcessor.from_pretrained(str(path), **options)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **options)
    return ImageOnlyProcessor(image_processor, tokenizer, chat_template=_chat_template(path, tokenizer))
