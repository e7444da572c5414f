"""Loading a model holds one copy of its weights.

The file is read into private memory (ModelFile::open, so that changing the file cannot affect
the model); the linear maps' matrices are repacked once for the selected CPU kernels
(ops::LinearWeight) and the memory of their bytes as read is released slice by slice as they
are packed (ModelFile::release_pages); embeddings, biases and LayerNorm parameters are used
where they were read. So the resident memory a fresh process gains by constructing the model is
about the size of the linear maps' matrices plus the embeddings, not the linear maps twice (the
packed copy plus the bytes read to make it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from tiny_models import write_random_model

MEASURE = """
import sys
from pytransformer import _core

def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

before = resident_mb()
model = _core.Model(sys.argv[1], threads=1)
print(resident_mb() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_loading_holds_one_copy_of_the_weights(tmp_path: Path) -> None:
    if _core.cpu_info()["selected_isa"] == "scalar":
        pytest.skip("the scalar kernels read the weights in place (nothing is packed)")
    path = tmp_path / "model.ptm"
    write_random_model(path, seed=2, d_model=512, heads=8, ffn_dim=2048, layers=2,
                       source_vocab_size=8000, target_vocab_size=16000, tied=False)
    model_file = _core.ModelFile(str(path))
    matrices = [(name, int(np.prod(shape)) * 4) for name, (dtype, shape) in
                ((name, model_file.tensor_info(name)) for name in model_file.tensor_names())
                if len(shape) == 2]
    linear_mb = sum(size for name, size in matrices if not name.endswith("embed.weight")) / 2**20
    embeddings_mb = sum(size for name, size in matrices if name.endswith("embed.weight")) / 2**20
    assert linear_mb > 60  # big enough for the page cache noise below to be small

    completed = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    gained_mb = float(completed.stdout)
    # The packed copy (whole panels: a few columns of padding), the embeddings and little
    # else; holding the matrices as read as well would gain linear_mb more.
    one_copy_mb = linear_mb + embeddings_mb
    assert 0.9 * one_copy_mb < gained_mb < one_copy_mb + 0.25 * linear_mb, (
        gained_mb, linear_mb, embeddings_mb)
