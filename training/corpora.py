"""The corpora of the default en<->zh model and its fixed evaluation protocol.

Everything comes from ../shared/data (provenance and licences in its README):

| corpus | training | dev (checkpoint choice) | test (never trained on or chosen by) |
| --- | --- | --- | --- |
| Tatoeba cmn.txt | the rest | 500 pairs, seed 2 | the 500 pairs held out since run1 (seed 1) |
| MSCTD dialogue | train (recased) + dev beyond 500 | dev: first 500 | test: first 1000 |
| 3AM captions | train + val beyond 500 | val: first 500 | test: 1000 |
| WMT news | 2017, 2018, 2019 beyond 500 | 2019: first 500 per direction | 2020: first 1000 per direction |
| CC-CEDICT | a capped sample of short entries | - | - |

Test sets are scored in their original direction where the data has one (WMT), both
directions otherwise. Any training pair whose English or Chinese side equals a dev or test
sentence after normalisation (case, spaces and punctuation removed) is dropped, so a
held-out sentence and its near-duplicates are never trained on. All Chinese text is converted
to Simplified with OpenCC (t2s) so the model writes Simplified Chinese.
"""

from __future__ import annotations

import gzip
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from training.data import Pair, read_tatoeba, split_dev

TATOEBA_TEST_SEED = 1  # the split every shipped model before run3 held out as its dev set
TATOEBA_DEV_SEED = 2
DEV_SIZE = 500
TEST_SIZE = 1000
CEDICT_ENTRIES = 30_000
CEDICT_SEED = 5
WMT_TRAIN_YEARS = ("newstest2017", "newstest2018")


@dataclass(frozen=True)
class EvalSet:
    """One direction of one held-out set: sources and their reference translations."""

    name: str  # e.g. "msctd" or "wmt20"
    source_language: str  # "en" or "zh"
    target_language: str
    sources: list[str]
    references: list[str]

    @property
    def direction(self) -> str:
        return f"{self.source_language}-{self.target_language}"


@dataclass
class Corpora:
    """Training pairs by corpus, and the dev and test sets."""

    train: dict[str, list[Pair]]
    dev: list[EvalSet]
    test: list[EvalSet]
    report: dict[str, int]  # counts of what the clean-up kept and dropped, for the card


# ---------------------------------------------------------------------------------------
# Text clean-up

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


class Simplifier:
    """Traditional -> Simplified Chinese (OpenCC t2s), cached per string."""

    def __init__(self) -> None:
        import opencc

        self._converter = opencc.OpenCC("t2s")

    def __call__(self, text: str) -> str:
        return self._converter.convert(text)


