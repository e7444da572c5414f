"""HTML documents (lxml.html, which parses real-world and malformed HTML as browsers do).

Every run of text and inline elements inside a block element (a paragraph, a heading, a list
item, a table cell, a div holding text) is one Block: its plain text, whitespace collapsed as
a browser shows it, is translated sentence by sentence across the inline tags, and the tags are
placed back (placement.py). Inline elements (`b`, `a href`, `span`, ...) keep their tag and
attributes and wrap the words aligned with theirs; `code`, `kbd`, `samp`, `var`, images, line
breaks, comments and elements marked `translate="no"` or `class="notranslate"` are kept as they
are (their text is shown to the model, for context, and not replaced). `pre`, `script`,
`style`, `textarea`, `template`, `svg` and `math` are never translated. Attributes are never
translated. A text with `<html>`, `<head>`, `<body>` or a doctype is a document; anything else
a fragment, written back without the wrapper the parser adds.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

from pytransformer.cli.documents.placement import Block, BlockTranslation, Inline

INLINE_TAGS = frozenset(
    "a abbr b bdi bdo big cite data del dfn em font i ins label mark q s small span strike "
    "strong sub sup time tt u".split())
# Inline elements kept byte for byte; those with text show it to the model.
KEPT_WITH_TEXT = frozenset("code kbd samp var".split())
KEPT = KEPT_WITH_TEXT | frozenset(
    "br img wbr input button select textarea svg math script style iframe video audio canvas "
    "object embed picture noscript".split())
# Blocks whose content is never translated.
UNTRANSLATED_BLOCKS = frozenset("pre script style textarea template svg math code".split())
_DOCUMENT = re.compile(r"<\s*(!doctype|html|head|body)\b", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _tag(node: Any) -> str | None:
    """The lower-case tag of an element; None for a comment or processing instruction."""
    return node.tag.lower() if isinstance(node.tag, str) else None


def _marked_untranslated(node: Any) -> bool:
    return (node.get("translate", "").lower() == "no"
            or "notranslate" in node.get("class", "").split())


def _is_kept(node: Any) -> bool:
    tag = _tag(node)
    return tag is None or tag in KEPT or _marked_untranslated(node)


def _is_inline(node: Any) -> bool:
    """Part of the text around it: an inline element without block elements inside, or a kept
    one."""
    if _is_kept(node):
        return True
    return _tag(node) in INLINE_TAGS and all(_is_inline(child) for child in node)


@dataclass
class _Unit:
    """A run of inline content: the text of `owner` (the parent's .text when owner is None,
    else the tail of the block child before the run), then parent[first:last] with their
    tails."""

    parent: Any
    owner: Any
    first: int
    last: int
    block: Block
    leading: str   # whitespace before the text, kept
    trailing: str  # whitespace after it, kept


class _TextBuilder:
    """Plain text with whitespace collapsed as HTML shows it."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, raw: str | None) -> None:
        if not raw:
            return
        collapsed = _SPACES.sub(" ", raw)
        if collapsed.startswith(" ") and (not self.text or self.text.endswith((" ", "\n"))):
            collapsed = collapsed[1:]
        self.text += collapsed


def _inline_node(element: Any, text: _TextBuilder) -> Inline:
    start = len(text.text)
    if _is_kept(element):
        if _tag(element) in KEPT_WITH_TEXT or (_tag(element) is not None and
                                               _marked_untranslated(element)):
            text.add(element.text_content())
            return Inline(element, start, len(text.text), atom=True)
        if _tag(element) == "br":  # a line break: its lines are translated apart
            text.text = text.text.rstrip(" ") + "\n"
        return Inline(element, start, start, atom=True)
    text.add(element.text)
    children = []
    for child in element:
        children.append(_inline_node(child, text))
        text.add(child.tail)
    return Inline(element, start, len(text.text), children=children)


