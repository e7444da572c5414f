"""Translator(..., device=...): device strings, the CUDA backend's errors where it cannot run
(module missing, no driver or GPU), the CPU path never loading it, info()'s CUDA report, and,
where a GPU exists, the same tokens on "cuda" as on "cpu"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytransformer
from pytransformer import Translator

from conftest import MARIAN_FIXTURES
from cuda_support import GPU_PROBLEM, cuda, needs_gpu

CUDA_REQUESTED = "CUDA requested but"


@pytest.fixture(scope="module")
def model(converted_marian) -> Path:
    return converted_marian("base")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    cases = json.loads((MARIAN_FIXTURES / "base" / "expected.json").read_text())["cases"]
    return [case["text"] for case in cases]


def test_the_default_device_is_the_cpu(model):
    assert Translator(model).device == "cpu"
    assert Translator(model, device="cpu").device == "cpu"


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda0",
                                    "cuda:1:2", " cpu", "", "cuda:٣", None, 0])
def test_a_malformed_device_is_a_value_error(model, device):
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N'"):
        Translator(model, device=device)


@pytest.mark.skipif(not GPU_PROBLEM, reason="a usable GPU is present: 'cuda' works here")
def test_cuda_without_a_gpu_is_a_runtime_error(model):
    # Whether the module is missing or present without a driver or device, the message says
    # the same thing first; with the module, it is the backend's own message.
    with pytest.raises(RuntimeError) as raised:
        Translator(model, device="cuda")
    assert str(raised.value).startswith(CUDA_REQUESTED)
    if cuda is not None:
        assert str(raised.value) == cuda.device_problem(0)


def test_a_gpu_that_does_not_exist_is_a_runtime_error(model):
    with pytest.raises(RuntimeError, match=f"^{CUDA_REQUESTED}"):
        Translator(model, device="cuda:99")


def test_a_missing_cuda_backend_says_how_to_get_one(model, monkeypatch):
    # An installation built without PYTRANSFORMER_CUDA has no pytransformer._cuda; a None
    # entry in sys.modules makes the import fail the same way here.
    monkeypatch.setitem(sys.modules, "pytransformer._cuda", None)
    with pytest.raises(RuntimeError) as raised:
        Translator(model, device="cuda:0")
    message = str(raised.value)
    assert message.startswith(f"{CUDA_REQUESTED} this installation has no CUDA backend (")
    assert message.endswith("reinstall with PYTRANSFORMER_CUDA=ON (docs/cuda.md)")
    information = pytransformer.info()["cuda"]
    assert information["installed"] is False and "no CUDA backend" in information["problem"]


def test_the_cpu_path_never_imports_the_cuda_backend(model, tmp_path):
    script = (
        "import sys, pytransformer\n"
        f"translator = pytransformer.Translator({str(model)!r})\n"
        "translator.translate(['Hello world.'])\n"
        "list(translator.stream('Hello world.'))\n"
        "translator.attention('Hello world.')\n"
        "print('pytransformer._cuda' in sys.modules)\n")
    # Outside the source tree, so the installed package (with its compiled core) is imported.
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_info_reports_the_cuda_backend():
    information = pytransformer.info()["cuda"]
    assert information["installed"] is (cuda is not None)
    if cuda is None:
        assert "no CUDA backend" in information["problem"]
        return
    assert information["device_count"] == cuda.device_count() == len(information["devices"])
    assert information["problem"] == cuda.device_problem(0)
    assert (information["problem"] is None) == (not GPU_PROBLEM)


@needs_gpu
@pytest.mark.parametrize("beam_size", [1, 4])
def test_cuda_gives_the_cpu_tokens(model, texts, beam_size):
    cpu = Translator(model, device="cpu")
    gpu = Translator(model, device="cuda")
    assert gpu.device == "cuda:0"
    on_cpu = cpu.translate(texts, beam_size=beam_size, n_best=beam_size, return_scores=True)
    on_gpu = gpu.translate(texts, beam_size=beam_size, n_best=beam_size, return_scores=True)
    for expected, got in zip(on_cpu, on_gpu, strict=True):
        assert [h.tokens for h in got.hypotheses] == [h.tokens for h in expected.hypotheses]
        assert [h.score for h in got.hypotheses] == pytest.approx(
            [h.score for h in expected.hypotheses], abs=1e-4)
    assert "".join(gpu.stream(texts[0], beam_size=beam_size)) == on_cpu[0].text
    cpu_attention, gpu_attention = cpu.attention(texts[0]), gpu.attention(texts[0])
    assert gpu_attention.target_pieces == cpu_attention.target_pieces
    assert abs(gpu_attention.weights - cpu_attention.weights).max() <= 1e-5