def normalise(text: str) -> str:
    """The key two sentences share when they are near-duplicates."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def clean_text(text: str) -> str:
    """Collapses white space. No NFKC here: it would turn Chinese full-width punctuation
    (，？！) into ASCII and teach the model to write it."""
    return " ".join(text.split())


def acceptable(pair: Pair) -> bool:
    """Script and length-ratio checks of one pair (characters, before tokenisation)."""
    if not pair.en or not pair.zh or _CJK.search(pair.en) or not _CJK.search(pair.zh):
        return False
    if len(_LATIN.findall(pair.zh)) > len(_CJK.findall(pair.zh)):
        return False
    en_len, zh_len = len(pair.en), len(pair.zh)
    if en_len > 400 or zh_len > 200:
        return False
    # English runs about 3 characters per Chinese character; allow a wide band around it.
    return 0.7 <= en_len / zh_len <= 12.0 or max(en_len, zh_len) <= 12


_MOSES = None


def detokenize_lowercased(text: str) -> str:
    """MSCTD's English training side is Moses-tokenized and lowercased: detokenize it and
    restore the case a rule can: the first letter of each sentence and the pronoun "I".
    Names stay lowercase (measured in the card on MSCTD dev, whose English is cased)."""
    global _MOSES
    if _MOSES is None:
        from sacremoses import MosesDetokenizer

        _MOSES = MosesDetokenizer(lang="en")
    text = re.sub(r"(\w) '(s|m|re|ve|ll|d|t)\b", r"\1'\2", text)  # "that 's" -> "that's"
    text = _MOSES.detokenize(text.split())
    return recase(text)


def recase(text: str) -> str:
    """Upper-cases the pronoun "I" (and its contractions) and every sentence's first
    letter of lowercased English."""
    text = re.sub(r"\bi\b(?=('m|'ve|'ll|'d)?\b)", "I", text)

    def upper(match: re.Match) -> str:
        return match.group(1) + match.group(2).upper()

    return re.sub(r"(^|[.!?]\s+|^[\"'(\-\s]+)([a-z])", upper, text)


# ---------------------------------------------------------------------------------------
# Readers


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _parallel(en_path: Path, zh_path: Path) -> list[Pair]:
    english, chinese = _lines(en_path), _lines(zh_path)
    if len(english) != len(chinese):
        raise ValueError(f"{en_path}: {len(english)} lines but {zh_path.name} has "
                         f"{len(chinese)}")
    return [Pair(clean_text(en), clean_text(zh)) for en, zh in zip(english, chinese)]


def read_cedict(path: Path, count: int, seed: int) -> list[Pair]:
    """Short CC-CEDICT entries as (first English sense, Simplified headword) pairs.

    Entries that only point at another (variants, "see ...", surnames, classifiers) and
    senses longer than five words are skipped; `count` entries are drawn with `seed`, so the
    dictionary stays a minority of the training examples and the model still writes
    sentences."""
    pairs = []
    skip = re.compile(r"^(old )?variant of|^see |^surname|^\(?classifier|^used in|^abbr\.|"
                      r"^CL:|^\(bound form\)|^erhua variant|^Japanese variant|^\(Tw\)")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            match = re.match(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$", line)
            if not match:
                continue
            headword, senses = match.group(1), match.group(2).split("/")
            sense = re.sub(r"\([^)]*\)", "", senses[0]).strip(" ;,")
            sense = re.sub(r"\s+", " ", sense)
            if (not sense or skip.search(senses[0]) or len(sense.split()) > 5
                    or not _CJK.search(headword) or "|" in sense or "[" in sense):
                continue
            pairs.append(Pair(sense, headword))
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


# ---------------------------------------------------------------------------------------
# The protocol


def _both_directions(name: str, pairs: list[Pair]) -> list[EvalSet]:
    return [EvalSet(name, "en", "zh", [p.en for p in pairs], [p.zh for p in pairs]),
            EvalSet(name, "zh", "en", [p.zh for p in pairs], [p.en for p in pairs])]


def load(data_dir: Path, cedict_entries: int = CEDICT_ENTRIES,
         simplify: bool = True) -> Corpora:
    """Reads every corpus, cuts the fixed dev and test sets and cleans the training pairs."""
    to_simplified = Simplifier() if simplify else (lambda text: text)

    def simplified(pairs: list[Pair]) -> list[Pair]:
        return [Pair(p.en, to_simplified(p.zh)) for p in pairs]

    tatoeba = read_tatoeba(data_dir / "tatoeba-cmn" / "cmn.txt")
    rest, tatoeba_test = split_dev(tatoeba, DEV_SIZE, TATOEBA_TEST_SEED)
    tatoeba_train, tatoeba_dev = split_dev(rest, DEV_SIZE, TATOEBA_DEV_SEED)

    msctd_dir = data_dir / "msctd-enzh"
    msctd_dev_all = _parallel(msctd_dir / "dev.en", msctd_dir / "dev.zh")
    msctd_test = _parallel(msctd_dir / "test.en", msctd_dir / "test.zh")[:TEST_SIZE]
    msctd_train = [Pair(detokenize_lowercased(p.en), p.zh) for p in _parallel(
        msctd_dir / "train.en.tok.lower", msctd_dir / "train.zh")]
    msctd_train += msctd_dev_all[DEV_SIZE:]

    am_dir = data_dir / "3am-enzh"
    am_val = _parallel(am_dir / "val.en", am_dir / "val.zh")
    am_test = _parallel(am_dir / "test.en", am_dir / "test.zh")[:TEST_SIZE]
    am_train = _parallel(am_dir / "train.en", am_dir / "train.zh") + am_val[DEV_SIZE:]

    wmt_dir = data_dir / "wmt-zh-en"
    wmt_train: list[Pair] = []
    for year in WMT_TRAIN_YEARS:
        wmt_train += _parallel(wmt_dir / f"{year}.en", wmt_dir / f"{year}.zh")
    wmt19_enzh = _parallel(wmt_dir / "newstest2019.en-zh.en", wmt_dir / "newstest2019.en-zh.zh")
    wmt19_zhen = _parallel(wmt_dir / "newstest2019.zh-en.en", wmt_dir / "newstest2019.zh-en.zh")
    wmt_train += wmt19_enzh[DEV_SIZE:] + wmt19_zhen[DEV_SIZE:]
    wmt20_enzh = _parallel(wmt_dir / "newstest2020.en-zh.en",
                           wmt_dir / "newstest2020.en-zh.zh")[:TEST_SIZE]
    wmt20_zhen = _parallel(wmt_dir / "newstest2020.zh-en.en",
                           wmt_dir / "newstest2020.zh-en.zh")[:TEST_SIZE]

    cedict = read_cedict(data_dir / "cc-cedict" / "cedict_1_0_ts_utf-8_mdbg.txt.gz",
                         cedict_entries, CEDICT_SEED)

    # References stay as the data has them (Simplified already, except Tatoeba's mix, which
    # is converted so a Simplified output is not penalised against a Traditional reference).
    dev = (_both_directions("tatoeba", simplified(tatoeba_dev))
           + _both_directions("msctd", msctd_dev_all[:DEV_SIZE])
           + _both_directions("3am", am_val[:DEV_SIZE])
           + [EvalSet("wmt19", "en", "zh", [p.en for p in wmt19_enzh[:DEV_SIZE]],
                      [p.zh for p in wmt19_enzh[:DEV_SIZE]]),
              EvalSet("wmt19", "zh", "en", [p.zh for p in wmt19_zhen[:DEV_SIZE]],
                      [p.en for p in wmt19_zhen[:DEV_SIZE]])])
    test = (_both_directions("tatoeba", simplified(tatoeba_test))
            + _both_directions("msctd", msctd_test)
            + _both_directions("3am", am_test)
            + [EvalSet("wmt20", "en", "zh", [p.en for p in wmt20_enzh],
                       [p.zh for p in wmt20_enzh]),
               EvalSet("wmt20", "zh", "en", [p.zh for p in wmt20_zhen],
                       [p.en for p in wmt20_zhen])])

    held_out = set()
    for evalset in dev + test:
        held_out.update(normalise(text) for text in evalset.sources + evalset.references)
    held_out.discard("")

    report: dict[str, int] = {}
    train: dict[str, list[Pair]] = {}
    seen: set[tuple[str, str]] = set()
    for name, pairs in (("tatoeba", tatoeba_train), ("msctd", msctd_train),
                        ("3am", am_train), ("wmt", wmt_train), ("cedict", cedict)):
        kept = []
        dropped = {"script_or_ratio": 0, "held_out": 0, "duplicate": 0}
        for pair in simplified(pairs):
            if not acceptable(pair):
                dropped["script_or_ratio"] += 1
            elif normalise(pair.en) in held_out or normalise(pair.zh) in held_out:
                dropped["held_out"] += 1
            elif (key := (normalise(pair.en), normalise(pair.zh))) in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(key)
                kept.append(pair)
        train[name] = kept
        report[f"{name}.read"] = len(pairs)
        report[f"{name}.kept"] = len(kept)
        for reason, count in dropped.items():
            report[f"{name}.dropped_{reason}"] = count
    return Corpora(train, dev, test, report)


def write_pairs(data_dir: Path, out_dir: Path) -> None:
    """Writes the cleaned training pairs as line-aligned train.en / train.zh and each test set
    as test.<set>.<direction>.src / .ref under out_dir (the input of `pytransformer shortlist`
    and of timed `translate --file` runs)."""
    loaded = load(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = [pair for pairs in loaded.train.values() for pair in pairs]
    for language in ("en", "zh"):
        lines = (getattr(pair, language).replace("\n", " ") for pair in pairs)
        (out_dir / f"train.{language}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for evalset in loaded.test:
        stem = f"test.{evalset.name}.{evalset.direction}"
        (out_dir / f"{stem}.src").write_text("\n".join(evalset.sources) + "\n", encoding="utf-8")
        (out_dir / f"{stem}.ref").write_text("\n".join(evalset.references) + "\n",
                                             encoding="utf-8")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=write_pairs.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    arguments = parser.parse_args()
    write_pairs(arguments.data_dir, arguments.out_dir)
