"""Loading a model holds one copy of its weights.

The linear maps' matrices are repacked once for the selected CPU kernels (ops::LinearWeight) and
their pages of the memory-mapped file are released slice by slice as they are packed
(ModelFile::release_pages); embeddings, biases and LayerNorm parameters are read in place. So
the resident memory a fresh process gains by constructing the model is about the size of the
linear maps' matrices, not twice it (the packed copy plus the file pages read to make it).
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
    linear_mb = sum(
        int(np.prod(shape)) * 4 for name, (dtype, shape) in
        ((name, model_file.tensor_info(name)) for name in model_file.tensor_names())
        if len(shape) == 2 and not name.endswith("embed.weight")) / 2**20
    assert linear_mb > 60  # big enough for the page cache noise below to be small

    completed = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    gained_mb = float(completed.stdout)
    # The packed copy (whole panels: a few columns of padding) and little else; holding the
    # file's pages as well would gain about twice linear_mb.
    assert 0.9 * linear_mb < gained_mb < 1.25 * linear_mb, (gained_mb, linear_mb)
