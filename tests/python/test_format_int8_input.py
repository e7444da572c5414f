"""int8 matrices given already quantised (format.Int8Matrix) and their fixed input step
(`.input_scale`, docs/format.md): stored as given, read back, refused when malformed, and
computed as kernels/ref/linear_int8.h's quantize_rows_fixed says (checked against numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import Int8Matrix, read_model, write_model
from tiny_models import random_tensors, tiny_metadata


def int8_model(path, step: float | None, values: np.ndarray | None = None):
    """The tiny model with enc.0.ffn_up.weight given as an Int8Matrix (random integers unless
    `values`) with input step `step`."""
    metadata = tiny_metadata()
    tensors = random_tensors(metadata, seed=3)
    rng = np.random.default_rng(4)
    name = "enc.0.ffn_up.weight"
    rows, cols = tensors[name].shape
    if values is None:
        values = rng.integers(-127, 128, size=(rows, cols)).astype(np.int8)
    scales = rng.uniform(0.001, 0.01, size=rows).astype(np.float32)
    tensors[name] = Int8Matrix(values, scales, step)
    write_model(path, metadata, tensors)
    return path, name, values, scales


def test_an_int8_matrix_is_stored_as_given(tmp_path):
    path, name, values, scales = int8_model(tmp_path / "int8.ptm", step=0.05)
    stored = _core.ModelFile(path)
    assert stored.tensor_info(name)[0] == "int8"
    np.testing.assert_array_equal(stored.tensor(name, dequantize=False), values)
    np.testing.assert_array_equal(stored.tensor(name + ".scale"), scales)
    assert stored.tensor(name + ".input_scale").tolist() == [np.float32(0.05)]
    _, tensors = read_model(path)
    np.testing.assert_array_equal(tensors[name], values.astype(np.float32) * scales[:, None])
    assert not any(key.endswith(".input_scale") for key in tensors)
    _, kept = read_model(path, keep_blocks=True)
    assert isinstance(kept[name], Int8Matrix) and kept[name].input_scale == np.float32(0.05)
    write_model(tmp_path / "again.ptm", *read_model(path, keep_blocks=True))
    assert _core.ModelFile(tmp_path / "again.ptm").tensor(name + ".input_scale")[0] == \
        np.float32(0.05)


def test_the_fixed_step_quantises_the_inputs(tmp_path):
    """A step far above every input rounds them all to 0 (clip(rint(x / step)) = 0), so the
    product is the bias alone: the encoder then gives exactly what the same model gives with
    that matrix's integers all zero; with a small step the integers matter again."""
    coarse, name, values, _ = int8_model(tmp_path / "coarse.ptm", step=1e4)
    zeros, _, _, _ = int8_model(tmp_path / "zeros.ptm", step=None,
                                values=np.zeros_like(values))
    fine, _, _, _ = int8_model(tmp_path / "fine.ptm", step=0.01)
    sources = [[5, 9, 12, 7, 1], [8, 3, 1]]
    outputs = {path.stem: _core.Model(str(path), threads=1).encode(sources)[0]
               for path in (coarse, zeros, fine)}
    np.testing.assert_array_equal(outputs["coarse"], outputs["zeros"])
    assert np.abs(outputs["fine"] - outputs["zeros"]).max() > 1e-3


@pytest.mark.parametrize("step, message", [(0.0, "finite positive"), (float("nan"), "finite"),
                                           (-1.0, "finite positive")])
def test_a_bad_step_is_refused(tmp_path, step, message):
    with pytest.raises(ValueError, match=message):
        Int8Matrix(np.zeros((2, 3), np.int8), np.ones(2, np.float32), step)


def test_the_reader_checks_the_step(tmp_path):
    path, name, _, _ = int8_model(tmp_path / "int8.ptm", step=0.05)
    data = bytearray(path.read_bytes())
    position = bytes(data).rfind(np.float32(0.05).tobytes())  # the step's 4 bytes
    assert position > 0
    data[position:position + 4] = np.float32(-1.0).tobytes()
    broken = tmp_path / "broken.ptm"
    broken.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="input_scale"):
        _core.Model(str(broken), threads=1)
