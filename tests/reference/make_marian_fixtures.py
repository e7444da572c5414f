"""Writes the Marian golden fixtures in tests/data/marian/<variant>/ (needs torch, transformers,
sentencepiece). Run from the repository root:

    python tests/reference/make_marian_fixtures.py

Each variant is a tiny random MarianMTModel saved as a Hugging Face directory (safetensors,
MarianTokenizer files with a SentencePiece model trained here on a few hundred lines of
../shared/data/multi30k) plus expected.json: what transformers computes on it (tokenization,
encoder outputs, teacher-forced logits, greedy and beam-4 generations with sequence scores).
tests/python/test_reference_golden.py checks pytransformer against those numbers without torch.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sentencepiece
import torch
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from marian_weights import randomize_marian  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "multi30k"
OUTPUT = REPO / "tests" / "data" / "marian"
TRAINING_LINES = 400
INPUTS = 10           # sentences generated per variant
LOGIT_SENTENCES = 3   # sentences whose teacher-forced logits are stored
ENCODER_ROWS = 3      # encoder output rows stored per sentence
MAX_NEW_TOKENS = 12


@dataclass
class Variant:
    name: str
    d_model: int = 32
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    ffn_dim: int = 64
    activation: str = "swish"
    tied_output: bool = True     # tie_word_embeddings
    separate_vocabs: bool = False
    scale_embedding: bool = True
    vocab_size: int = 160        # SentencePiece pieces (+ </s> <unk> <pad>)
    target_spm_size: int = 160   # differs from vocab_size only with separate vocabularies
    seed: int = 0
    extra_config: dict = field(default_factory=dict)


VARIANTS = [
    Variant("base"),
    Variant("relu", activation="relu", scale_embedding=False, seed=1),
    Variant("untied", tied_output=False, seed=2),
    Variant("separate_vocabs", separate_vocabs=True, tied_output=False, target_spm_size=120,
            seed=3),
    Variant("deep", d_model=24, encoder_layers=3, decoder_layers=1, heads=3, ffn_dim=40,
            activation="gelu", seed=4),
    Variant("one_head", d_model=16, encoder_layers=1, decoder_layers=3, heads=1, ffn_dim=48,
            seed=5),
]


def read_lines(name: str, count: int, skip: int = 0) -> list[str]:
    with open(DATA / name, encoding="utf-8") as file:
        lines = [line.strip() for line in file]
    return [line for line in lines[skip:] if line][:count]


def train_spm(lines: list[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, minloglevel=2,
        # identity: no 240 KB normalisation table in the fixture (the tokenizer code path is
        # the same whatever the rule).
        normalization_rule_name="identity")
    return model.getvalue()


def marian_vocab(spm_bytes: list[bytes]) -> dict[str, int]:
    """Marian's vocabulary layout: </s> 0, <unk> 1, the pieces, <pad> last."""
    vocab = {"</s>": 0, "<unk>": 1}
    for blob in spm_bytes:
        processor = sentencepiece.SentencePieceProcessor(model_proto=blob)
        for i in range(processor.get_piece_size()):
            if processor.is_control(i) or processor.is_unknown(i):
                continue
            vocab.setdefault(processor.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    return vocab


def build(variant: Variant, workdir: Path) -> Path:
    english = read_lines("train.en", TRAINING_LINES)
    german = read_lines("train.de", TRAINING_LINES)
    source_spm = train_spm(english, variant.vocab_size)
    target_spm = train_spm(german, variant.target_spm_size)
    directory = OUTPUT / variant.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)

    (workdir / "source.spm").write_bytes(source_spm)
    (workdir / "target.spm").write_bytes(target_spm)
    if variant.separate_vocabs:
        source_vocab = marian_vocab([source_spm])
        target_vocab = marian_vocab([target_spm])
    else:
        source_vocab = target_vocab = marian_vocab([source_spm, target_spm])
    (workdir / "vocab.json").write_text(json.dumps(source_vocab), encoding="utf-8")
    (workdir / "target_vocab.json").write_text(json.dumps(target_vocab), encoding="utf-8")
    tokenizer = MarianTokenizer(
        str(workdir / "source.spm"), str(workdir / "target.spm"), str(workdir / "vocab.json"),
        target_vocab_file=str(workdir / "target_vocab.json") if variant.separate_vocabs
        else None, separate_vocabs=variant.separate_vocabs)
    tokenizer.save_pretrained(directory)

    pad = target_vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(source_vocab), decoder_vocab_size=len(target_vocab),
        d_model=variant.d_model, encoder_layers=variant.encoder_layers,
        decoder_layers=variant.decoder_layers, encoder_attention_heads=variant.heads,
        decoder_attention_heads=variant.heads, encoder_ffn_dim=variant.ffn_dim,
        decoder_ffn_dim=variant.ffn_dim, activation_function=variant.activation,
        max_position_embeddings=64, scale_embedding=variant.scale_embedding,
        pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0,
        share_encoder_decoder_embeddings=not variant.separate_vocabs,
        tie_word_embeddings=variant.tied_output, **variant.extra_config)
    torch.manual_seed(variant.seed)
    model = MarianMTModel(config).eval()
    randomize_marian(model, eos=0, eos_boost=1.0)
    model.generation_config = GenerationConfig(
        num_beams=4, max_length=MAX_NEW_TOKENS + 1, bad_words_ids=[[pad]],
        forced_eos_token_id=0, eos_token_id=0, pad_token_id=pad,
        decoder_start_token_id=pad)
    model.save_pretrained(directory)

    sources = read_lines("val.en", INPUTS)
    (directory / "expected.json").write_text(
        json.dumps(expected_outputs(model, tokenizer, sources), separators=(",", ":")),
        encoding="utf-8")
    return directory


