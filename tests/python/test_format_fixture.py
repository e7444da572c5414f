"""Version-1 files written when format version 1 was released still open and read back the
values recorded then (tests/data/format_v1/make_fixture.py): a guard for future versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import read_model

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "format_v1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_version_1_fixture_reads_back_recorded_values(file_name):
    expected = EXPECTED[file_name]
    path = FIXTURES / file_name
    assert path.stat().st_size == expected["size"]
    model_file = _core.ModelFile(path)
    assert model_file.format_version == 1
    metadata = {k: (v.hex() if isinstance(v, bytes) else v)
                for k, v in model_file.metadata.items()}
    assert metadata == expected["metadata"]
    assert model_file.tensor_names() == list(expected["tensors"])
    for name, record in expected["tensors"].items():
        dtype, shape = model_file.tensor_info(name)
        assert (dtype, list(shape)) == (record["dtype"], record["shape"]), name
        assert model_file.tensor_offset(name) == record["offset"], name
        raw = model_file.tensor(name, dequantize=False)
        assert hashlib.sha256(raw.tobytes()).hexdigest() == record["sha256"], name
        values = model_file.tensor(name)
        assert values.ravel()[:4].tolist() == record["first_values"], name
        assert values.astype(np.float64).sum() == pytest.approx(record["sum"], rel=1e-12,
                                                               abs=1e-12), name


def test_version_1_fixtures_cover_every_dtype_and_tied_weights():
    dtypes = {t["dtype"] for record in EXPECTED.values() for t in record["tensors"].values()}
    assert dtypes == {"f32", "f16", "bf16", "int8"}
    tiny = EXPECTED["tiny.ptm"]["tensors"]
    assert tiny["dec.out_proj.weight"]["offset"] == tiny["dec.embed.weight"]["offset"]
    _, tensors = read_model(FIXTURES / "tiny_int8.ptm")
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]
