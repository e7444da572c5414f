"""Documents with markup: `translate --format markdown|html` (docs/cli.md, *Documents*).

The text of each block is translated sentence by sentence across its inline markup, which is
placed back at the aligned words of the translation (placement.py); block structure, code,
URLs and attributes pass through unchanged. html.py and markdown.py parse and write the two
formats with well-kept parsers (lxml.html, markdown-it-py).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any



class DocumentFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    html = "html"


_EXTENSIONS = {".md": DocumentFormat.markdown, ".markdown": DocumentFormat.markdown,
               ".mdown": DocumentFormat.markdown, ".html": DocumentFormat.html,
               ".htm": DocumentFormat.html, ".xhtml": DocumentFormat.html}


def format_for(path: Path | None) -> DocumentFormat:
    """The format a file's extension names (text for any other, and for stdin)."""
    if path is None:
        return DocumentFormat.text
    return _EXTENSIONS.get(path.suffix.lower(), DocumentFormat.text)


def translate_document(source: str, document_format: DocumentFormat, session: Any,
                       settings: Any) -> str:
    """`source` (a whole Markdown or HTML document) translated with the session's model and
    settings (cli/session.py)."""

    from pytransformer.cli.documents.placement import translate_blocks

    def blocks(found: list[Any]) -> list[Any]:
        return translate_blocks(found, lambda sentences: _aligned_translations(
            sentences, session, settings))

    if document_format is DocumentFormat.html:
        from pytransformer.cli.documents.html import translate_html

        return translate_html(source, blocks)
    from pytransformer.cli.documents.markdown import translate_markdown

    return translate_markdown(source, blocks)


def _aligned_translations(sentences: list[str], session: Any, settings: Any
                          ) -> list[tuple[str, Any, int]]:
    """Each sentence's translation with Translator.align's attention of the pair (None for a
    sentence left as it was: already in the target language, or below --min-confidence)."""
    results = session.translate_sentences(sentences, settings)
    translator = session.translator
    aligned: list[tuple[str, Any, int]] = [(r.hypotheses[0], None, 0) for r in results]
    prefix = translator.tokenizer.target_prefix_length
    groups: dict[tuple[Any, Any], list[int]] = {}
    for index, result in enumerate(results):
        if not result.untranslated and result.hypotheses[0] != result.source:
            groups.setdefault((result.target_language, result.source_language), []).append(index)
    for (target, source), indices in groups.items():
        extra = {"target_language": target} if target is not None else {}
        if source is not None:
            extra["source_language"] = source
        attentions = translator.align([sentences[i] for i in indices],
                                      [results[i].hypotheses[0] for i in indices], **extra)
        for index, attention in zip(indices, attentions):
            aligned[index] = (results[index].hypotheses[0], attention, prefix)
    return aligned
