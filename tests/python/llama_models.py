"""Small random-weight Hugging Face Llama / Qwen2 directories for tests (needs torch and
transformers; the `tokenizers` package builds their tokenizer).

`build_llama(directory, kv_heads=2, tied=True)` writes what `save_pretrained` writes
(config.json, model.safetensors or shards, generation_config.json) plus tokenizer.json (a
byte-level BPE trained on SENTENCES) and tokenizer_config.json (with CHAT_TEMPLATE), and returns
the transformers model in eval mode. Weights come from a seeded torch generator, so a seed gives
the same model on every machine. VARIANTS names the shapes the tests cover.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, Qwen2Config, \
    Qwen2ForCausalLM

HIDDEN = 64
HEADS = 4
INTERMEDIATE = 96
VOCAB_SIZE = 300
MAX_POSITIONS = 128
# Special tokens, first in the vocabulary: ids 0..3.
BOS, EOS, IM_START, IM_END = "<s>", "</s>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [BOS, EOS, IM_START, IM_END]
BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = range(4)
SENTENCES = [
    "Once upon a time there was a little girl who lived in a village near the forest.",
    "The quick brown fox jumps over the lazy dog, and the dog does not mind at all.",
    "She liked to play in the garden with her brother and their small white cat.",
    "Every morning the sun rose over the hills and the birds began to sing.",
    "Numbers like 12, 345 and 6789 appear in text too; so do symbols: #, %, & and @.",
    "Où est la gare ? 東京は日本の首都です。 Ein kleines Beispiel auf Deutsch.",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Shapes the tests cover: multi-head, grouped-query and multi-query attention, tied and untied
# output projections, 2 and 3 layers, Qwen2 (Q/K/V biases, no BOS).
VARIANTS: dict[str, dict[str, Any]] = {
    "llama_mha": {"kv_heads": 4, "tied": False, "layers": 2},
    "llama_gqa_tied": {"kv_heads": 2, "tied": True, "layers": 3},
    "llama_mqa": {"kv_heads": 1, "tied": False, "layers": 2},
    "qwen2_gqa": {"kv_heads": 2, "tied": False, "layers": 2, "qwen2": True},
    "qwen2_mqa_tied": {"kv_heads": 1, "tied": True, "layers": 3, "qwen2": True},
}


def llama_config(*, kv_heads: int = HEADS, tied: bool = False, qwen2: bool = False,
                 layers: int = 2, vocab_size: int = VOCAB_SIZE,
                 **overrides: Any) -> LlamaConfig | Qwen2Config:
    """The transformers config of a small model; `overrides` set any other config field."""
    common: dict[str, Any] = {
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_key_value_heads": kv_heads,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": layers,
        "vocab_size": vocab_size,
        "max_position_embeddings": MAX_POSITIONS,
        "tie_word_embeddings": tied,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "eos_token_id": EOS_ID,
        "pad_token_id": None,
    }
    if qwen2:
        common.update(bos_token_id=None, use_sliding_window=False,
                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        common.update(overrides)
        return Qwen2Config(**common)
    common.update(bos_token_id=BOS_ID, attention_bias=False, mlp_bias=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    common.update(overrides)
    return LlamaConfig(**common)


def build_llama(directory: str | Path, *, kv_heads: int = HEADS, tied: bool = False,
                qwen2: bool = False, layers: int = 2, seed: int = 0,
                vocab_size: int = VOCAB_SIZE, tokenizer_vocab_size: int | None = None,
                dtype: torch.dtype = torch.float32, max_shard_size: str | None = None,
                add_bos_token: bool | None = None, chat_template: str | None = CHAT_TEMPLATE,
                **config_overrides: Any) -> PreTrainedModel:
    """Writes a random-weight LlamaForCausalLM (Qwen2ForCausalLM with `qwen2`) and its tokenizer
    to `directory` and returns the model (eval mode, in `dtype`).

    tokenizer_vocab_size: the tokenizer's size (default vocab_size; smaller pads the embedding
    past the tokenizer). dtype: the stored dtype (torch.bfloat16 / float16 checkpoints).
    max_shard_size: e.g. "40KB" writes model-*.safetensors shards and their index.
    add_bos_token: written to tokenizer_config.json when not None; the tokenizer's
    post-processor adds BOS for Llama and not for Qwen2. chat_template: into
    tokenizer_config.json (None: none).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = llama_config(kv_heads=kv_heads, tied=tied, qwen2=qwen2, layers=layers,
                          vocab_size=vocab_size, **config_overrides)
    model = (Qwen2ForCausalLM if qwen2 else LlamaForCausalLM)(config)
    randomize(model, seed)
    model = model.to(dtype).eval()
    save_options: dict[str, Any] = {}
    if max_shard_size is not None:
        save_options["max_shard_size"] = max_shard_size
    model.save_pretrained(directory, **save_options)
    build_tokenizer(directory, tokenizer_vocab_size or vocab_size, add_bos=not qwen2,
                    add_bos_token=add_bos_token, chat_template=chat_template)
    return model


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Draws every parameter from a torch generator seeded with `seed`: matrices
    N(0, 1/in_features), embeddings N(0, 1), norm weights 1 + N(0, 0.1²), biases N(0, 0.1²).
    Tied parameters are drawn once (named_parameters lists them once)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
            if "norm" in name:
                value = 1 + 0.1 * noise
            elif name.endswith(".bias"):
                value = 0.1 * noise
            elif "embed_tokens" in name:
                value = noise
            else:
                value = noise / parameter.shape[1] ** 0.5
            parameter.copy_(value)


def build_tokenizer(directory: str | Path, vocab_size: int, *, add_bos: bool = True,
                    add_bos_token: bool | None = None,
                    chat_template: str | None = CHAT_TEMPLATE) -> Tokenizer:
    """Trains a byte-level BPE of `vocab_size` pieces (SPECIAL_TOKENS first) on SENTENCES and
    writes tokenizer.json and tokenizer_config.json to `directory`. add_bos: the post-processor
    puts BOS in front of every text."""
    directory = Path(directory)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(SENTENCES * 4, trainer)
    if add_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)])
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.save(str(directory / "tokenizer.json"))

    tokenizer_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS if add_bos else None,
        "eos_token": EOS,
        "model_max_length": MAX_POSITIONS,
    }
    if add_bos_token is not None:
        tokenizer_config["add_bos_token"] = add_bos_token
    if chat_template is not None:
        tokenizer_config["chat_template"] = chat_template
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2),
                                                     encoding="utf-8")
    return tokenizer


def edit_config(directory: str | Path, **changes: Any) -> None:
    """Sets (or, with a value of ..., removes) keys of `directory`/config.json."""
    path = Path(directory) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