def expected_outputs(model: MarianMTModel, tokenizer: MarianTokenizer,
                     sources: list[str]) -> dict:
    cases = []
    for index, text in enumerate(sources):
        input_ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.no_grad():
            encoded = model.get_encoder()(input_ids=input_ids).last_hidden_state[0]
            greedy = model.generate(input_ids, num_beams=1, return_dict_in_generate=True,
                                    output_scores=True)
            beam = model.generate(input_ids, num_beams=4, num_return_sequences=4,
                                  return_dict_in_generate=True, output_scores=True)
        greedy_tokens = greedy.sequences[0, 1:].tolist()
        case = {
            "text": text,
            "source_ids": input_ids[0].tolist(),
            "encoder_rows": [round_list(row) for row in encoded[:ENCODER_ROWS].tolist()],
            "greedy": strip_generated(greedy_tokens, model.config.pad_token_id),
            "greedy_text": tokenizer.decode(greedy_tokens, skip_special_tokens=True),
            "beam": [strip_generated(seq[1:].tolist(), model.config.pad_token_id)
                     for seq in beam.sequences],
            "beam_scores": [float(s) for s in beam.sequences_scores],
        }
        if index < LOGIT_SENTENCES:
            target = [model.config.decoder_start_token_id] + greedy_tokens
            with torch.no_grad():
                logits = model(input_ids=input_ids,
                               decoder_input_ids=torch.tensor([target])).logits[0]
            case["target_ids"] = target
            case["logits"] = [round_list(row) for row in logits.tolist()]
        cases.append(case)
    return {"transformers": __import__("transformers").__version__,
            "torch": torch.__version__, "max_new_tokens": MAX_NEW_TOKENS, "cases": cases}


def strip_generated(tokens: list[int], pad: int) -> list[int]:
    """Generated ids without the padding transformers adds after a finished sequence."""
    while tokens and tokens[-1] == pad:
        tokens.pop()
    return tokens


def round_list(values: list[float]) -> list[float]:
    return [float(f"{v:.7g}") for v in values]


def main() -> int:
    with tempfile.TemporaryDirectory() as workdir:
        for variant in VARIANTS:
            directory = build(variant, Path(workdir))
            size = sum(f.stat().st_size for f in directory.iterdir())
            print(f"{variant.name}: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
