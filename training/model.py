"""The PyTorch twin of our engine's Transformer (docs/format.md), for training.

Every choice here is recorded in the exported metadata so the C++ engine computes the same
function: pre-norm layers with a final LayerNorm per stack, token embeddings scaled by
sqrt(d_model), sinusoidal positions (`halves` layout, `tensor2tensor` frequencies, offset 0),
biases on every attention and FFN linear map, ReLU, one embedding matrix shared by the
encoder, the decoder and the output projection (no output bias). Dropout only in training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class ModelConfig:
    """Hyper-parameters; stored in checkpoints and mapped onto `model.*` metadata keys."""

    vocab_size: int = 8000
    d_model: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 1024
    max_positions: int = 256
    dropout: float = 0.1
    layer_norm_epsilon: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal_positions(length: int, d_model: int, offset: int = 0) -> torch.Tensor:
    """(length, d_model) table: column i < d/2 holds sin(p f_i), column d/2 + i cos(p f_i),
    with f_i = 10000^(-i / (d/2 - 1)) and p = offset + row (`halves`, `tensor2tensor`)."""
    half = d_model // 2
    frequencies = torch.exp(
        torch.arange(half, dtype=torch.float64) * (-math.log(10000.0) / (half - 1)))
    positions = torch.arange(offset, offset + length, dtype=torch.float64)
    angles = positions[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()


class Attention(nn.Module):
    """Multi-head attention with biased q, k, v, out projections."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, query: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor | None, causal: bool = False) -> torch.Tensor:
        # query: (B, Tq, d), memory: (B, Tk, d), mask: (B, 1, 1, Tk) bool, True = attend
        batch, query_len, d_model = query.shape
        head_dim = d_model // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, self.heads, head_dim).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(memory)), split(self.v(memory))
        if causal:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(attended.transpose(1, 2).reshape(batch, query_len, d_model))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, ffn_dim)
        self.down = nn.Linear(ffn_dim, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)))


class EncoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        eps = config.layer_norm_epsilon
        self.attn_self_norm = nn.LayerNorm(config.d_model, eps=eps)
        self.attn_self = Attention(config.d_model, config.heads)
        self.ffn_norm = nn.LayerNorm(config.d_model, eps=eps)
        self.ffn = FeedForward(config.d_model, config.ffn_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        normed = self.attn_self_norm(x)
        x = x + self.dropout(self.attn_self(normed, normed, mask))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        eps = config.layer_norm_epsilon
        self.attn_self_norm = nn.LayerNorm(config.d_model, eps=eps)
        self.attn_self = Attention(config.d_model, config.heads)
        self.attn_cross_norm = nn.LayerNorm(config.d_model, eps=eps)
        self.attn_cross = Attention(config.d_model, config.heads)
        self.ffn_norm = nn.LayerNorm(config.d_model, eps=eps)
        self.ffn = FeedForward(config.d_model, config.ffn_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor) -> torch.Tensor:
        normed = self.attn_self_norm(y)
        y = y + self.dropout(self.attn_self(normed, normed, None, causal=True))
        y = y + self.dropout(self.attn_cross(self.attn_cross_norm(y), memory, memory_mask))
        return y + self.dropout(self.ffn(self.ffn_norm(y)))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer with one shared, tied embedding matrix."""

    def __init__(self, config: ModelConfig, pad_id: int) -> None:
        super().__init__()
        self.config = config
        self.pad_id = pad_id
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(config) for _ in range(config.encoder_layers))
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(config) for _ in range(config.decoder_layers))
        self.encoder_final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.decoder_final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer(
            "positions", sinusoidal_positions(config.max_positions, config.d_model),
            persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Embeddings ~ N(0, d^-1/2) so that scaled by sqrt(d) they have unit variance.
        nn.init.normal_(self.embed.weight, std=self.config.d_model ** -0.5)
        for name, parameter in self.named_parameters():
            if name.endswith(".weight") and parameter.dim() == 2 and not name.startswith("embed"):
                nn.init.xavier_uniform_(parameter)
            elif name.endswith(".bias") and "norm" not in name:
                nn.init.zeros_(parameter)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        # ids: (B, T) -> (B, T, d)
        scaled = self.embed(ids) * math.sqrt(self.config.d_model)
        return self.dropout(scaled + self.positions[: ids.shape[1]])

    def source_mask(self, source: torch.Tensor) -> torch.Tensor:
        # (B, S) -> (B, 1, 1, S), True where a key is a real token
        return (source != self.pad_id)[:, None, None, :]

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        # source: (B, S) -> memory (B, S, d)
        mask = self.source_mask(source)
        x = self._embed(source)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return self.encoder_final_norm(x)

    def decode(self, decoder_input: torch.Tensor, memory: torch.Tensor,
               memory_mask: torch.Tensor) -> torch.Tensor:
        # decoder_input: (B, T) -> logits (B, T, V)
        y = self._embed(decoder_input)
        for layer in self.decoder_layers:
            y = layer(y, memory, memory_mask)
        return F.linear(self.decoder_final_norm(y), self.embed.weight)

    def forward(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        memory = self.encode(source)
        return self.decode(decoder_input, memory, self.source_mask(source))


def export_tensors(model: Seq2SeqTransformer) -> dict[str, "torch.Tensor"]:
    """Maps the module's parameters onto our tensor names (docs/format.md), all float32.

    The shared embedding appears as enc.embed, dec.embed and dec.out_proj (one tensor object,
    so the writer can store its bytes once).
    """
    tensors: dict[str, torch.Tensor] = {}
    embed = model.embed.weight.detach().float().contiguous()
    tensors["enc.embed.weight"] = embed
    tensors["dec.embed.weight"] = embed
    tensors["dec.out_proj.weight"] = embed

    def norm(name: str, module: nn.LayerNorm) -> None:
        tensors[f"{name}.gamma"] = module.weight.detach().float().contiguous()
        tensors[f"{name}.beta"] = module.bias.detach().float().contiguous()

    def linear(name: str, module: nn.Linear) -> None:
        tensors[f"{name}.weight"] = module.weight.detach().float().contiguous()
        tensors[f"{name}.bias"] = module.bias.detach().float().contiguous()

    def attention(name: str, module: Attention) -> None:
        for part in ("q", "k", "v", "out"):
            linear(f"{name}_{part}", getattr(module, part))

    for index, layer in enumerate(model.encoder_layers):
        prefix = f"enc.{index}"
        attention(f"{prefix}.attn_self", layer.attn_self)
        norm(f"{prefix}.attn_self_norm", layer.attn_self_norm)
        linear(f"{prefix}.ffn_up", layer.ffn.up)
        linear(f"{prefix}.ffn_down", layer.ffn.down)
        norm(f"{prefix}.ffn_norm", layer.ffn_norm)
    norm("enc.final_norm", model.encoder_final_norm)
    for index, layer in enumerate(model.decoder_layers):
        prefix = f"dec.{index}"
        attention(f"{prefix}.attn_self", layer.attn_self)
        norm(f"{prefix}.attn_self_norm", layer.attn_self_norm)
        attention(f"{prefix}.attn_cross", layer.attn_cross)
        norm(f"{prefix}.attn_cross_norm", layer.attn_cross_norm)
        linear(f"{prefix}.ffn_up", layer.ffn.up)
        linear(f"{prefix}.ffn_down", layer.ffn.down)
        norm(f"{prefix}.ffn_norm", layer.ffn_norm)
    norm("dec.final_norm", model.decoder_final_norm)
    return tensors


def load_exported_tensors(model: Seq2SeqTransformer, tensors: dict) -> None:
    """Inverse of `export_tensors`: copies tensors named as in our format into the module."""
    expected = export_tensors(model)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"model file lacks tensors {missing[:5]}")
    # The shared embedding is read from enc.embed; dec.embed and dec.out_proj are the same.
    targets: dict[str, torch.Tensor] = {"enc.embed.weight": model.embed.weight}
    for index, layer in enumerate(model.encoder_layers):
        _collect_layer(targets, f"enc.{index}", layer)
    _collect_norm(targets, "enc.final_norm", model.encoder_final_norm)
    for index, layer in enumerate(model.decoder_layers):
        _collect_layer(targets, f"dec.{index}", layer)
    _collect_norm(targets, "dec.final_norm", model.decoder_final_norm)
    with torch.no_grad():
        for name, parameter in targets.items():
            value = torch.as_tensor(tensors[name]).float()
            if tuple(value.shape) != tuple(parameter.shape):
                raise ValueError(f"tensor {name!r} has shape {tuple(value.shape)}, "
                                 f"expected {tuple(parameter.shape)}")
            parameter.copy_(value)


def _collect_norm(targets: dict, name: str, module: nn.LayerNorm) -> None:
    targets[f"{name}.gamma"] = module.weight
    targets[f"{name}.beta"] = module.bias


def _collect_layer(targets: dict, prefix: str, layer: nn.Module) -> None:
    for attention_name in ("attn_self", "attn_cross"):
        attention = getattr(layer, attention_name, None)
        if attention is None:
            continue
        for part in ("q", "k", "v", "out"):
            linear = getattr(attention, part)
            targets[f"{prefix}.{attention_name}_{part}.weight"] = linear.weight
            targets[f"{prefix}.{attention_name}_{part}.bias"] = linear.bias
        _collect_norm(targets, f"{prefix}.{attention_name}_norm",
                      getattr(layer, f"{attention_name}_norm"))
    targets[f"{prefix}.ffn_up.weight"] = layer.ffn.up.weight
    targets[f"{prefix}.ffn_up.bias"] = layer.ffn.up.bias
    targets[f"{prefix}.ffn_down.weight"] = layer.ffn.down.weight
    targets[f"{prefix}.ffn_down.bias"] = layer.ffn.down.bias
    _collect_norm(targets, f"{prefix}.ffn_norm", layer.ffn_norm)


@torch.no_grad()
def greedy_decode(model: Seq2SeqTransformer, source: torch.Tensor, bos_id: int, eos_id: int,
                  max_length: int, suppressed_ids: list[int]) -> list[list[int]]:
    """Greedy decoding of a padded source batch (B, S); returns ids without <s> and </s>.

    Recomputes the decoder over the whole prefix each step (no cache): simple and exact,
    fast enough for a dev set of short sentences.
    """
    model.eval()
    memory = model.encode(source)
    memory_mask = model.source_mask(source)
    batch = source.shape[0]
    generated = torch.full((batch, 1), bos_id, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    limit = min(max_length, model.config.max_positions - 1)
    for _ in range(limit):
        logits = model.decode(generated, memory, memory_mask)[:, -1, :]
        if suppressed_ids:
            logits[:, suppressed_ids] = float("-inf")
        next_ids = logits.argmax(dim=-1)
        next_ids = torch.where(finished, torch.full_like(next_ids, eos_id), next_ids)
        generated = torch.cat([generated, next_ids[:, None]], dim=1)
        finished |= next_ids == eos_id
        if bool(finished.all()):
            break
    outputs = []
    for row in generated[:, 1:].tolist():
        outputs.append(row[: row.index(eos_id)] if eos_id in row else row)
    return outputs
