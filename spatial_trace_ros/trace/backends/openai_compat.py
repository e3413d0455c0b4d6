"""Any OpenAI-compatible chat-completions server with image input: vLLM, SGLang, LMDeploy, TGI...
serving RoboBrain 2.5, Qwen-VL, MolmoAct or a hosted VLM.

Request: ``POST {base_url}/chat/completions`` with one user message holding the image as a base64
``data:`` URL and the rendered prompt. The answer is ``choices[i].message.content``. The prompt
template and the answer convention are options, because each model family answers on its own scale.
Samples go out as concurrent requests (or as one request with ``n`` when ``use_n`` is set, which
vLLM and SGLang support), each with the query's ``temperature`` and, with the ``seed`` option, its own
seed (seed + sample index), so seeded samples are reproducible and still differ from each other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from spatial_trace_ros.errors import ModelError
from spatial_trace_ros.trace.backends.base import IMAGE_PLACEHOLDER, HttpBackendOptions, HttpTraceModel
from spatial_trace_ros.trace.encoding import MIME_TYPES
from spatial_trace_ros.trace.model import ModelAnswer, TraceQuery
from spatial_trace_ros.trace.prompts import render_prompt


class OpenAIOptions(HttpBackendOptions):
    base_url: str = Field("http://127.0.0.1:8000/v1", description="API root including /v1, e.g. http://gpu:8000/v1")
    model: str = Field(description="model name as the server knows it (e.g. the path vLLM was started with)")
    max_tokens: int = Field(1024, ge=1, le=65536, description="longest answer [tokens]")
    system_prompt: str = Field("", description="optional system message")
    use_n: bool = Field(False, description="ask for all samples in one request with the 'n' parameter")
    seed: int | None = Field(None, ge=0, description="sampling seed (vLLM, SGLang, OpenAI); sample k of a request "
                             "uses seed + k, so concurrent samples differ")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra request fields, e.g. top_p")

    @field_validator("model")
    @classmethod
    def _named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name the served model (GET /v1/models on the server lists them)")
        return v


def _content_text(message: Any) -> str | None:
    """The text of a chat message whose content is a string or a list of typed parts."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "".join(parts) if parts else None
    return None


class OpenAICompatibleBackend(HttpTraceModel):
    """Client of an OpenAI-compatible ``/chat/completions`` endpoint."""

    Options = OpenAIOptions
    name: ClassVar[str] = "openai"
    default_convention: ClassVar[str] = "robotracer"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.samples_per_request = self.options.use_n

    def _default_prompt(self) -> str:
        return f"json_trace_{self.options.trace_dim}"

    async def _sample(self, query: TraceQuery, count: int, first_index: int = 0) -> list[ModelAnswer]:
        opts = self.options
        prompt = render_prompt(self.prompt_template, query.instruction)
        encoded = await self.encode_frame(query, with_depth=False)
        messages: list[dict[str, Any]] = []
        if opts.system_prompt:
            messages.append({"role": "system", "content": opts.system_prompt})
        messages.append({
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": IMAGE_PLACEHOLDER}},
                {"type": "text", "text": prompt},
            ],
        })
        payload = {
            **opts.extra_body,
            "model": opts.model,
            "messages": messages,
            "max_tokens": opts.max_tokens,
            "temperature": query.temperature,
            "n": count,
        }
        if opts.seed is not None:
            payload["seed"] = opts.seed + first_index
        prefix = f"data:{MIME_TYPES[opts.image_format]};base64,".encode()
        reply, timings = await self.post_json("/chat/completions", payload, "OpenAI-compatible server",
                                              encoded.blobs(prefix))
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or not choices:
            raise ModelError(
                f"OpenAI-compatible server at {opts.base_url} replied without choices: {str(reply)[:200]!r}"
            )
        answers = []
        for choice in choices:
            text = _content_text(choice.get("message") if isinstance(choice, dict) else None)
            if text is None:
                raise ModelError(
                    f"OpenAI-compatible server at {opts.base_url} replied with a choice without text content: "
                    f"{str(choice)[:200]!r}"
                )
            meta = {
                "encode_ms": encoded.encode_s * 1e3,
                **timings,
                "finish_reason": choice.get("finish_reason"),
                "prompt": prompt,
            }
            answers.append(ModelAnswer(text, self.convention, str(reply.get("model") or opts.model),
                                       timings["round_trip_ms"] / 1e3, metadata=meta))
        return answers
