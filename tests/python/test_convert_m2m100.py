"""convert_m2m100 against transformers, live, on random-weight M2M100 / NLLB-200 directories.

Each model is built with transformers (M2M100ForConditionalGeneration of a small shape, random
weights), saved with save_pretrained(safe_serialization=True) beside a tokenizer of its style
made from a SentencePiece BPE model trained here: NllbTokenizer (fairseq's id offset, codes
such as `zho_Hans` as added tokens, in the current and in the legacy source order) or
M2M100Tokenizer (vocab.json in an order of its own, `__zh__` codes after it). The converted file
must give transformers' tokenizer ids, teacher-forced logits within 1e-4, and generate()'s
tokens (greedy and beam search, the target language forced with forced_bos_token_id), with the
language code left out of the text.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformers comparison needs torch")
transformers = pytest.importorskip("transformers", reason="the comparison needs transformers")
import sentencepiece  # noqa: E402

from pytransformer import Translator, _core  # noqa: E402
from pytransformer.convert import ConversionError, convert_m2m100  # noqa: E402

LOGIT_TOLERANCE = 1e-4
NLLB_CODES = ["eng_Latn", "fra_Latn", "por_Latn", "zho_Hans", "zho_Hant", "deu_Latn"]
SENTENCES = [
    "the cat sat on the mat.",
    "where is the station?",
    "Hello, World!",
    "a",
    "a longer sentence with several words that keeps going for a while, and then stops.",
    "zebra quartz jumps over the lazy fox",
    "numbers 12 and 345 too",
    "ÉTÉ à Paris ü",
]


def _train_sentencepiece(seed: int, vocab_size: int) -> bytes:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzéàü"))
    words = ["".join(rng.choice(letters, size=rng.integers(1, 8))) for _ in range(400)]
    words += SENTENCES[0].split() + ["hello", "world", "station", "where", "the", "is"]
    lines = [" ".join(rng.choice(words, size=10)) + str(rng.choice([".", "?", "!", ","]))
             for _ in range(500)] + SENTENCES
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    return model.getvalue()


@dataclass(frozen=True)
class Shape:
    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    ffn: int
    pieces: int  # SentencePiece vocabulary
    activation: str = "relu"
    tie: bool = True
    scale_embedding: bool = True
    eos_boost: float = 0.0  # added to EOS's logit


def _randomize(model: torch.nn.Module, eos: int, eos_boost: float, seed: int) -> None:
    """Weights large enough that logits are well separated, and `eos_boost` added to EOS's
    logit, so that some hypotheses end early: M2M100 has no output bias, but the decoder's final
    LayerNorm has one (beta), and EOS's output row gets eos_boost * beta / |beta|^2 (untied
    models only: the row is also EOS's embedding, the decoder start, when tied)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            elif parameter.dim() == 2:
                parameter.copy_(noise / parameter.shape[1] ** 0.5)
            else:
                parameter.copy_(0.2 * noise)
        # A large beta would favour one token everywhere (a random model then repeats it).
        beta = model.model.decoder.layer_norm.bias
        beta.copy_(0.02 * torch.randn(beta.shape, generator=generator))
        if eos_boost:
            model.lm_head.weight[eos] += eos_boost * beta / beta.dot(beta)
    model.eval()


