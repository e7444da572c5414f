"""Language codes and the script rule that picks a target language, shared by the Python API
and the CLI so that both translate a text the same way.

For a model whose target-language tokens name one CJK and one other language (the default
en<->zh model: >>en<< and >>zh<<), a text mostly in CJK script goes into the other language and
any other text into the CJK one. A model with one target-language token always uses it; a
model with several and no such pair needs the target named.

Language codes are matched across their forms (find_language, same_language): the ISO 639-1
code (`zh`), the ISO 639-2/3 codes (`zho`, `chi`), the individual language a model names for a
macrolanguage (NLLB-200's `arb` for Arabic, `pes` for Persian, `zsm` for Malay, ...), and a
model's spelling around them: Marian's `>>zho<<`, M2M100's `__zh__`, NLLB-200's `zho_Hans`
(language and script). A code without a script or region matches every variant (`zh` matches
`zho_Hans` and `zho_Hant`), and where several variants match, find_language takes the usual one
(`_DEFAULT_VARIANTS`: Simplified Chinese) or asks for one; two variants never match each other.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

# ISO 639-1, 639-2 (B and T) and 639-3 codes that name the same language, so that `zh` finds a
# model token `>>zho<<`, `__zh__` or `zho_Hans` and the other way round. Where ISO 639-1 names a
# macrolanguage, its group holds the individual language that NLLB-200 and Marian models use
# for it (ar: arb, fa: pes, ms: zsm, sw: swh, ...); the other members (ary Moroccan Arabic, prs
# Dari, ckb Sorani Kurdish, ...) are languages of their own here. Covers every language of
# M2M100 (including fairseq's `ns` for Northern Sotho) and every NLLB-200 language that has a
# two-letter code.
_SAME_LANGUAGE = [
    {"af", "afr"}, {"ak", "aka"}, {"am", "amh"}, {"ar", "ara", "arb"}, {"as", "asm"},
    {"ay", "aym", "ayr"}, {"az", "aze", "azj"}, {"ba", "bak"}, {"be", "bel"}, {"bg", "bul"},
    {"bm", "bam"}, {"bn", "ben"}, {"bo", "bod", "tib"}, {"br", "bre"}, {"bs", "bos"},
    {"ca", "cat"}, {"cs", "ces", "cze"}, {"cy", "cym", "wel"}, {"da", "dan"},
    {"de", "deu", "ger"}, {"dz", "dzo"}, {"ee", "ewe"}, {"el", "ell", "gre"}, {"en", "eng"},
    {"eo", "epo"}, {"es", "spa"}, {"et", "est", "ekk"}, {"eu", "eus", "baq"},
    {"fa", "fas", "per", "pes"}, {"ff", "ful", "fuv"}, {"fi", "fin"}, {"fj", "fij"},
    {"fo", "fao"}, {"fr", "fra", "fre"}, {"fy", "fry"}, {"ga", "gle"}, {"gd", "gla"},
    {"gl", "glg"}, {"gn", "grn"}, {"gu", "guj"}, {"ha", "hau"}, {"he", "heb"}, {"hi", "hin"},
    {"hr", "hrv"}, {"ht", "hat"}, {"hu", "hun"}, {"hy", "hye", "arm"}, {"id", "ind"},
    {"ig", "ibo"}, {"is", "isl", "ice"}, {"it", "ita"}, {"ja", "jpn"}, {"jv", "jav"},
    {"ka", "kat", "geo"}, {"kg", "kon"}, {"ki", "kik"}, {"kk", "kaz"}, {"km", "khm"},
    {"kn", "kan"}, {"ko", "kor"}, {"kr", "kau", "knc"}, {"ks", "kas"}, {"ku", "kur", "kmr"},
    {"ky", "kir"}, {"lb", "ltz"}, {"lg", "lug"}, {"li", "lim"}, {"ln", "lin"}, {"lo", "lao"},
    {"lt", "lit"}, {"lv", "lav", "lvs"}, {"mg", "mlg", "plt"}, {"mi", "mri", "mao"},
    {"mk", "mkd", "mac"}, {"ml", "mal"}, {"mn", "mon", "khk"}, {"mr", "mar"},
    {"ms", "msa", "may", "zsm"}, {"mt", "mlt"}, {"my", "mya", "bur"}, {"ne", "nep", "npi"},
    {"nl", "nld", "dut"}, {"nn", "nno"}, {"no", "nor", "nb", "nob"}, {"ns", "nso"},
    {"ny", "nya"}, {"oc", "oci"}, {"om", "orm", "gaz"}, {"or", "ori", "ory"}, {"pa", "pan"},
    {"pl", "pol"}, {"ps", "pus", "pbt"}, {"pt", "por"}, {"qu", "que", "quy"}, {"rn", "run"},
    {"ro", "ron", "rum"}, {"ru", "rus"}, {"rw", "kin"}, {"sa", "san"}, {"sc", "srd"},
    {"sd", "snd"}, {"sg", "sag"}, {"si", "sin"}, {"sk", "slk", "slo"}, {"sl", "slv"},
    {"sm", "smo"}, {"sn", "sna"}, {"so", "som"}, {"sq", "sqi", "alb", "als"}, {"sr", "srp"},
    {"ss", "ssw"}, {"st", "sot"}, {"su", "sun"}, {"sv", "swe"}, {"sw", "swa", "swh"},
    {"ta", "tam"}, {"te", "tel"}, {"tg", "tgk"}, {"th", "tha"}, {"ti", "tir"}, {"tk", "tuk"},
    {"tl", "tgl"}, {"tn", "tsn"}, {"tr", "tur"}, {"ts", "tso"}, {"tt", "tat"}, {"tw", "twi"},
    {"ug", "uig"}, {"uk", "ukr"}, {"ur", "urd"}, {"uz", "uzb", "uzn"}, {"vi", "vie"},
    {"wo", "wol"}, {"xh", "xho"}, {"yi", "yid", "ydd"}, {"yo", "yor"},
    {"zh", "zho", "chi", "cmn"}, {"zu", "zul"},
]
_GROUP_OF = {code: index for index, group in enumerate(_SAME_LANGUAGE) for code in group}
# Regions that say which script a Chinese text is in (zh-TW: zho_Hant).
_REGION_SCRIPTS = {"zh": {"cn": "hans", "sg": "hans", "tw": "hant", "hk": "hant", "mo": "hant"}}
# The variant a code without a script means where a model has several (NLLB-200: zho_Hans and
# zho_Hant): the script most of the language's text is written in.
_DEFAULT_VARIANTS = {"zh": "hans"}
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
    """A language code as written by users or in model tokens (`>>zho<<`, `__zh__`,
    `zho_Hans`, `zh-TW`) -> lower case, `_` between its parts (`zho_hans`, `zh_tw`)."""
    return code.strip().strip("<>").strip().strip("_").lower().replace("-", "_")


def _parts(code: str) -> tuple[str, str]:
    """(base language, the rest: script or region, "" when absent) of a normalized code, a
    region that implies a script replaced by that script."""
    base, _, rest = code.partition("_")
    group = _GROUP_OF.get(base)
    for short, regions in _REGION_SCRIPTS.items():
        if group is not None and group == _GROUP_OF.get(short):
            rest = regions.get(rest, rest)
    return base, rest


def _same_base(a: str, b: str) -> bool:
    return a == b or (a in _GROUP_OF and _GROUP_OF.get(a) == _GROUP_OF.get(b))


def same_language(a: str, b: str) -> bool:
    """Whether two codes name the same language: the same base language in any ISO 639 form,
    and the same script or region, or none on one side ("zh" matches "zho_Hans", "zho_Hans"
    does not match "zho_Hant")."""
    (base_a, rest_a), (base_b, rest_b) = _parts(normalize(a)), _parts(normalize(b))
    return _same_base(base_a, base_b) and (rest_a == rest_b or not rest_a or not rest_b)


def find_language(code: str, known: Sequence[str]) -> str | None:
    """The entry of `known` (a model's language codes or tokens) that `code` names: an exact
    match (ignoring case and the `>> <<` / `__` marks), else the only one of the same language,
    else the usual variant among several (`zh` -> `zho_Hans`); None when none matches.
    ValueError when several match and none is the usual one (name one of them)."""
    wanted = normalize(code)
    for name in known:
        if normalize(name) == wanted:
            return name
    matches = [name for name in known if same_language(code, name)]
    if len(matches) <= 1:
        return matches[0] if matches else None
    base, rest = _parts(wanted)
    if not rest:
        for short, variant in _DEFAULT_VARIANTS.items():
            if _same_base(base, short):
                preferred = [name for name in matches if _parts(normalize(name))[1] == variant]
                if len(preferred) == 1:
                    return preferred[0]
    raise ValueError(f"language {code!r} matches several of this model's languages ("
                     + ", ".join(matches) + "): name one of them")


def describe_languages(names: Sequence[str], limit: int = 12) -> str:
    """`names` joined by commas, the first `limit` of them and a count when there are more
    (a 200-language model's list would bury the message it ends)."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names)} in all)"


def is_cjk_language(code: str) -> bool:
    base = normalize(code).split("_")[0]
    return any(same_language(base, cjk) for cjk in _CJK_LANGUAGES)


def writes_without_spaces(code: str) -> bool:
    """Whether the language runs its words together (Chinese, Japanese: CJK but Korean)."""
    return is_cjk_language(code) and not same_language(normalize(code).split("_")[0], "ko")


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
