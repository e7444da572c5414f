"""How well glossaries and protected spans hold on held-out data (issue 14), in one command.

    python -m training.terminology weights/model.ptm --sentences 200

Glossary: for each test set and direction of training/corpora.py (never trained on), the
sentences whose source holds a CC-CEDICT term (an English sense of one to three words, or its
Chinese headword of two characters or more; found as translate --glossary finds terms) whose
translation is in the reference (as a whole word in English): the
dictionary's pair is what the reference translator used. Those terms make one glossary per
direction (the longest term of each sentence; a source term keeps its first target). Each set
is translated without and with the glossary (Translator.translate(glossary=...)); reported:
how often a target term appears in the output when its source term is in the sentence (term
rate, over every glossary term found in these sentences as translate finds them: a longer
entry or another sentence's may cover a sentence's own), without and with, and BLEU / chrF of
both on those sentences.

Protected spans: every test sentence translated without and with protect=True; reported: how
many sentences hold a protected span (URL, e-mail, placeholder, number), how often each comes
out unchanged without and with, and BLEU / chrF of the whole sets without and with.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

import pytransformer
from pytransformer.constraints import PROTECTED_PATTERNS, Glossary, required_texts

from training import corpora
from training.evaluate import DEFAULT_DATA_DIR, score

_CJK = re.compile(r"[\u4e00-\u9fff]")
_STOPWORDS = frozenset("a an the to of in on at for and or is are be it this that he she we you "
                       "they i me my his her its our your their not no yes do did done".split())


def dictionary(path: Path) -> list[tuple[str, str]]:
    """(English sense, Simplified headword) pairs of CC-CEDICT: senses of one to three words,
    of four letters or more, that are not only stopwords; headwords of two characters or
    more."""
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$", line)
            if not match or line.startswith("#"):
                continue
            headword = match.group(1)
            if len(headword) < 2 or not all(_CJK.match(char) for char in headword):
                continue
            for sense in match.group(2).split("/"):
                sense = re.sub(r"\([^)]*\)", "", sense).strip(" ;,.")
                words = sense.lower().split()
                if (1 <= len(words) <= 3 and len(sense) >= 4 and re.fullmatch(r"[A-Za-z' -]+", sense)
                        and not all(word in _STOPWORDS for word in words)):
                    pairs.append((sense, headword))
    return pairs


def _contains(text: str, term: str, target_language: str) -> bool:
    if target_language == "zh":
        return term in text
    return re.search(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)", text.lower()) is not None


def glossary_cases(evalset: corpora.EvalSet, pairs: list[tuple[str, str]], limit: int
                   ) -> list[tuple[str, str, str, str]]:
    """(source, reference, source term, target term) for up to `limit` sentences of the set."""
    english_source = evalset.source_language == "en"
    by_first_word: dict[str, list[tuple[str, str]]] = {}
    for sense, headword in pairs:
        key = sense.split()[0].lower() if english_source else headword[0]
        by_first_word.setdefault(key, []).append((sense, headword))
    cases = []
    for source, reference in zip(evalset.sources, evalset.references):
        keys = (set(re.findall(r"[A-Za-z']+", source.lower())) if english_source
                else set(source))
        best = None
        for key in sorted(keys):  # sorted: the same term wins a tie in every run
            for sense, headword in by_first_word.get(key, ()):
                term, target = (sense, headword) if english_source else (headword, sense)
                # In the source as the product finds terms (pytransformer.constraints).
                if not required_texts(source, Glossary.from_mapping({term: target}), []):
                    continue
                if not _contains(reference, target, evalset.target_language):
                    continue
                if best is None or len(term) > len(best[0]):
                    best = (term, target)
        if best is not None:
            cases.append((source, reference, best[0], best[1]))
            if len(cases) == limit:
                break
    return cases


def _rate(outputs: list[str], required: list[list[str]], language: str) -> float:
    """The share of required terms (each sentence's) that its output holds, in %."""
    hits = sum(_contains(output, term, language)
               for output, terms in zip(outputs, required) for term in terms)
    return round(100.0 * hits / max(sum(len(terms) for terms in required), 1), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--sentences", type=int, default=200,
                        help="glossary sentences per set and direction (default 200)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    data = corpora.load(args.data_dir, simplify=True)
    pairs = dictionary(args.data_dir / "cc-cedict" / "cedict_1_0_ts_utf-8_mdbg.txt.gz")
    translator = pytransformer.Translator(args.model, threads=args.threads)
    report: dict[str, dict] = {"glossary": {}, "protect": {}}
    for direction in ("en-zh", "zh-en"):
        sets = [s for s in data.test if s.direction == direction]
        target_language = direction.split("-")[1]
        cases = [case for s in sets for case in glossary_cases(s, pairs, args.sentences)]
        terms = dict(reversed([(c[2], c[3]) for c in cases]))
        glossary = Glossary.from_mapping(terms)
        sources = [c[0] for c in cases]
        references = [c[1] for c in cases]
        # What the glossary asks of each sentence: its terms found as translate finds them
        # (a longer entry of another sentence may cover this sentence's own term).
        required = [required_texts(source, glossary, []) for source in sources]
        start = time.monotonic()
        plain = [t.text for t in translator.translate(sources, target_language=target_language)]
        plain_seconds = time.monotonic() - start
        start = time.monotonic()
        termed = [t.text for t in translator.translate(sources, target_language=target_language,
                                                       glossary=glossary)]
        termed_seconds = time.monotonic() - start
        report["glossary"][direction] = {
            "sentences": len(cases), "glossary_entries": len(glossary.entries),
            "terms": sum(len(terms) for terms in required),
            "term_rate_without": _rate(plain, required, target_language),
            "term_rate_with": _rate(termed, required, target_language),
            "without": score(plain, references, target_language),
            "with": score(termed, references, target_language),
            "seconds_without": round(plain_seconds, 1), "seconds_with": round(termed_seconds, 1),
            "examples": [{"source": s, "terms": r, "without": p, "with": w}
                         for s, r, p, w in list(zip(sources, required, plain, termed))[:8]],
            "missed": [{"source": s, "terms": r, "with": w}
                       for s, r, w in zip(sources, required, termed)
                       if not all(_contains(w, t, target_language) for t in r)][:12]}

        sources = [source for s in sets for source in s.sources]
        references = [reference for s in sets for reference in s.references]
        patterns = list(PROTECTED_PATTERNS.values())
        spans = [required_texts(source, None, patterns) for source in sources]
        start = time.monotonic()
        plain = [t.text for t in translator.translate(sources, target_language=target_language)]
        plain_seconds = time.monotonic() - start
        start = time.monotonic()
        kept = [t.text for t in translator.translate(sources, target_language=target_language,
                                                     protect=True)]
        kept_seconds = time.monotonic() - start
        found = [(i, span) for i, sentence in enumerate(spans) for span in sentence]
        report["protect"][direction] = {
            "sentences": len(sources), "with_spans": sum(1 for s in spans if s),
            "spans": len(found),
            "kept_without": round(100.0 * sum(span in plain[i] for i, span in found)
                                  / max(len(found), 1), 1),
            "kept_with": round(100.0 * sum(span in kept[i] for i, span in found)
                               / max(len(found), 1), 1),
            "without": score(plain, references, target_language),
            "with": score(kept, references, target_language),
            "seconds_without": round(plain_seconds, 1), "seconds_with": round(kept_seconds, 1)}
        print(direction, json.dumps({k: v for k, v in report["glossary"][direction].items()
                                     if k != "examples"}), file=sys.stderr)
        print(direction, json.dumps(report["protect"][direction]), file=sys.stderr)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
