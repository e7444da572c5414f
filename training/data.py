"""Corpus preparation for the default en<->zh model.

Reads the Tatoeba pairs (and optionally short WMT news pairs), holds out a fixed dev split,
trains one joint SentencePiece model with the target-language tokens as user-defined symbols,
and turns sentence pairs into id sequences grouped into token-bucketed batches.

Example layout of one training example (both directions are made from every pair):
    source: [>>zh<<] + pieces("I like tea.") + [</s>]     target: pieces("我喜欢茶。") + [</s>]
The target-language token is prepended by id, never by SentencePiece, so that it is always
exactly one piece.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2  # the decoder start token
EOS_ID = 3
LANGUAGE_TOKENS = {"en": ">>en<<", "zh": ">>zh<<"}
LANGUAGES = ("en", "zh")

# WMT news test sets aligned by line; both directions of every file are used when included.
WMT_FILES = (
    ("newstest2017.en", "newstest2017.zh"),
    ("newstest2018.en", "newstest2018.zh"),
    ("newstest2019.en-zh.en", "newstest2019.en-zh.zh"),
    ("newstest2019.zh-en.en", "newstest2019.zh-en.zh"),
    ("newstest2020.en-zh.en", "newstest2020.en-zh.zh"),
    ("newstest2020.zh-en.en", "newstest2020.zh-en.zh"),
)


@dataclass(frozen=True)
class Pair:
    """One aligned sentence pair."""

    en: str
    zh: str


@dataclass(frozen=True)
class Example:
    """One training example: source and target ids, both ending with </s>."""

    source: list[int]
    target: list[int]


def read_tatoeba(path: Path) -> list[Pair]:
    """Reads English<TAB>Chinese<TAB>attribution lines, skipping malformed or empty ones."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        en, zh = fields[0].strip(), fields[1].strip()
        if en and zh:
            pairs.append(Pair(en, zh))
    return pairs


def read_wmt(folder: Path, max_chars: int) -> list[Pair]:
    """Reads the WMT news pairs whose both sides are at most `max_chars` characters long."""
    pairs = []
    for en_name, zh_name in WMT_FILES:
        en_lines = (folder / en_name).read_text(encoding="utf-8").splitlines()
        zh_lines = (folder / zh_name).read_text(encoding="utf-8").splitlines()
        if len(en_lines) != len(zh_lines):
            raise ValueError(f"{folder / en_name}: {len(en_lines)} lines but "
                             f"{zh_name} has {len(zh_lines)}")
        for en, zh in zip(en_lines, zh_lines):
            en, zh = en.strip(), zh.strip()
            if en and zh and len(en) <= max_chars and len(zh) <= max_chars:
                pairs.append(Pair(en, zh))
    return pairs


