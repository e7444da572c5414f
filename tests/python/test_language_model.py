"""pytransformer.LanguageModel (language_model.py) on a converted random-weight Hugging Face
model: its tokenizer and chat template against transformers' own, and its completions against
the core's generate()."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch builds the test model")
transformers = pytest.importorskip("transformers", reason="transformers is the reference")
pytest.importorskip("tokenizers", reason="the model's tokenizer runs on tokenizers")

import pytransformer  # noqa: E402
from pytransformer import _core  # noqa: E402
from pytransformer.convert import convert_llama_hf  # noqa: E402
from llama_models import SENTENCES, build_llama  # noqa: E402

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello! What's 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 東京?"},
]


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("lm")
    build_llama(directory / "hf", kv_heads=2, tied=True, max_position_embeddings=128)
    convert_llama_hf(directory / "hf", directory / "model.ptm")
    return directory


@pytest.fixture(scope="module")
def model(directory) -> pytransformer.LanguageModel:
    return pytransformer.LanguageModel(directory / "model.ptm", threads=1)


def test_the_tokenizer_gives_transformers_ids_and_text(directory, model):
    reference = transformers.AutoTokenizer.from_pretrained(directory / "hf")
    for text in SENTENCES + ["<|im_start|>user\nhi<|im_end|>\n", "  two  spaces\tand tab"]:
        assert model.tokenizer.encode(text, add_bos=False) == reference.encode(
            text, add_special_tokens=False)
        ids = model.tokenizer.encode(text, add_bos=False)
        assert model.tokenizer.decode(ids) == reference.decode(ids, skip_special_tokens=True)


def test_the_chat_template_renders_as_transformers_renders_it(directory, model):
    reference = transformers.AutoTokenizer.from_pretrained(directory / "hf")
    for add_generation_prompt in (True, False):
        assert model.chat_prompt(CONVERSATION, add_generation_prompt=add_generation_prompt) == \
            reference.apply_chat_template(CONVERSATION, tokenize=False,
                                          add_generation_prompt=add_generation_prompt)
    want = reference.apply_chat_template(CONVERSATION, tokenize=True, add_generation_prompt=True)
    want = want["input_ids"] if isinstance(want, dict) or hasattr(want, "keys") else want
    assert model.chat_ids(CONVERSATION) == list(want)


def test_complete_and_stream_give_the_core_s_greedy_continuation(model):
    prompt = model.chat_prompt(CONVERSATION[:2])
    ids = model.prompt_ids(prompt)
    core = _core.LanguageModel(str(model.path), 1)
    want_tokens = _core.generate(core, [ids], _core.SearchOptions(core, max_length=12))[0][0][0]
    completion = model.complete(prompt, max_new_tokens=12)
    assert completion.tokens == want_tokens
    assert completion.text == model.tokenizer.decode(want_tokens)
    assert completion.prompt_tokens == len(ids)
    stream = model.stream(prompt, max_new_tokens=12)
    assert "".join(stream) == completion.text
    assert stream.token_count == len(want_tokens) and stream.tokens == want_tokens


def test_max_new_tokens_is_cut_to_the_room_the_context_leaves(model):
    ids = model.prompt_ids(" ".join(SENTENCES))[: model.context_length - 5]
    completion = model.complete(ids, max_new_tokens=50)
    assert len(completion.tokens) <= 6
    with pytest.raises(ValueError, match="no room is left in the context of 128 tokens"):
        model.complete(ids + ids[:10], max_new_tokens=1)


def test_sampling_options_are_checked(model):
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.complete("hello", temperature=-1)
    with pytest.raises(ValueError, match="requires beam_size 1"):
        model.complete("hello", temperature=0.5, beam_size=2)
    first = model.complete("hello", temperature=0.9, seed=5, max_new_tokens=8)
    assert model.complete("hello", temperature=0.9, seed=5, max_new_tokens=8) == first


def test_a_translation_model_is_not_a_language_model():
    default_model = Path(__file__).resolve().parents[2] / "weights" / "model.ptm"
    with pytest.raises(pytransformer.ModelFormatError, match="not a decoder-only language model"):
        pytransformer.LanguageModel(default_model)