def _unit(parent: Any, owner: Any, first: int, last: int) -> _Unit | None:
    members = list(parent)[first:last]
    leading_raw = (parent.text if owner is None else owner.tail) or ""
    text = _TextBuilder()
    text.add(leading_raw)
    nodes = []
    for member in members:
        nodes.append(_inline_node(member, text))
        text.add(member.tail)
    last_raw = (members[-1].tail if members else leading_raw) or ""
    if not any(char.isalpha() for char in text.text):
        return None
    # The whitespace around the text (indentation, newlines) is kept as it is.
    leading = leading_raw[:len(leading_raw) - len(leading_raw.lstrip())]
    trailing = last_raw[len(last_raw.rstrip()):]
    return _Unit(parent, owner, first, last, Block(text.text.rstrip(), nodes), leading, trailing)


def _units(element: Any, found: list[_Unit]) -> None:
    """The units of `element` and of the blocks inside it, in document order."""
    if _tag(element) in UNTRANSLATED_BLOCKS or _is_kept(element):
        return
    children = list(element)
    owner, first = None, 0
    for index in range(len(children) + 1):
        if index < len(children) and _is_inline(children[index]):
            continue
        unit = _unit(element, owner, first, index)
        if unit is not None:
            found.append(unit)
        if index < len(children):
            if isinstance(children[index].tag, str):
                _units(children[index], found)
            owner, first = children[index], index + 1


def _build(nodes: list[Inline], start: int, end: int, output: str) -> tuple[str, list[Any]]:
    """The text before the first node and the elements for `nodes` (with their tails) that
    make up output[start:end]."""
    elements: list[Any] = []
    text = ""
    position = start
    for node in nodes:
        gap = output[position:node.target_start]
        if elements:
            elements[-1].tail = (elements[-1].tail or "") + gap
        else:
            text += gap
        if node.atom:
            element = copy.deepcopy(node.payload)
            element.tail = None
        else:
            original = node.payload
            element = original.makeelement(original.tag, original.attrib)
            element.text, children = _build(node.children, node.target_start, node.target_end,
                                            output)
            for child in children:
                element.append(child)
        elements.append(element)
        position = max(position, node.target_end)
    rest = output[position:end]
    if elements:
        elements[-1].tail = (elements[-1].tail or "") + rest
    else:
        text += rest
    return text, elements


def _replace(unit: _Unit, translation: BlockTranslation) -> None:
    parent = unit.parent
    for member in list(parent)[unit.first:unit.last]:
        parent.remove(member)
    text, elements = _build(translation.nodes, 0, len(translation.text), translation.text)
    text = unit.leading + text
    if elements:
        elements[-1].tail = (elements[-1].tail or "") + unit.trailing
    else:
        text += unit.trailing
    if unit.owner is None:
        parent.text = text
    else:
        unit.owner.tail = text
    for offset, element in enumerate(elements):
        parent.insert(unit.first + offset, element)


def translate_html(source: str,
                   translate_blocks: Callable[[list[Block]], list[BlockTranslation]]) -> str:
    """The document or fragment `source` with its text translated by translate_blocks."""
    from lxml import etree, html  # only for HTML input

    document = bool(_DOCUMENT.search(source))
    if document:
        root = html.document_fromstring(source)
    else:
        root = html.fragment_fromstring(source, create_parent="div")
    units: list[_Unit] = []
    _units(root, units)
    # Later units first: replacing one changes the child indices after it, not before.
    for unit, translation in reversed(list(zip(units, translate_blocks([u.block for u in units])))):
        _replace(unit, translation)
    if document:
        doctype = root.getroottree().docinfo.doctype
        body = html.tostring(root, encoding="unicode", method="html")
        return (doctype + "\n" if doctype else "") + body + ("\n" if source.endswith("\n") else "")
    parts = [root.text or ""] + [etree.tostring(child, encoding="unicode", method="html")
                                 for child in root]
    return "".join(parts)