def split_dev(pairs: list[Pair], dev_size: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Splits off about `dev_size` pairs, never trained on.

    Whole groups of pairs sharing an English or a Chinese sentence go to one side, so no dev
    sentence is ever seen in training (Tatoeba often lists several translations of one
    sentence). The split depends only on the pairs and the seed.
    """
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(pair.en, []).append(pair)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    dev: list[Pair] = []
    for key in keys:
        if len(dev) >= dev_size:
            break
        dev.extend(groups[key])
    dev_en = {pair.en for pair in dev}
    dev_zh = {pair.zh for pair in dev}
    train = [pair for pair in pairs if pair.en not in dev_en and pair.zh not in dev_zh]
    return train, dev


def train_sentencepiece(pairs: list[Pair], model_prefix: Path, vocab_size: int) -> bytes:
    """Trains the joint unigram SentencePiece model and returns its serialized bytes.

    Ids: 0 <pad>, 1 <unk>, 2 <s>, 3 </s>, 4 >>en<<, 5 >>zh<<, then the learned pieces and
    byte-fallback pieces (so rare Chinese characters never become <unk>).
    """
    import sentencepiece as spm

    text_path = model_prefix.with_suffix(".txt")
    with text_path.open("w", encoding="utf-8") as text:
        for pair in pairs:
            text.write(pair.en + "\n")
            text.write(pair.zh + "\n")
    spm.SentencePieceTrainer.train(
        input=str(text_path),
        model_prefix=str(model_prefix),
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=0.9995,
        byte_fallback=True,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        user_defined_symbols=[LANGUAGE_TOKENS[lang] for lang in LANGUAGES],
        input_sentence_size=1_000_000,
        shuffle_input_sentence=True,
        num_threads=1,
        minloglevel=2,
    )
    return model_prefix.with_suffix(".model").read_bytes()


def load_sentencepiece(model_bytes: bytes):
    """Returns a SentencePieceProcessor for serialized model bytes, checking our special ids."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    expected = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}
    for index, lang in enumerate(LANGUAGES):
        expected[4 + index] = LANGUAGE_TOKENS[lang]
    for piece_id, piece in expected.items():
        if processor.id_to_piece(piece_id) != piece:
            raise ValueError(f"SentencePiece id {piece_id} is "
                             f"{processor.id_to_piece(piece_id)!r}, expected {piece!r}")
    return processor


def language_token_id(processor, language: str) -> int:
    """Returns the id of the target-language token of `language` ('en' or 'zh')."""
    return processor.piece_to_id(LANGUAGE_TOKENS[language])


def encode_source(processor, text: str, target_language: str) -> list[int]:
    """Source ids: the target-language token, the text's pieces, </s>."""
    return [language_token_id(processor, target_language)] + processor.encode(text) + [EOS_ID]


def encode_target(processor, text: str) -> list[int]:
    """Target ids: the text's pieces, </s> (the decoder input is <s> + all but the last)."""
    return processor.encode(text) + [EOS_ID]


def make_examples(processor, pairs: list[Pair], max_length: int) -> list[Example]:
    """Both directions of every pair, dropping examples longer than `max_length` ids."""
    examples = []
    for pair in pairs:
        texts = {"en": pair.en, "zh": pair.zh}
        for source_lang, target_lang in (("en", "zh"), ("zh", "en")):
            source = encode_source(processor, texts[source_lang], target_lang)
            target = encode_target(processor, texts[target_lang])
            if len(source) <= max_length and len(target) <= max_length:
                examples.append(Example(source, target))
    return examples


# What people type: a lowercase word or phrase without a full stop ("hello", "thank you").
CASUAL_MAX_WORDS = 6
# The corpora of everyday sentences whose short pairs also train casual input: Tatoeba alone
# (run10) still answered "hello" with 招呼 and "hi" with 藏; MSCTD's dialogue turns are what
# people type to a chat partner.
CASUAL_CORPORA = ("tatoeba", "msctd")
_FINAL_PUNCTUATION = ".!?。！？"


def casual_source(text: str) -> str:
    """`text` as typed casually: its final punctuation removed, and English lowercased."""
    return text.rstrip(_FINAL_PUNCTUATION).strip().lower()


def make_casual_examples(processor, pairs: list[Pair], max_length: int) -> list[Example]:
    """One more example per direction of each short pair whose casual source differs from its
    source (the target stays as written): without them, the default model given "hello"
    answered 爱 though "Hello." gave 你好。."""
    examples = []
    for pair in pairs:
        if len(pair.en.split()) > CASUAL_MAX_WORDS:
            continue
        texts = {"en": pair.en, "zh": pair.zh}
        for source_lang, target_lang in (("en", "zh"), ("zh", "en")):
            casual = casual_source(texts[source_lang])
            if not casual or casual == texts[source_lang]:
                continue
            source = encode_source(processor, casual, target_lang)
            target = encode_target(processor, texts[target_lang])
            if len(source) <= max_length and len(target) <= max_length:
                examples.append(Example(source, target))
    return examples


def token_batches(examples: list[Example], max_tokens: int,
                  rng: random.Random) -> Iterator[list[Example]]:
    """Yields batches of examples of similar length, in random order.

    A batch holds at most `max_tokens` padded tokens on its longer side
    (batch size x longest sequence). Examples are shuffled, sorted by length within large
    pools (so lengths in a batch are close but the epoch order still varies), cut into
    batches, and the batches shuffled.
    """
    order = list(examples)
    rng.shuffle(order)
    pool_size = max(1, 100 * max_tokens // 16)
    batches: list[list[Example]] = []
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start:start + pool_size],
                      key=lambda ex: (len(ex.source), len(ex.target)))
        batch: list[Example] = []
        longest = 0
        for example in pool:
            length = max(len(example.source), len(example.target) + 1)
            if batch and max(longest, length) * (len(batch) + 1) > max_tokens:
                batches.append(batch)
                batch, longest = [], 0
            batch.append(example)
            longest = max(longest, length)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    yield from batches
