"""The decoder-only language model on a GPU against the same model on the CPU: teacher-forced
logits within 1e-4 and greedy and beam continuations token-identical, on llama2.c's
stories260K (GQA 8/4, interleaved rotary, tied output; converted without torch, so this runs on
a lent GPU machine) and, where transformers is installed, converted random transformers models
(GQA with a tied output, Qwen2 biases). Needs a GPU (skipped with the backend's reason
elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from cuda_support import cuda, needs_gpu, needs_module

pytestmark = [needs_module, needs_gpu]

from conftest import SHARED  # noqa: E402
from pytransformer import LanguageModel, _core  # noqa: E402
from pytransformer.convert import convert_llama2c, convert_llama_hf  # noqa: E402

STORIES = SHARED / "peer-models" / "llama2c-stories260K"


@pytest.fixture(scope="module", params=["stories260K", "llama_gqa_tied", "qwen2_gqa"])
def models(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    path = str(directory / "model.ptm")
    if request.param == "stories260K":
        if not STORIES.is_dir():
            pytest.skip(f"{STORIES} is not here")
        convert_llama2c(STORIES / "stories260K.bin", path, tokenizer=STORIES / "tok512.bin")
    else:
        pytest.importorskip("torch", reason="torch builds the test models")
        pytest.importorskip("transformers", reason="transformers builds the test models")
        from llama_models import VARIANTS, build_llama

        build_llama(directory / "hf", **VARIANTS[request.param])
        convert_llama_hf(directory / "hf", path)
    return _core.LanguageModel(path, 1), cuda().load_language_model(path)


def test_logits_and_searches_match_the_cpu(models):
    cpu, gpu = models
    assert gpu.device == "cuda:0"
    ids = list(np.random.default_rng(0).integers(4, 256, size=40))
    ids = [int(i) for i in ids]
    np.testing.assert_allclose(gpu.teacher_forced_logits([[ids[0]]], [ids])[0],
                               cpu.teacher_forced_logits([[ids[0]]], [ids])[0], atol=1e-4)
    prompts = [ids[:1], ids[:7], ids[:7], ids[:33]]  # 33: the cache's third GPU block
    for beam in (1, 3):
        options = [_core.SearchOptions(model, max_length=40, beam_size=beam)
                   for model in (cpu, gpu)]
        got, want = (_core.generate(model, prompts, option)
                     for model, option in ((gpu, options[1]), (cpu, options[0])))
        assert [[h[0] for h in result] for result in got] == \
            [[h[0] for h in result] for result in want]


def test_the_public_api_runs_a_language_model_on_the_gpu(models, tmp_path):
    cpu, _gpu = models
    model = LanguageModel(cpu.path, device="cuda")
    assert model.complete([1, 5, 9], max_new_tokens=20).tokens == \
        LanguageModel(cpu.path, threads=1).complete([1, 5, 9], max_new_tokens=20).tokens
