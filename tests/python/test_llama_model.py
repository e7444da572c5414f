"""The decoder-only Llama model (csrc/models/llama_model.h) against Hugging Face transformers on
the same random weights.

Each variant of llama_models.VARIANTS (multi-head, grouped-query and multi-query attention,
tied and untied output projections, Qwen2 with Q/K/V biases) is built with transformers, converted
with convert_llama_hf, and compared: teacher-forced logits at every position (our cached step
path), greedy continuations of prompts of several lengths in one generate() call (the prompt
pass as matrices, then cached steps; prompts of one length share a sub-batch) and beam search,
token for token against transformers' generate() with the same end tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is needed to run the reference model")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")
pytest.importorskip("tokenizers", reason="the test models' tokenizer is built with tokenizers")

from pytransformer import _core  # noqa: E402
from pytransformer.convert import convert_llama_hf  # noqa: E402
from llama_models import VARIANTS, build_llama  # noqa: E402

TOLERANCE = 1e-4
MAX_NEW_TOKENS = 24


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def pair(request, tmp_path_factory):
    """(transformers model, our LanguageModel) of one variant, on the same weights."""
    directory = tmp_path_factory.mktemp(request.param)
    reference = build_llama(directory / "hf", **VARIANTS[request.param])
    path = directory / "model.ptm"
    convert_llama_hf(directory / "hf", path)
    return reference, _core.LanguageModel(str(path), 1)


def prompts(vocab: int, lengths: tuple[int, ...], seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(4, vocab, size=n)] for n in lengths]


def reference_continuation(reference, prompt: list[int], **generate_options) -> list[int]:
    """transformers' generated ids after `prompt`, without the end token it stopped on."""
    config = reference.generation_config
    with torch.no_grad():
        output = reference.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                    dtype=torch.long), max_new_tokens=MAX_NEW_TOKENS,
                                    pad_token_id=config.pad_token_id or 0, **generate_options)
    generated = output[0, len(prompt):].tolist()
    end = config.eos_token_id
    ends = set(end if isinstance(end, list) else [end])
    for i, token in enumerate(generated):
        if token in ends:
            return generated[:i]
    return generated


def test_teacher_forced_logits_match_transformers(pair):
    reference, model = pair
    ids = prompts(model.config["target_vocab_size"], (17,))[0]
    with torch.no_grad():
        want = reference(torch.tensor([ids])).logits[0].numpy()
    got = model.teacher_forced_logits([[ids[0]]], [ids])[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_greedy_continuations_match_transformers(pair):
    reference, model = pair
    batch = prompts(model.config["target_vocab_size"], (1, 5, 5, 12, 30), seed=1)
    options = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS)
    results = _core.generate(model, batch, options)
    for prompt, hypotheses in zip(batch, results):
        tokens, _score, finished = hypotheses[0]
        want = reference_continuation(reference, prompt, do_sample=False)
        assert tokens == want, f"prompt of {len(prompt)} tokens"
        assert finished == (len(want) < MAX_NEW_TOKENS)


def test_beam_search_matches_transformers(pair):
    reference, model = pair
    prompt = prompts(model.config["target_vocab_size"], (7,), seed=2)[0]
    options = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS, beam_size=3)
    tokens = _core.generate(model, [prompt], options)[0][0][0]
    assert tokens == reference_continuation(reference, prompt, do_sample=False, num_beams=3)


def test_sampling_is_reproducible_with_its_seed(pair):
    _reference, model = pair
    prompt = prompts(model.config["target_vocab_size"], (4,), seed=3)[0]

    def sample(seed: int) -> list[int]:
        options = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS, sampling=True,
                                      temperature=4.0, seed=seed)
        return _core.generate(model, [prompt], options)[0][0][0]

    assert sample(7) == sample(7)
    assert any(sample(7) != sample(seed) for seed in range(8, 16))


def test_a_prompt_that_leaves_no_room_in_the_context_is_refused(pair):
    _reference, model = pair
    context = model.config["max_positions"]
    prompt = prompts(model.config["target_vocab_size"], (context - 3,))[0]
    options = _core.SearchOptions(model, max_length=10)
    with pytest.raises(ValueError, match=f"exceeds the model's context of {context} tokens"):
        _core.generate(model, [prompt], options)
    options.max_length = 4  # exactly fills the context
    assert len(_core.generate(model, [prompt], options)[0][0][0]) <= 4


def test_models_refuse_the_other_architecture(pair, tmp_path):
    _reference, model = pair
    with pytest.raises(_core.ModelFormatError, match="decoder-only language model"):
        _core.Model(model.path, 1)
    with pytest.raises(ValueError, match="no encoder output"):
        model.encode([[1, 2, 3]])


def test_a_language_model_refuses_a_translation_model_file():
    default_model = Path(__file__).resolve().parents[2] / "weights" / "model.ptm"
    with pytest.raises(_core.ModelFormatError, match="not a decoder-only language model"):
        _core.LanguageModel(str(default_model), 1)


def test_repetition_penalty_matches_transformers(pair):
    reference, model = pair
    prompt = prompts(model.config["target_vocab_size"], (9,), seed=4)[0]
    options = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS, repetition_penalty=1.3)
    tokens = _core.generate(model, [prompt], options)[0][0][0]
    assert tokens == reference_continuation(reference, prompt, do_sample=False,
                                            repetition_penalty=1.3)


def test_repetition_penalty_in_beam_search_matches_transformers(pair):
    """The penalty on the beams' log-probabilities, with a language model's prompt as context
    (test_decoding_transformers.py checks that it changes translations)."""
    reference, model = pair
    prompt = prompts(model.config["target_vocab_size"], (9,), seed=6)[0]
    options = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS, beam_size=3,
                                  repetition_penalty=3.0)
    tokens = _core.generate(model, [prompt], options)[0][0][0]
    assert tokens == reference_continuation(reference, prompt, do_sample=False, num_beams=3,
                                            repetition_penalty=3.0)


def test_min_p_keeps_the_tokens_near_the_best(pair):
    _reference, model = pair
    prompt = prompts(model.config["target_vocab_size"], (4,), seed=5)[0]

    def run(**options) -> list[int]:
        search = _core.SearchOptions(model, max_length=MAX_NEW_TOKENS, **options)
        return _core.generate(model, [prompt], search)[0][0][0]

    greedy = run()
    # min_p 1: only tokens as likely as the best survive, so sampling is greedy search.
    assert run(sampling=True, temperature=4.0, min_p=1.0, seed=3) == greedy
    with pytest.raises(ValueError, match="min_p must be in"):
        run(sampling=True, min_p=1.5)
    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        run(repetition_penalty=0.0)
