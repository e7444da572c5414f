"""Everyday input a new user types first (issue 9): greetings, questions, numbers and dates,
names. Each case gives the words any sensible translation contains (one of the alternatives).
tests/python/test_default_model.py asserts them on the shipped model, and the trainer ships a
run only if its candidate passes them too (a better dev score is not enough: run10 scored
higher but answered "hello" with 招呼)."""

from __future__ import annotations

from typing import Any

EN_TO_ZH = [
    ("hello", ("你好",)),
    ("Thank you.", ("谢谢",)),
    ("Good morning.", ("早上好", "早安")),
    ("I don't know.", ("知道",)),
    ("I want to go home.", ("家",)),
    ("The weather is nice today.", ("天",)),
    ("He is my friend.", ("朋友",)),
    ("Where is the train station?", ("车站", "火车站")),
    ("I have three children.", ("三", "3")),
    ("I was born in 1990.", ("1990",)),
    ("Tom is a doctor.", ("汤姆",)),
]
ZH_TO_EN = [
    ("你好。", ("hello", "hi")),
    ("谢谢你。", ("thank",)),
    ("我爱你。", ("love",)),
    ("他是我的朋友。", ("friend",)),
    ("这本书很有意思。", ("book",)),
    ("我的狗很可爱。", ("dog",)),
    ("你叫什么名字？", ("name",)),
    ("我有两个孩子。", ("two", "2")),
    ("汤姆是医生。", ("tom",)),
]


def failures(translator: Any) -> list[str]:
    """The cases a pytransformer.Translator gets wrong, as 'source -> output' lines."""
    wrong = []
    for cases, language in ((EN_TO_ZH, "zh"), (ZH_TO_EN, "en")):
        outputs = translator.translate([source for source, _ in cases],
                                       target_language=language)
        for (source, words), output in zip(cases, outputs):
            if not any(word in output.text.lower() for word in words):
                wrong.append(f"{source} -> {output.text}")
    return wrong