class M2M100Pair:
    """A random M2M100ForConditionalGeneration with its tokenizer, saved as a directory, and
    its conversion."""

    def __init__(self, directory: Path, style: str, shape: Shape, seed: int,
                 legacy: bool = False):
        directory.mkdir(parents=True)
        self.directory = directory
        self.style = style
        spm = _train_sentencepiece(seed, shape.pieces)
        if style == "nllb":
            pytest.importorskip("google.protobuf",
                                reason="transformers reads the SentencePiece model for "
                                "NllbTokenizer with protobuf")
            staging = directory.parent / f"{directory.name}-spm"
            staging.mkdir()
            (staging / "sentencepiece.bpe.model").write_bytes(spm)
            self.tokenizer = transformers.NllbTokenizer.from_pretrained(
                staging, extra_special_tokens=NLLB_CODES, legacy_behaviour=legacy)
            self.codes = list(NLLB_CODES)
            extra = 2  # NLLB pads its embeddings past the tokenizer's ids
        else:
            processor = sentencepiece.SentencePieceProcessor(model_proto=spm)
            pieces = [processor.id_to_piece(i) for i in range(3, processor.get_piece_size())]
            np.random.default_rng(seed).shuffle(pieces)  # fairseq's order is not the model's
            vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
            for piece in pieces:
                vocab.setdefault(piece, len(vocab))
            (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
            (directory / "sentencepiece.bpe.model").write_bytes(spm)
            self.tokenizer = transformers.M2M100Tokenizer(
                str(directory / "vocab.json"), str(directory / "sentencepiece.bpe.model"),
                language_codes="wmt21")
            self.codes = [f"__{code}__" for code in ("en", "ha", "is", "ja", "cs", "ru", "zh",
                                                     "de")]
            extra = 8  # M2M100Tokenizer's num_madeup_words
        self.tokenizer.save_pretrained(directory)
        # transformers 5 saves an NllbTokenizer as tokenizer.json alone; the published NLLB
        # directories hold the SentencePiece model beside it, which the converter reads.
        (directory / "sentencepiece.bpe.model").write_bytes(spm)
        self.code_ids = {code: self.tokenizer.convert_tokens_to_ids(code) for code in self.codes}
        vocab_size = max(max(self.code_ids.values()) + 1, len(self.tokenizer)) + extra
        self.eos, self.pad = 2, 1
        config = transformers.M2M100Config(
            vocab_size=vocab_size, d_model=shape.d_model, encoder_layers=shape.encoder_layers,
            decoder_layers=shape.decoder_layers, encoder_attention_heads=shape.heads,
            decoder_attention_heads=shape.heads, encoder_ffn_dim=shape.ffn,
            decoder_ffn_dim=shape.ffn, activation_function=shape.activation,
            max_position_embeddings=128, scale_embedding=shape.scale_embedding,
            pad_token_id=self.pad, eos_token_id=self.eos, bos_token_id=0,
            decoder_start_token_id=self.eos, tie_word_embeddings=shape.tie)
        torch.manual_seed(seed)
        self.hf = transformers.M2M100ForConditionalGeneration(config)
        self.hf.set_attn_implementation("eager")
        _randomize(self.hf, self.eos, shape.eos_boost, seed)
        # What the converter turns into the file's generation.* defaults (NLLB's checkpoints
        # record max_length 200; beams are chosen per call).
        self.hf.generation_config = transformers.GenerationConfig(
            max_length=30, eos_token_id=self.eos, pad_token_id=self.pad, bos_token_id=0,
            decoder_start_token_id=self.eos)
        self.hf.save_pretrained(directory, safe_serialization=True)
        self.path = convert_m2m100(directory, directory / "model.ptm")
        self.translator = Translator(self.path)

    def hf_language(self, code: str) -> str:
        """The name transformers' tokenizer takes: `eng_Latn`, or M2M100's `en` for `__en__`."""
        return code.strip("_") if self.style == "m2m100" else code

    def source_ids(self, text: str, source: str) -> list[int]:
        self.tokenizer.src_lang = self.hf_language(source)
        return self.tokenizer(text).input_ids

    def generate(self, texts: list[str], source: str, target: str, *, beam_size: int,
                 max_new_tokens: int, length_penalty: float = 1.0, n_best: int = 1,
                 ) -> list[list[tuple[list[int], bool]]]:
        """transformers' hypotheses per text: ids after the decoder start, EOS and padding
        removed, with a flag for EOS. The target code is forced with forced_bos_token_id."""
        self.tokenizer.src_lang = self.hf_language(source)
        batch = self.tokenizer(texts, return_tensors="pt", padding=True)
        code = self.code_ids[target]
        config = transformers.GenerationConfig(
            num_beams=beam_size, num_return_sequences=n_best, max_new_tokens=max_new_tokens,
            length_penalty=length_penalty, early_stopping=False, do_sample=False,
            forced_bos_token_id=code, eos_token_id=self.eos,
            pad_token_id=self.pad, decoder_start_token_id=self.eos)
        with torch.no_grad():
            sequences = self.hf.generate(**batch, generation_config=config).tolist()
        results = []
        for i in range(len(texts)):
            hypotheses = []
            for sequence in sequences[i * n_best:(i + 1) * n_best]:
                generated = sequence[1:]
                finished = self.eos in generated
                if finished:
                    generated = generated[:generated.index(self.eos)]
                while generated and generated[-1] == self.pad:
                    generated.pop()
                hypotheses.append((generated, finished))
            results.append(hypotheses)
        return results

    def reference_text(self, ids: list[int]) -> str:
        """transformers' decoded text without the language codes (transformers 5's
        M2M100Tokenizer no longer treats them as special tokens)."""
        kept = [i for i in ids if i not in self.code_ids.values()]
        return self.tokenizer.decode(kept, skip_special_tokens=True)


# name: (tokenizer style, shape, NLLB's legacy source order). Tied random models mostly repeat
# one token (its output row is the embedding just read); the untied ones write varied text and
# end at varied lengths.
SHAPES = {
    "nllb-small": ("nllb", Shape(d_model=32, heads=4, encoder_layers=2, decoder_layers=2,
                                 ffn=64, pieces=160, scale_embedding=False), False),
    "nllb-wide": ("nllb", Shape(d_model=64, heads=8, encoder_layers=1, decoder_layers=3,
                                ffn=96, pieces=220, activation="gelu", tie=False,
                                eos_boost=3.0), False),
    "nllb-legacy": ("nllb", Shape(d_model=48, heads=2, encoder_layers=3, decoder_layers=1,
                                  ffn=40, pieces=130, activation="swish", tie=False,
                                  eos_boost=1.0), True),
    "m2m100": ("m2m100", Shape(d_model=40, heads=5, encoder_layers=2, decoder_layers=2,
                               ffn=80, pieces=180, tie=False, eos_boost=1.5), False),
}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("m2m100")
    cache: dict[str, M2M100Pair] = {}

    def get(name: str) -> M2M100Pair:
        if name not in cache:
            style, shape, legacy = SHAPES[name]
            cache[name] = M2M100Pair(root / name, style, shape, seed=len(cache) + 3,
                                     legacy=legacy)
        return cache[name]

    return get


def _languages(pair: M2M100Pair) -> tuple[str, str, str]:
    """(source, target, another target) in the model's codes."""
    if pair.style == "nllb":
        return "eng_Latn", "zho_Hans", "por_Latn"
    return "__en__", "__zh__", "__de__"


@pytest.mark.parametrize("name", list(SHAPES))
def test_tokenizer_ids_match_transformers(pairs, name):
    pair = pairs(name)
    tokenizer = pair.translator.tokenizer
    source, _, _ = _languages(pair)
    for text in SENTENCES:
        ours = tokenizer.encode(text, source_language=source)
        assert ours == pair.source_ids(text, source), text
        # [code] pieces [eos], or NLLB's legacy pieces [eos] [code]
        code = pair.code_ids[source]
        assert (ours[-2:] == [pair.eos, code]) if SHAPES[name][2] else \
            (ours[0] == code and ours[-1] == pair.eos)


@pytest.mark.parametrize("name", list(SHAPES))
def test_teacher_forced_logits_match_transformers(pairs, name):
    pair = pairs(name)
    source, target, _ = _languages(pair)
    sources = [pair.source_ids(text, source) for text in SENTENCES]
    rng = np.random.default_rng(7)
    vocab = len(pair.translator.tokenizer.target_vocab)
    targets = [[pair.eos, pair.code_ids[target]]
               + [int(t) for t in rng.integers(4, vocab, size=int(rng.integers(0, 9)))]
               for _ in sources]
    logits = _core.Model(str(pair.path), threads=1).teacher_forced_logits(sources, targets)
    worst = 0.0
    for source_ids, target_ids, ours in zip(sources, targets, logits):
        with torch.no_grad():
            reference = pair.hf(input_ids=torch.tensor([source_ids]),
                                decoder_input_ids=torch.tensor([target_ids])).logits[0].numpy()
        assert ours.shape == reference.shape
        worst = max(worst, float(np.abs(ours - reference).max()))
    print(name, "max |logit difference|", worst)
    assert worst < LOGIT_TOLERANCE


def _compare(pair: M2M100Pair, *, beam_size: int, max_length: int, length_penalty: float,
             target_index: int = 1, n_best: int = 1
             ) -> dict[str, int]:
    source, *targets = _languages(pair)
    target = targets[target_index - 1]
    # transformers counts the forced code as a generated token, our max_length does not.
    expected = pair.generate(SENTENCES, source, target, beam_size=beam_size,
                             max_new_tokens=max_length + 1,
                             length_penalty=length_penalty, n_best=n_best)
    ours = pair.translator.translate(SENTENCES, source_language=source, target_language=target,
                                     beam_size=beam_size, max_length=max_length,
                                     length_penalty=length_penalty, n_best=n_best)
    tokenizer = pair.translator.tokenizer
    stats = {"hypotheses": 0, "finished": 0, "lengths": []}
    for text, translation, reference in zip(SENTENCES, ours, expected):
        assert len(translation.hypotheses) == len(reference)
        for hypothesis, (want, want_finished) in zip(translation.hypotheses, reference):
            assert want[0] == pair.code_ids[target]  # the forced language code
            got = [pair.code_ids[target]] + [tokenizer.target_id(p) for p in hypothesis.tokens]
            assert got == want, (text, got, want)
            assert hypothesis.finished == want_finished, text
            assert hypothesis.text == pair.reference_text(want), text
            # (A random model may write the code again: it is never text either.)
            assert target not in hypothesis.text
            stats["hypotheses"] += 1
            stats["finished"] += want_finished
            stats["lengths"].append(len(hypothesis.tokens))
    return stats


@pytest.mark.parametrize("name", list(SHAPES))
def test_greedy_matches_generate_with_forced_bos(pairs, name):
    stats = _compare(pairs(name), beam_size=1, max_length=20, length_penalty=1.0)
    print(name, stats)


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("beam_size,n_best", [(4, 1), (3, 2)])
def test_beam_search_matches_generate_with_forced_bos(pairs, name, beam_size, n_best):
    # Without length normalisation (length_penalty 0) forcing the code and giving it as a
    # prefix are the same search; for other penalties see the test below.
    stats = _compare(pairs(name), beam_size=beam_size, max_length=16, length_penalty=0.0,
                     target_index=2, n_best=n_best)
    print(name, stats)


# The forced code counts as generated in the length normalisation (SearchOptions.count_prefix),
# as transformers counts a forced_bos_token_id.
@pytest.mark.parametrize("name", list(SHAPES))
def test_length_normalised_beams_match_generate_with_forced_bos(pairs, name):
    _compare(pairs(name), beam_size=4, max_length=16, length_penalty=1.0)


def test_generation_defaults_count_the_forced_code_as_transformers_does(pairs):
    # generation_config.json says max_length 30: the decoder start, the forced code and 28
    # tokens after it, which is the file's max_length.
    pair = pairs("nllb-small")  # runs to the length limit
    metadata = pair.translator.metadata
    assert metadata["generation.max_length"] == 28
    assert metadata["generation.beam_size"] == 1
    assert metadata["model.position_offset"] == pair.pad + 1
    assert metadata["model.position_frequencies"] == "tensor2tensor"
    source, target, _ = _languages(pair)
    pair.tokenizer.src_lang = source
    batch = pair.tokenizer(SENTENCES[:3], return_tensors="pt", padding=True)
    with torch.no_grad():  # the model's own generation_config.json
        sequences = pair.hf.generate(**batch, forced_bos_token_id=pair.code_ids[target]).tolist()
    ours = pair.translator.translate(SENTENCES[:3], source_language=source,
                                     target_language=target)
    tokenizer = pair.translator.tokenizer
    for translation, sequence in zip(ours, sequences):
        assert [pair.eos, pair.code_ids[target]] + [
            tokenizer.target_id(piece) for piece in translation.tokens] == sequence


# ---- language flags -------------------------------------------------------------------------


def test_short_and_model_codes_name_the_same_languages(pairs):
    pair = pairs("nllb-wide")
    translator = pair.translator
    assert translator.target_languages == NLLB_CODES == translator.source_languages

    def tokens(source: str, target: str) -> list[list[str]]:
        return [t.tokens for t in translator.translate(SENTENCES[:4], source_language=source,
                                                       target_language=target)]

    assert tokens("en", "zh") == tokens("eng_Latn", "zho_Hans") == tokens("eng", "zho_hans")
    assert tokens("en", "zh_TW") == tokens("en", "zho_Hant") != tokens("en", "zho_Hans")
    assert tokens("en", "pt") == tokens("en", "por_Latn")
    with pytest.raises(ValueError, match="pass source_language"):
        translator.translate(["hello"], target_language="zh")
    with pytest.raises(ValueError, match="pass target_language"):
        translator.translate(["hello"], source_language="en")
    with pytest.raises(ValueError, match="unknown target language 'ja'.*eng_Latn, fra_Latn"):
        translator.translate(["hello"], source_language="en", target_language="ja")
    with pytest.raises(ValueError, match="unknown source language 'xx'"):
        translator.stream("hello", source_language="xx", target_language="zh")
    # The forced code leads the decoder's pieces in attention(), never the text.
    attention = translator.attention(SENTENCES[0], source_language="en", target_language="pt")
    assert attention.target_pieces[0] == "por_Latn"
    assert attention.source_pieces[0] == "eng_Latn" and attention.source_pieces[-1] == "</s>"
    expected = translator.translate([SENTENCES[0]], source_language="en",
                                    target_language="pt")[0]
    assert attention.text == expected.text
    assert attention.target_pieces[1:len(expected.tokens) + 1] == expected.tokens
    # Streaming gives the same text, without the code and without counting it.
    with translator.stream(SENTENCES[1], source_language="en", target_language="pt") as stream:
        streamed = "".join(stream)
    best = translator.translate([SENTENCES[1]], source_language="en", target_language="pt")[0]
    assert streamed == best.text and stream.token_count == len(best.tokens)


def test_m2m100_codes_from_short_and_nllb_style_names(pairs):
    translator = pairs("m2m100").translator
    assert translator.target_languages[:3] == ["__en__", "__ha__", "__is__"]

    def tokens(source: str, target: str) -> list[str]:
        return translator.translate([SENTENCES[0]], source_language=source,
                                    target_language=target)[0].tokens

    assert tokens("en", "zh") == tokens("__en__", "__zh__") == tokens("eng_Latn", "zho_Hans")
    assert tokens("en", "de") == tokens("en", "ger")


def test_cli_takes_short_codes_and_requires_from(pairs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    pair = pairs("nllb-wide")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["translate", "-m", str(pair.path), *args],
                             catch_exceptions=False)

    expected = pair.translator.translate([SENTENCES[1]], source_language="eng_Latn",
                                         target_language="zho_Hans")[0].text
    for flags in (["--from", "en", "--to", "zh"], ["--from", "eng_Latn", "--to", "zho_Hans"]):
        result = run(*flags, SENTENCES[1])
        assert result.exit_code == 0, result.output
        assert result.stdout == expected + "\n"
    result = run("--to", "zh", SENTENCES[1])  # the source language detected: English
    assert result.exit_code == 0 and result.stdout == expected + "\n"
    result = run("--to", "zh", "1, 2, 3")
    assert result.exit_code == 1
    assert "cannot tell which language '1, 2, 3' is in: pass --from" in result.stderr
    result = run("--from", "en", SENTENCES[1])
    assert result.exit_code == 1 and "pass --to" in result.stderr
    result = run("--from", "en", "--to", "xx", SENTENCES[1])
    assert result.exit_code == 1 and "unknown target language 'xx'" in result.stderr


def test_cli_convert_detects_m2m100_directories(pairs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    pair = pairs("m2m100")
    output = tmp_path / "converted.ptm"
    result = CliRunner().invoke(app, ["convert", str(pair.directory), str(output), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["converted_from"] == "m2m100" and summary["any_to_any"] is True
    assert summary["source_language"] is None
    assert Translator(output).translate([SENTENCES[0]], source_language="en",
                                        target_language="zh")[0].tokens == \
        pair.translator.translate([SENTENCES[0]], source_language="en",
                                  target_language="zh")[0].tokens


# ---- refusals -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_directory(pairs) -> Path:
    return pairs("nllb-small").directory


def _copy(source: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.ptm"))
    return copy


def _edit_json(path: Path, **changes) -> None:
    value = json.loads(path.read_text(encoding="utf-8"))
    for key, new in changes.items():
        if new is None:
            value.pop(key, None)
        else:
            value[key] = new
    path.write_text(json.dumps(value), encoding="utf-8")


@pytest.mark.parametrize("change,message", [
    (lambda d: (d / "config.json").unlink(), r"config.json: missing"),
    (lambda d: _edit_json(d / "config.json", model_type="bart"),
     r"model_type is 'bart', expected 'm2m_100'"),
    (lambda d: _edit_json(d / "config.json", activation_function="quick_gelu"),
     r"activation_function 'quick_gelu' is not supported"),
    (lambda d: _edit_json(d / "config.json", d_model=33),
     r"d_model 33 is not supported \(sinusoidal positions need an even d_model"),
    (lambda d: _edit_json(d / "config.json", encoder_layers=3),
     r"the checkpoint has no tensor 'model.encoder.layers.2.self_attn.q_proj.weight'"),
    (lambda d: _edit_json(d / "config.json", vocab_size=50),
     r"outside the model's vocabulary of 50"),
    (lambda d: (d / "sentencepiece.bpe.model").unlink(),
     r"sentencepiece.bpe.model: missing .*copy it from the original model"),
    (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
     r"only pytorch_model.bin, which needs torch to read; save the model as safetensors"),
    (lambda d: (d / "model.safetensors").unlink(), r"no model.safetensors"),
    (lambda d: _edit_json(d / "tokenizer_config.json", tokenizer_class="T5Tokenizer"),
     r"tokenizer_class 'T5Tokenizer' is not supported"),
    (lambda d: _edit_json(d / "tokenizer_config.json", extra_special_tokens=[],
                          added_tokens_decoder=None) or _drop_added_tokens(d),
     r"no language codes \(eng_Latn, ...\)"),
    (lambda d: _swap_tokenizer_json_ids(d),
     r"tokenizer.json: piece .* the two files do not belong together"),
])
def test_refusals_name_the_problem(source_directory, tmp_path, change, message):
    directory = _copy(source_directory, tmp_path)
    change(directory)
    with pytest.raises(ConversionError, match=message):
        convert_m2m100(directory, tmp_path / "out.ptm")
    assert not (tmp_path / "out.ptm").exists()


def _drop_added_tokens(directory: Path) -> None:
    path = directory / "tokenizer.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["added_tokens"] = [t for t in document["added_tokens"] if "_" not in t["content"]]
    path.write_text(json.dumps(document), encoding="utf-8")


def _swap_tokenizer_json_ids(directory: Path) -> None:
    path = directory / "tokenizer.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    vocab = document["model"]["vocab"]
    first, second = list(vocab)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    path.write_text(json.dumps(document), encoding="utf-8")


def test_unexpected_tensors_are_refused(source_directory, tmp_path):
    from safetensors.numpy import load_file, save_file

    directory = _copy(source_directory, tmp_path)
    weights = load_file(str(directory / "model.safetensors"))
    weights["model.encoder.layernorm_embedding.weight"] = np.ones(32, dtype=np.float32)
    save_file(weights, str(directory / "model.safetensors"))
    with pytest.raises(ConversionError, match="unexpected tensors .*layernorm_embedding"):
        convert_m2m100(directory, tmp_path / "out.ptm")


def test_m2m100_directory_without_vocab_json_is_refused(pairs, tmp_path):
    directory = _copy(pairs("m2m100").directory, tmp_path)
    (directory / "vocab.json").unlink()
    with pytest.raises(ConversionError, match=r"vocab.json: missing"):
        convert_m2m100(directory, tmp_path / "out.ptm")
    _edit_json(directory / "tokenizer_config.json", tokenizer_class=None)
    with pytest.raises(ConversionError, match=r"no tokenizer: expected vocab.json"):
        convert_m2m100(directory, tmp_path / "out.ptm")
