"""A numpy reference of Marian's transformer (src/models/transformer.h), written from Marian's
sources for the tests: it runs a model directly from its Marian items (names, shapes and
layouts as in the .npz / .bin files), so that a converted model can be compared with what
Marian computes without a Marian binary.

Covered: sinusoidal positions (tensor2tensor frequencies, sin | cos halves, from position 0),
embeddings scaled by sqrt(dim-emb), the pre/post-processing strings (`d` dropout: nothing at
inference, `a` residual add, `n` LayerNorm with epsilon 1e-6), post-processing of the
embeddings and of the stack top, self-attention or SSRU decoders (`transformer-decoder-autoreg:
rnn`, `dec-cell: ssru`), cross-attention, the two-layer feed-forward network (relu or swish),
tied or separate embeddings and output layer, the output bias; the decoder's first input is a
zero vector (Marian's start state). Quantised items are used dequantised (float32()), or with
`int8=True` as Marian's int8shiftAlphaAll computes them: a product whose weight has an
activation multiplier `{name}_QuantMultA` (the output layer: `none_QuantMultA`) rounds its
input to integers, clip(round_half_even(x * qmA), -127, 127), multiplies them with the
weight's integers exactly and scales the sum by 1 / (qmA * qmB) (intgemm's shifted uint8
form and its bias correction give the same integers). float64 otherwise.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

LAYER_NORM_EPSILON = 1e-6


def positions(length: int, dim: int, start: int = 0) -> np.ndarray:
    """Marian's inits::sinusoidalPositionEmbeddings: [length, dim]."""
    timescales = dim // 2
    increment = math.log(10000.0) / (timescales - 1)
    table = np.zeros((length, dim))
    for p in range(start, start + length):
        for i in range(timescales):
            v = p * math.exp(i * -increment)
            table[p - start, i] = math.sin(v)
            table[p - start, timescales + i] = math.cos(v)
    return table


