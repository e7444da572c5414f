"""Random weights for tiny Marian models built with transformers (reference tests and the
golden-fixture script share them, so the fixtures and the live tests exercise the same kind of
model). Needs torch; import it only where torch is available."""

from __future__ import annotations

import torch


def randomize_marian(model, eos: int, eos_boost: float) -> None:
    """Weights large enough that logits are well separated (transformers' 0.02 init makes
    near-ties that no float32 implementation could be expected to break identically), and an
    output bias that favours EOS by `eos_boost` so some hypotheses finish early. Draws from
    torch's global generator: seed it first."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue  # the fixed sinusoidal table (not saved: recomputed on load)
            if "layer_norm" in name:
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter) if name.endswith("weight")
                                else 0.1 * torch.randn_like(parameter))
            elif parameter.dim() == 2:
                parameter.normal_(0.0, 1.0 / parameter.shape[1] ** 0.5)
            else:
                parameter.normal_(0.0, 0.1)
        bias = 0.5 * torch.randn_like(model.final_logits_bias)
        bias[0, eos] += eos_boost
        model.final_logits_bias.copy_(bias)
