"""Markdown documents (markdown-it-py, CommonMark with GitHub's tables and strikethrough).

The parser gives every paragraph, heading and table cell with its source lines; their inline
content (emphasis, strong, strikethrough, links, inline code, images, inline HTML, line
breaks) becomes a Block (placement.py) whose translation is written back in Markdown on the
same lines, after the same container markers (`#`, `>`, list markers, indentation). Every
other line (code blocks, fences, HTML blocks, rules, blank lines, table delimiter rows) is
kept byte for byte, as are inline code, images, inline HTML, link destinations and titles.
A paragraph of several lines becomes one line; a hard line break is written `<br>`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

from pytransformer.cli.documents.placement import Block, BlockTranslation, Inline

_ESCAPED = re.compile(r"([\\`*_\[\]<>&])")
_ORDERED_MARKER = re.compile(r"(\d+)([.)])")


def _parser() -> Any:
    from markdown_it import MarkdownIt  # only for Markdown input

    return MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _code_span(content: str, markup: str) -> str:
    if content.startswith("`") or content.endswith("`") or (
            content.startswith(" ") and content.endswith(" ") and content.strip()):
        return f"{markup} {content} {markup}"
    return f"{markup}{content}{markup}"


def _destination(token: Any, attribute: str) -> str:
    target = token.attrs.get(attribute, "")
    target = f"<{target}>" if re.search(r"[\s()<>]", target) else target
    title = token.attrs.get("title")
    if title:
        target += ' "' + title.replace('"', '\\"') + '"'
    return target


def _block(inline: Any) -> Block:
    """The plain text and inline tree of one inline token's children."""
    text = ""
    root: list[Inline] = []
    stack: list[Inline] = []
    skipping = False  # inside an autolink, written as it is

    def add(node: Inline) -> None:
        (stack[-1].children if stack else root).append(node)

    for child in inline.children or []:
        kind = child.type
        if skipping:
            skipping = kind != "link_close"
        elif kind == "text":
            text += child.content
        elif kind == "softbreak":
            text += " "
        elif kind == "hardbreak":  # a line break: its lines are translated apart
            add(Inline("<br>", len(text), len(text), atom=True))
            text += "\n"
        elif kind == "code_inline":
            start = len(text)
            text += child.content
            add(Inline(_code_span(child.content, child.markup), start, len(text), atom=True))
        elif kind == "image":
            alt = child.content.replace("]", "\\]")
            add(Inline(f"![{alt}]({_destination(child, 'src')})", len(text), len(text),
                       atom=True))
        elif kind == "html_inline":
            add(Inline(child.content, len(text), len(text), atom=True))
        elif kind == "link_open" and child.markup in ("autolink", "linkify"):
            start = len(text)  # <https://...>: the address is the text, kept as it is
            add(Inline(f"<{child.attrs.get('href', '')}>", start, start, atom=True))
            skipping = True
        elif kind.endswith("_open"):
            if kind == "link_open":
                payload = ("[", "](" + _destination(child, "href") + ")")
            else:  # em, strong, s: their delimiters, always * and ~ (_ cannot open mid-word)
                markup = child.markup.replace("_", "*")
                payload = (markup, markup)
            node = Inline(payload, len(text), len(text))
            add(node)
            stack.append(node)
        elif kind.endswith("_close") and stack:
            stack.pop().end = len(text)
    return Block(text.rstrip(), root)


def _escape(text: str, in_table: bool) -> str:
    text = _ESCAPED.sub(r"\\\1", text)
    return text.replace("|", "\\|") if in_table else text


