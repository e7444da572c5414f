"""What the language-model converters share: the layers of a Llama-family checkpoint mapped onto
our tensor names (docs/format.md, "Decoder-only language models"), given each source's names.

A source names a layer's tensors by role (`LAYER_ROLES`) in a pattern with `{i}` for the layer;
`layer_tensors` takes each with the shape the metadata implies (the converter's `take` checks it
and reads the array, or for a matrix kept in q8_0 / q4_1 blocks a BlockMatrix), fuses gate and
up into `ffn_gate_up` (`concatenate_rows`), adds the Q/K/V biases of a `model.qkv_bias` model
and refuses a non-zero attention output bias, which the format has no place for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from pytransformer.convert._common import ConversionError

if TYPE_CHECKING:
    from pytransformer.format import BlockMatrix

# Roles of a layer's tensors -> our names (None: read, not stored as such).
LAYER_ROLES: dict[str, str | None] = {
    "attn_norm": "attn_self_norm.gamma",
    "q": "attn_self_q.weight",
    "k": "attn_self_k.weight",
    "v": "attn_self_v.weight",
    "out": "attn_self_out.weight",
    "ffn_norm": "ffn_norm.gamma",
    "down": "ffn_down.weight",
    "gate": None,
    "up": None,
}
BIAS_ROLES = {"q_bias": "attn_self_q.bias", "k_bias": "attn_self_k.bias",
              "v_bias": "attn_self_v.bias"}
OUTPUT_BIAS_ROLE = "out_bias"

Take = Callable[[str, tuple[int, ...]], "np.ndarray | BlockMatrix"]


def role_shapes(metadata: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each role's tensor ([out_features, in_features] for matrices)."""
    d = metadata["model.d_model"]
    ffn = metadata["model.decoder_ffn_dim"]
    head_dim = d // metadata["model.decoder_heads"]
    q_rows = metadata["model.decoder_heads"] * head_dim
    kv_rows = metadata["model.kv_heads"] * head_dim
    return {"attn_norm": (d,), "ffn_norm": (d,), "q": (q_rows, d), "k": (kv_rows, d),
            "v": (kv_rows, d), "out": (d, q_rows), "q_bias": (q_rows,), "k_bias": (kv_rows,),
            "v_bias": (kv_rows,), "out_bias": (d,), "gate": (ffn, d), "up": (ffn, d),
            "down": (d, ffn)}


def concatenate_rows(parts: Sequence[np.ndarray | BlockMatrix]) -> np.ndarray | BlockMatrix:
    """The matrices stacked along rows (their columns agree). Matrices of blocks of one dtype
    stay blocks: a block holds 32 values of one row, so stacking rows stacks their rows of
    bytes. Any other mix is dequantised to float32 first."""
    from pytransformer.format import BlockMatrix

    if all(isinstance(part, BlockMatrix) for part in parts) and len(
            {part.dtype for part in parts}) == 1:
        data = np.concatenate([part.data for part in parts], axis=0)
        return BlockMatrix(parts[0].dtype, (data.shape[0], parts[0].shape[1]), data)
    return np.concatenate([part.dequantize() if isinstance(part, BlockMatrix) else part
                           for part in parts], axis=0)


def layer_tensors(metadata: Mapping[str, Any], names: Mapping[str, str], take: Take,
                  has: Callable[[str], bool], source: str,
                  ) -> dict[str, np.ndarray | BlockMatrix]:
    """Every layer's tensors under our names. names: role -> the source's name pattern with
    `{i}` (every role of LAYER_ROLES, BIAS_ROLES and OUTPUT_BIAS_ROLE); take(name, shape): the
    array (ConversionError when missing or misshapen); has(name): whether the source holds it."""
    shapes = role_shapes(metadata)
    tensors: dict[str, np.ndarray | BlockMatrix] = {}
    for layer in range(metadata["model.decoder_layers"]):
        ours = f"dec.{layer}."

        def get(role: str) -> np.ndarray | BlockMatrix:
            return take(names[role].format(i=layer), shapes[role])

        for role, our_name in LAYER_ROLES.items():
            if our_name is not None:
                tensors[ours + our_name] = get(role)
        if metadata["model.qkv_bias"]:
            for role, our_name in BIAS_ROLES.items():
                tensors[ours + our_name] = get(role)
        out_bias = names[OUTPUT_BIAS_ROLE].format(i=layer)
        if has(out_bias) and np.any(get(OUTPUT_BIAS_ROLE) != 0):
            raise ConversionError(f"{source}: tensor '{out_bias}' is not zero: an attention "
                                  "output bias is not supported")
        tensors[ours + "ffn_gate_up.weight"] = concatenate_rows([get("gate"), get("up")])
    return tensors
