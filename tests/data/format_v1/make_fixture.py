"""Writes the format-version-1 fixtures and records what a reader must get back from them.

Run once, when the fixtures are created (never to "fix" a failing compatibility test: the
files and their record are frozen so that future readers keep opening version-1 files):

    python tests/data/format_v1/make_fixture.py

Writes tiny.ptm (float32, tied output projection), tiny_f16.ptm, tiny_bf16.ptm and
tiny_int8.ptm, and expected.json: each file's metadata, and per tensor its dtype, shape, data
offset, the SHA-256 of its stored bytes, and its first float32 values and float64 sum as read
back (dequantized).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parents[1] / "python"))

from pytransformer import _core  # noqa: E402
from tiny_models import write_random_model  # noqa: E402

SMALL = dict(d_model=8, heads=2, layers=1, ffn_dim=8, source_vocab_size=6, target_vocab_size=6,
             name="format-v1-fixture")
FIXTURES = {
    "tiny.ptm": dict(quantize=None, output_bias=True, embedding_norm=True),
    "tiny_f16.ptm": dict(quantize="f16", pre_norm=True, linear_bias=False),
    "tiny_bf16.ptm": dict(quantize="bf16", separate_vocabs=True, target_vocab_size=7),
    "tiny_int8.ptm": dict(quantize="int8", activation="gelu", target_languages=["\u2581w4"]),
}


def describe(path: Path) -> dict:
    model_file = _core.ModelFile(path)
    metadata = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in model_file.metadata.items()}
    tensors = {}
    for name in model_file.tensor_names():
        dtype, shape = model_file.tensor_info(name)
        raw = model_file.tensor(name, dequantize=False)
        tensors[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "offset": model_file.tensor_offset(name),
            "sha256": hashlib.sha256(raw.tobytes()).hexdigest(),
            "first_values": model_file.tensor(name).ravel()[:4].tolist(),
            "sum": float(model_file.tensor(name).astype("float64").sum()),
        }
    return {"size": path.stat().st_size, "metadata": metadata, "tensors": tensors}


def main() -> None:
    record = {}
    for file_name, options in FIXTURES.items():
        write_random_model(here / file_name, seed=2024, **{**SMALL, **options})
        record[file_name] = describe(here / file_name)
    (here / "expected.json").write_text(json.dumps(record, indent=0, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