def _write(nodes: list[Inline], start: int, end: int, output: str, in_table: bool) -> str:
    """Markdown for output[start:end] with `nodes` placed in it."""
    parts: list[str] = []
    position = start
    for node in nodes:
        parts.append(_escape(output[position:node.target_start], in_table))
        if node.atom:
            parts.append(node.payload)
        elif node.target_end > node.target_start:  # an empty span cannot be written
            opening, closing = node.payload
            inner = _write(node.children, node.target_start, node.target_end, output, in_table)
            if opening != "[" and not _flanks(output, node.target_start, node.target_end):
                # Delimiters Markdown would not read as emphasis here (punctuation against a
                # letter): the same element as inline HTML.
                tag = {"*": "em", "**": "strong", "~~": "del", "~": "del"}[opening]
                opening, closing = f"<{tag}>", f"</{tag}>"
            parts.append(opening + inner + closing)
        position = max(position, node.target_end)
    parts.append(_escape(output[position:end], in_table))
    return "".join(parts)


def _flanks(output: str, start: int, end: int) -> bool:
    """Whether delimiters around output[start:end] open and close emphasis (CommonMark's
    left- and right-flanking runs)."""
    def punctuation(char: str) -> bool:
        return bool(char) and unicodedata.category(char).startswith(("P", "S"))

    before = output[start - 1] if start > 0 else " "
    after = output[end] if end < len(output) else " "
    first, last = output[start], output[end - 1]
    opens = not first.isspace() and (not punctuation(first) or before.isspace()
                                     or punctuation(before))
    closes = not last.isspace() and (not punctuation(last) or after.isspace()
                                     or punctuation(after))
    return opens and closes


def _inline_markdown(translation: BlockTranslation, in_table: bool = False) -> str:
    written = _write(translation.nodes, 0, len(translation.text), translation.text, in_table)
    # Text that would start a heading, a list item or a rule at the start of its line.
    marker = _ORDERED_MARKER.match(written)
    if marker:
        return marker.group(1) + "\\" + marker.group(2) + written[marker.end():]
    return "\\" + written if written[:1] in ("#", "+", "-", "=") else written


def _line_prefix(line: str, first_content_line: str) -> tuple[str, str]:
    """What precedes and follows a paragraph's or heading's content on its first line."""
    content = first_content_line.strip()
    found = line.find(content) if content else -1
    if found < 0:
        stripped = line.lstrip(" >")
        return line[:len(line) - len(stripped)], ""
    return line[:found], line[found + len(content):]


def translate_markdown(source: str,
                       translate_blocks: Callable[[list[Block]], list[BlockTranslation]]) -> str:
    """The Markdown document `source` with its text translated by translate_blocks."""
    lines = source.split("\n")
    tokens = _parser().parse(source)
    paragraphs: list[tuple[Any, Block]] = []           # (inline token, block)
    rows: dict[int, list[tuple[Any, Block]]] = {}       # table row line -> its cells
    in_cell = False
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            in_cell = True
        elif token.type in ("th_close", "td_close"):
            in_cell = False
        elif token.type == "inline" and token.map is not None:
            block = _block(token)
            if in_cell:
                rows.setdefault(token.map[0], []).append((token, block))
            else:
                paragraphs.append((token, block))
    blocks = [block for _, block in paragraphs] + [block for cells in rows.values()
                                                   for _, block in cells]
    translations = iter(translate_blocks(blocks))
    edits: list[tuple[int, int, str]] = []  # (first line, end line, new line)
    for token, block in paragraphs:
        translation = next(translations)
        first, end = token.map
        if not block.text:
            continue
        content_lines = token.content.split("\n")
        prefix, suffix = _line_prefix(lines[first], content_lines[0])
        edits.append((first, end, prefix + _inline_markdown(translation)
                      + (suffix if len(content_lines) == 1 else "")))
    for line_number, cells in rows.items():
        written = [_inline_markdown(next(translations), in_table=True) if block.text else ""
                   for _, block in cells]
        line = lines[line_number]
        indent = line[:len(line) - len(line.lstrip(" >"))]
        body = line.strip(" >")
        joined = " | ".join(written)
        if body.startswith("|"):
            joined = "| " + joined
        if body.endswith("|"):
            joined += " |"
        edits.append((line_number, line_number + 1, indent + joined))
    for first, end, new in sorted(edits, reverse=True):
        lines[first:end] = [new]
    return "\n".join(lines)