class MarianReference:
    def __init__(self, items: Mapping[str, object], config: Mapping[str, object],
                 int8: bool = False) -> None:
        self.items = items
        self.int8 = int8
        self.weights = {name: np.asarray(item.float32(), np.float64)
                        for name, item in items.items()}
        self.config = config
        self.dim = int(config["dim-emb"])
        self.heads = int(config["transformer-heads"])
        tied_src = config["tied-embeddings-all"] or config["tied-embeddings-src"]
        self.source_embed = self.weights["Wemb" if tied_src else "encoder_Wemb"]
        self.target_embed = self.weights["Wemb" if tied_src else "decoder_Wemb"]
        self.tied_output = bool(config["tied-embeddings-all"] or config["tied-embeddings"])
        if self.tied_output:
            self.output = self.target_embed.T
        else:
            self.output = self.weights["decoder_ff_logit_out_W"]
        self.output_bias = (self.weights["decoder_ff_logit_out_b"].reshape(-1)
                            if "decoder_ff_logit_out_b" in self.weights else 0.0)

    # -- building blocks ---------------------------------------------------------------------

    def w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def layer_norm(self, x: np.ndarray, prefix: str, suffix: str = "") -> np.ndarray:
        scale = self.w(f"{prefix}_ln_scale{suffix}").reshape(-1)
        bias = self.w(f"{prefix}_ln_bias{suffix}").reshape(-1)
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + LAYER_NORM_EPSILON) * scale + bias

    def pre(self, prefix: str, ops: str, x: np.ndarray) -> np.ndarray:
        for op in ops:
            if op == "n":
                x = self.layer_norm(x, prefix, "_pre")
        return x

    def post(self, prefix: str, ops: str, x: np.ndarray, previous: np.ndarray) -> np.ndarray:
        for op in ops:
            if op == "a":
                x = x + previous
            elif op == "n":
                x = self.layer_norm(x, prefix)
        return x

    def product(self, x: np.ndarray, name: str, multiplier: str, transposed: bool = False
                ) -> np.ndarray:
        """x @ W (W = item `name` in Marian's orientation, or its transpose), in int8 where
        the reference runs int8 and the item is quantised with an activation multiplier."""
        item = self.items[name]
        if not (self.int8 and getattr(item, "quantized", False) and multiplier in self.items):
            weight = self.w(name)
            return x @ (weight.T if transposed else weight)
        qa = float(np.asarray(self.items[multiplier].float32()).reshape(-1)[0])
        integers = item.integers().astype(np.int64)
        integers = integers.T if transposed else integers
        quantized = np.clip(np.rint(x * qa), -127, 127).astype(np.int64)
        return (quantized @ integers) / (qa * float(item.quant_mult))

    def affine(self, x: np.ndarray, name: str, bias: str | None) -> np.ndarray:
        y = self.product(x, name, f"{name}_QuantMultA")
        return y + self.w(bias).reshape(-1) if bias else y

    def attention(self, prefix: str, query: np.ndarray, memory: np.ndarray,
                  mask: np.ndarray) -> np.ndarray:
        """query [T, d], memory [S, d], mask [T, S] of bools (True: may attend)."""
        q = self.affine(query, f"{prefix}_Wq", f"{prefix}_bq")
        k = self.affine(memory, f"{prefix}_Wk", f"{prefix}_bk")
        v = self.affine(memory, f"{prefix}_Wv", f"{prefix}_bv")
        depth = self.dim // self.heads
        outputs = []
        for h in range(self.heads):
            cols = slice(h * depth, (h + 1) * depth)
            z = q[:, cols] @ k[:, cols].T / math.sqrt(depth)
            z = np.where(mask, z, -np.inf)
            z = np.exp(z - z.max(-1, keepdims=True))
            outputs.append((z / z.sum(-1, keepdims=True)) @ v[:, cols])
        return self.affine(np.concatenate(outputs, -1), f"{prefix}_Wo", f"{prefix}_bo")

    def layer_attention(self, prefix: str, x: np.ndarray, memory: np.ndarray | None,
                        mask: np.ndarray) -> np.ndarray:
        ops_pre = self.config["transformer-preprocess"]
        ops_post = self.config["transformer-postprocess"]
        y = self.pre(f"{prefix}_Wo", ops_pre, x)
        y = self.attention(prefix, y, y if memory is None else memory, mask)
        return self.post(f"{prefix}_Wo", ops_post, y, x)

    def ffn(self, prefix: str, x: np.ndarray) -> np.ndarray:
        y = self.pre(f"{prefix}_ffn", self.config["transformer-preprocess"], x)
        y = self.affine(y, f"{prefix}_W1", f"{prefix}_b1")
        if self.config["transformer-ffn-activation"] == "relu":
            y = np.maximum(y, 0.0)
        else:  # swish
            y = y / (1.0 + np.exp(-y))
        y = self.affine(y, f"{prefix}_W2", f"{prefix}_b2")
        return self.post(f"{prefix}_ffn", self.config["transformer-postprocess"], y, x)

    def ssru(self, prefix: str, x: np.ndarray) -> np.ndarray:
        """Marian's SSRU over a whole target sequence x [T, d] (state starts at zero):
        c_t = sigmoid(f_t) c_{t-1} + (1 - sigmoid(f_t)) (x_t W), f_t = x_t Wf + bf,
        h_t = relu(c_t); then the post-processing named `{prefix}_ffn`."""
        y = self.pre(prefix, self.config["transformer-preprocess"], x)
        candidate = self.product(y, f"{prefix}_W", f"{prefix}_W_QuantMultA")
        forget = 1.0 / (1.0 + np.exp(-self.affine(y, f"{prefix}_Wf", f"{prefix}_bf")))
        state = np.zeros(self.dim)
        outputs = []
        for t in range(len(x)):
            state = forget[t] * state + (1.0 - forget[t]) * candidate[t]
            outputs.append(np.maximum(state, 0.0))
        return self.post(f"{prefix}_ffn", self.config["transformer-postprocess"],
                         np.stack(outputs), x)

    def embed(self, table: np.ndarray, ids: Sequence[int], stack: str,
              zero_first: bool = False) -> np.ndarray:
        rows = [np.zeros(self.dim) if zero_first and i == 0 else table[token]
                for i, token in enumerate(ids)]
        x = math.sqrt(self.dim) * np.stack(rows) + positions(len(ids), self.dim)
        return self.pre(f"{stack}_emb", self.config["transformer-postprocess-emb"], x)

    # -- the model ---------------------------------------------------------------------------

    def encode(self, source: Sequence[int]) -> np.ndarray:
        x = self.embed(self.source_embed, source, "encoder")
        bottom = x
        mask = np.ones((len(source), len(source)), bool)
        for i in range(1, int(self.config["enc-depth"]) + 1):
            x = self.layer_attention(f"encoder_l{i}_self", x, None, mask)
            x = self.ffn(f"encoder_l{i}_ffn", x)
        return self.post("encoder_top", self.config["transformer-postprocess-top"], x, bottom)

    def logits(self, source: Sequence[int], target_inputs: Sequence[int]) -> np.ndarray:
        """Logits [T, V] for every target position; target_inputs[0] is ignored (Marian's
        first decoder input is a zero vector), the others are the previous tokens."""
        context = self.encode(source)
        x = self.embed(self.target_embed, target_inputs, "decoder", zero_first=True)
        bottom = x
        steps = len(target_inputs)
        causal = np.tril(np.ones((steps, steps), bool))
        cross = np.ones((steps, len(source)), bool)
        tied_layers = list(self.config["transformer-tied-layers"])
        for i in range(int(self.config["dec-depth"])):
            layer = tied_layers[i] if tied_layers else i + 1
            if self.config["transformer-decoder-autoreg"] == "rnn":
                x = self.ssru(f"decoder_l{layer}_rnn", x)
            else:
                x = self.layer_attention(f"decoder_l{layer}_self", x, None, causal)
            x = self.layer_attention(f"decoder_l{layer}_context", x, context, cross)
            x = self.ffn(f"decoder_l{layer}_ffn", x)
        x = self.post("decoder_top", self.config["transformer-postprocess-top"], x, bottom)
        if self.tied_output:
            embedding = "Wemb" if "Wemb" in self.items else "decoder_Wemb"
            return self.product(x, embedding, "none_QuantMultA", transposed=True) + self.output_bias
        return self.product(x, "decoder_ff_logit_out_W", "none_QuantMultA") + self.output_bias

    def greedy(self, source: Sequence[int], eos: int, max_length: int,
               suppressed: Sequence[int] = ()) -> list[int]:
        inputs = [0]
        for _ in range(max_length):
            scores = self.logits(source, inputs)[-1]
            scores[list(suppressed)] = -np.inf
            token = int(np.argmax(scores))
            if token == eos:
                break
            inputs.append(token)
        return inputs[1:]

    def beam_search(self, source: Sequence[int], eos: int, beam_size: int, normalize: float,
                    word_penalty: float, max_length_factor: float,
                    suppressed: Sequence[int] = ()) -> list[tuple[list[int], float, bool]]:
        """Marian's BeamSearch::search and History (src/translator/beam_search.cpp,
        history.h) for one sentence translated alone (its batch width is its length): every
        (tokens, normalised score, ended with EOS) hypothesis that finished, best first.

        A step expands each live hypothesis by every word, path scores summed in float32, and
        keeps the best `width` (the first step: beam_size from the start hypothesis; later:
        the number still live); those ending in EOS finish and leave the beam, which narrows.
        When the history holds max-length-factor * width steps, every kept one finishes.
        A finished hypothesis of n steps (EOS included) ranks by (score - wp * n) / n^alpha."""
        limit = np.float32(max_length_factor) * np.float32(len(source))
        live: list[tuple[list[int], np.float32]] = [([], np.float32(0.0))]
        finished: list[tuple[list[int], float, bool]] = []
        step = 0
        while live:
            width = beam_size if step == 0 else len(live)
            expanded = []
            for b, (tokens, score) in enumerate(live):
                logits = self.logits(source, [0] + tokens)[-1]
                log_probs = (logits - logits.max()) - np.log(np.exp(logits - logits.max()).sum())
                log_probs = log_probs.astype(np.float32)
                log_probs[list(suppressed)] = -np.inf
                path = score + log_probs  # float32
                expanded.extend((path[w], b, w) for w in range(len(path)))
            expanded.sort(key=lambda c: (-c[0], c[1] * len(logits) + c[2]))
            length = step + 1
            last = np.float32(length) >= limit
            kept = []
            for score, b, word in expanded[:width]:
                if score == -np.inf:
                    continue
                tokens = live[b][0] + [word]
                if word == eos or last:
                    normalised = (score - np.float32(word_penalty) * np.float32(length)) / (
                        np.float32(length) ** np.float32(normalize))
                    finished.append((tokens[:-1] if word == eos else tokens, float(normalised),
                                     word == eos))
                else:
                    kept.append((tokens, score))
            if last:
                break
            live = kept
            step += 1
        finished.sort(key=lambda h: -h[1])
        return finished
