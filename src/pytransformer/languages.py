"""Language codes and the script rule that picks a target language, shared by the Python API
and the CLI so that both translate a text the same way.

For a model whose target-language tokens name one CJK and one other language (the default
en<->zh model: >>en<< and >>zh<<), a text mostly in CJK script goes into the other language and
any other text into the CJK one. A model with one target-language token always uses it; a
model with several and no such pair needs the target named.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

# Two- and three-letter ISO 639 codes that name the same language, so `zh` finds a model
# token `>>zho<<` and the other way round.
_SAME_LANGUAGE = [
    {"en", "eng"}, {"zh", "zho", "cmn", "chi"}, {"de", "deu", "ger"}, {"fr", "fra", "fre"},
    {"es", "spa"}, {"it", "ita"}, {"pt", "por"}, {"ru", "rus"}, {"ja", "jpn"}, {"ko", "kor"},
    {"ar", "ara"}, {"nl", "nld", "dut"}, {"pl", "pol"}, {"tr", "tur"}, {"uk", "ukr"},
    {"sv", "swe"}, {"fi", "fin"}, {"cs", "ces", "cze"}, {"el", "ell", "gre"}, {"he", "heb"},
    {"hi", "hin"}, {"vi", "vie"}, {"th", "tha"}, {"id", "ind"}, {"fa", "fas", "per"},
]
_CJK_LANGUAGES = {"zh", "ja", "ko", "yue", "wuu", "nan", "hak", "gan"}


def is_cjk_char(char: str) -> bool:
    """True for Han, kana, Hangul and CJK punctuation / full-width forms."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, punctuation, kana, CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF  # extension planes
    )


def dominant_script(text: str) -> str | None:
    """"cjk" or "latin" by which letters are in the majority, or None if there are no letters."""
    cjk = latin = 0
    for char in text:
        if is_cjk_char(char):
            if unicodedata.category(char).startswith("L"):
                cjk += 1
        elif char.isalpha():
            latin += 1
    if cjk == 0 and latin == 0:
        return None
    # A Han character carries about as much as a short word: weigh it accordingly.
    return "cjk" if cjk * 3 >= latin else "latin"


def normalize(code: str) -> str:
    """A language code as written by users or in `>>xx<<` tokens -> lower-case base code."""
    return code.strip().strip("<>").strip().lower().replace("-", "_")


def same_language(a: str, b: str) -> bool:
    a, b = normalize(a), normalize(b)
    if a == b:
        return True
    base_a, base_b = a.split("_")[0], b.split("_")[0]
    if base_a == base_b and (a == base_a or b == base_b):
        return True  # "zh" matches "zh_hant" (a region/script variant of the same language)
    return any(base_a in group and base_b in group for group in _SAME_LANGUAGE)


def is_cjk_language(code: str) -> bool:
    base = normalize(code).split("_")[0]
    return any(same_language(base, cjk) for cjk in _CJK_LANGUAGES)


def script_pair(target_languages: Sequence[str]) -> tuple[str, str] | None:
    """(CJK language, other language) for two target languages of which one is CJK."""
    if len(target_languages) != 2:
        return None
    first, second = target_languages
    if is_cjk_language(first) and not is_cjk_language(second):
        return first, second
    if is_cjk_language(second) and not is_cjk_language(first):
        return second, first
    return None


def target_by_script(target_languages: Sequence[str], text: str) -> str | None:
    """The target language the script rule gives `text` (see the module docstring), or None
    when the model's languages leave it open."""
    if len(target_languages) == 1:
        return target_languages[0]
    pair = script_pair(target_languages)
    if pair is None:
        return None
    cjk, other = pair
    return other if dominant_script(text) == "cjk" else cjk
