"""A tiny LLaVA-architecture checkpoint, made offline, that always answers one fixed text.

Real transformers classes end to end (tokenizer, image processor, chat template, vision tower,
``generate``), with weights set by hand instead of trained: every layer's output projections are zero,
so the last hidden state is the current token's embedding, and the output head maps the prompt's last
token to the answer token and the answer token to end-of-sequence. The answer is one added token, so
greedy decoding and sampling both return it verbatim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ASSISTANT = "ASSISTANT:"
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def build_tiny_vlm(directory: Path, answer: str) -> Path:
    """Save a checkpoint folder whose model answers ``answer`` to any image and prompt."""
    import torch  # imported here so that collecting the test suite does not pay for transformers
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    special = ["<pad>", "<s>", "</s>", "<image>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["Point the 3D object-centric visual trace for the task USER"], trainer)
    tokenizer.add_tokens([AddedToken(ASSISTANT, normalized=False), AddedToken(answer, normalized=False)])
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                           pad_token="<pad>")
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=hf_tokenizer, chat_template=CHAT_TEMPLATE,
                               patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1)
    ids = {t: tokenizer.token_to_id(t) for t in (ASSISTANT, answer, "</s>", "<pad>", "<s>", "<image>")}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=28, patch_size=14, projection_dim=32),
        text_config=LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=64, intermediate_size=128,
                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                max_position_embeddings=512, bos_token_id=ids["<s>"], eos_token_id=ids["</s>"],
                                pad_token_id=ids["<pad>"], tie_word_embeddings=False),
        image_token_index=ids["<image>"], vision_feature_layer=-1, vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    _answer_after_assistant(model, ids, answer, "</s>")
    model.generation_config.eos_token_id = ids["</s>"]
    model.generation_config.pad_token_id = ids["<pad>"]
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def build_tiny_qwen_vl(directory: Path, answer: str) -> Path:
    """A Qwen2.5-VL checkpoint folder laid out like a released one (config, weights, tokenizer, Qwen2-VL image
    processor, chat template, ``processor_class`` Qwen2_5_VLProcessor) whose model answers ``answer``, by the
    zeroed-layer construction above. The processor goes through its real code: dynamic-resolution patches,
    ``<|image_pad|>`` expansion by the image grid, M-RoPE positions in the model."""
    import json

    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=QWEN_SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["Point the 3D object-centric visual trace for the task user"], trainer)
    tokenizer.add_tokens([AddedToken(ASSISTANT, normalized=False), AddedToken(answer, normalized=False)])
    ids = {t: tokenizer.token_to_id(t) for t in (*QWEN_SPECIAL, ASSISTANT, answer)}
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": tokenizer.get_vocab_size(), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 512, "tie_word_embeddings": False,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [0]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _answer_after_assistant(model, ids, answer, "<|im_end|>")
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>"
                            ).save_pretrained(directory)
    Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2,
                             temporal_patch_size=2).save_pretrained(directory)
    (directory / "chat_template.jinja").write_text(QWEN_TEMPLATE)
    (directory / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    return directory


def _answer_after_assistant(model: Any, ids: dict[str, int], answer: str, eos: str) -> None:
    """Make the randomly initialised language model say ``answer`` then ``eos`` after the assistant
    token, whatever the image: the layers add nothing to the residual stream and the head reads the
    last token's embedding."""
    import torch

    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.get_input_embeddings().weight
        head = model.lm_head.weight
        head.zero_()
        head[ids[answer]] = 50.0 * embeddings[ids[ASSISTANT]] / embeddings[ids[ASSISTANT]].norm()
        head[ids[eos]] = 50.0 * embeddings[ids[answer]] / embeddings[ids[answer]].norm()
