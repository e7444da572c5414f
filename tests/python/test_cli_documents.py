"""`translate --format html|markdown` (cli/documents/): documents translated with the default
en<->zh model, their markup kept.

What must hold whatever the model writes: the output parses; its tags, their nesting, order and
attributes equal the input's (for Markdown: of the HTML both render to); code is byte for byte
the same; every element whose text the input has in English holds Chinese in the output.
Where the markup lands is checked on clear cases (a bold name, a link) and, without a model,
on the placement itself.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
from pathlib import Path

import numpy as np
import pytest

from pytransformer.cli.documents import DocumentFormat, format_for, translate_document
from pytransformer.cli.documents.placement import (Block, Inline, piece_spans,
                                                   translate_blocks)
from pytransformer.cli.session import Session, Settings
from pytransformer.languages import is_cjk_char

lxml_html = pytest.importorskip("lxml.html")
markdown_it = pytest.importorskip("markdown_it")

SETTINGS = Settings(None, None, None, 1, None, None, 1.0, None)

HTML_FRAGMENT = """<h1>Good morning</h1>
<p>My name is <strong>Tom</strong> and I live in <a href="https://example.com/london" title="map">London</a>.
It is a <em>very <b>big</b></em> city. Run <code>make test &amp;&amp; echo ok</code> first.</p>
<ul>
  <li>I like <i>green</i> tea.</li>
  <li>Where is the <span class="place" data-id="7">station</span>?</li>
</ul>
<table><tr><th>Name</th><th>Place</th></tr><tr><td>Thank you</td><td>See you <u>tomorrow</u></td></tr></table>
<pre><code>for x in range(3):
    print(x &lt; 2)</code></pre>
<p>Copyright &copy; 2024 &mdash; <img src="a.png" alt="logo"> all rights reserved.<br>Good night.</p>
<div>How are you? <p>I am fine.</p> Thank you very much.</div>
<p translate="no">Do not translate this.</p>
<!-- a comment -->
"""

MALFORMED = """<p>Hello <b>my <i>friend</b> how are</i> you?
<li>Good night<li>See you tomorrow
<p>Thank you</div></span>"""

DOCUMENT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>My trip</title>
<style>p { color: red; }</style><script>var a = "Hello world";</script></head>
<body><p>I went to <b>Beijing</b> last year.</p></body></html>
"""

MARKDOWN = """# Good morning

My name is *Tom* and I live in **London**. Click [here](https://example.com/a_b "Map") to see
the city, or run `make test` first.

- I like green tea.
- Where is the ~~bus~~ station?
  1. Thank you.

> How are you?
> I am fine.

| Name | Place |
|:-----|------:|
| Good night | See you *tomorrow* |

```python
print("hello world")  # not translated
```

    indented code stays

![logo](images/logo.png) Good luck!

Good bye
========
"""


@pytest.fixture(scope="module")
def session() -> Session:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTRANSFORMER_MODEL", raising=False)
        return Session(None)


def _structure(root) -> list[tuple[str, tuple]]:
    """Every element in document order: its tag and attributes (comments as 'comment')."""
    return [(node.tag if isinstance(node.tag, str) else "comment", tuple(sorted(node.attrib.items()))
             if isinstance(node.tag, str) else ()) for node in root.iter()]


def _code(root) -> list[str]:
    return [node.text_content() for node in root.iter("pre", "code", "script", "style")]


def _own_text(node) -> str:
    return (node.text or "") + "".join(child.tail or "" for child in node)


def _english_elements_are_chinese(source_root, output_root, kept=("pre", "code", "script",
                                                                  "style")) -> None:
    """Each element whose own text has English words (outside kept elements and
    translate="no") holds Chinese now: its text content, since the words may move between an
    element and its children."""
    for before, after in zip(source_root.iter(), output_root.iter()):
        if not isinstance(before.tag, str) or before.tag in kept:
            continue
        if any(a.get("translate") == "no" for a in [before, *before.iterancestors()]):
            assert before.text_content() == after.text_content()
            continue
        if any(tag in kept for tag in (a.tag for a in before.iterancestors())):
            continue
        if sum(char.isalpha() for char in _own_text(before)) >= 2:
            assert any(is_cjk_char(char) for char in after.text_content()), \
                (lxml_html.tostring(before), lxml_html.tostring(after))


def _fragment(text: str):
    return lxml_html.fragment_fromstring(text, create_parent="div")


@pytest.mark.parametrize("source", [HTML_FRAGMENT, MALFORMED], ids=["fragment", "malformed"])
def test_html_keeps_structure_attributes_and_code(session, source: str) -> None:
    output = translate_document(source, DocumentFormat.html, session, SETTINGS)
    before, after = _fragment(source), _fragment(output)
    assert _structure(after) == _structure(before)
    assert _code(after) == _code(before)
    _english_elements_are_chinese(before, after)


def test_html_places_inline_markup_at_the_translated_words(session) -> None:
    output = translate_document(
        '<p>My name is <b>Tom</b>. I live in <a href="https://example.com">London</a>.</p>',
        DocumentFormat.html, session, SETTINGS)
    root = _fragment(output)
    assert root.find(".//b").text == "汤姆"
    assert root.find(".//a").text == "伦敦"
    assert root.find(".//a").get("href") == "https://example.com"
    assert "Tom" not in output and "London" not in output


def test_html_document_keeps_head_scripts_and_doctype(session) -> None:
    output = translate_document(DOCUMENT, DocumentFormat.html, session, SETTINGS)
    assert output.startswith("<!DOCTYPE html>\n")
    before, after = lxml_html.document_fromstring(DOCUMENT), lxml_html.document_fromstring(output)
    assert _structure(after) == _structure(before)
    assert _code(after) == _code(before)
    assert any(is_cjk_char(c) for c in after.find(".//title").text)
    assert after.find(".//b").text and all(is_cjk_char(c) for c in after.find(".//b").text)


def _rendered(markdown: str):
    parser = markdown_it.MarkdownIt("commonmark").enable("table").enable("strikethrough")
    return _fragment(parser.render(markdown))


def test_markdown_keeps_structure_links_and_code(session) -> None:
    output = translate_document(MARKDOWN, DocumentFormat.markdown, session, SETTINGS)
    before, after = _rendered(MARKDOWN), _rendered(output)
    assert _structure(after) == _structure(before)
    assert _code(after) == _code(before)
    _english_elements_are_chinese(before, after)
    source_lines, output_lines = MARKDOWN.split("\n"), output.split("\n")
    for kept in ('print("hello world")  # not translated', "    indented code stays",
                 "|:-----|------:|", "========", "```python"):
        assert kept in output_lines
    assert "![logo](images/logo.png)" in output
    assert len(output_lines) == len(source_lines) - 2  # two paragraphs of two lines: one each


def test_markdown_escapes_what_the_translation_would_turn_into_markup(session) -> None:
    # The model copies "*" and "_" it cannot translate; they must stay text.
    output = translate_document("Use 2 * 3 and a_b_c here.\n", DocumentFormat.markdown, session,
                                SETTINGS)
    assert [node.tag for node in _rendered(output).iter()] == ["div", "p"]


def test_piece_spans_follow_the_text_through_normalisation_and_bytes(session) -> None:
    tokenizer = session.translator.tokenizer
    for text in ["Tom ❤ London, ﬁne café.", "我叫汤姆，住在伦敦。", "  spaced   out  ", "𠀀𠀁 ok"]:
        pieces = tokenizer.source_pieces(text)
        spans = piece_spans(pieces, text)
        assert len(spans) == len(pieces)
        covered = "".join(text[a:b] for a, b in spans if b > a)
        # Every character but spaces is spelled by exactly one piece (bytes share theirs).
        distinct = sorted(set(spans))
        assert "".join(text[a:b] for a, b in distinct if b > a) == "".join(text.split())
        assert all(a <= b for a, b in spans) and covered


class _Attention:
    """What Translator.align returns, for a placement test without a model."""

    def __init__(self, source_pieces, target_pieces, links, text):
        self.source_pieces, self.target_pieces, self.text = source_pieces, target_pieces, text
        weights = np.full((len(target_pieces), len(source_pieces)), 0.01)
        for target, source in links.items():
            weights[target, source] = 1.0
        self.weights = weights[None, None]


def test_placement_nests_orders_and_fills_spans() -> None:
    """Source "a b c d": <x>a <y>b</y></x> <z>c</z> d. The translation "D C B A" reverses the
    words; <z> must still follow <x> (the source order) and hold a word: <x>, aligned with
    "B A", gives up "A" to it."""
    inner = Inline("y", 2, 3)
    nodes = [Inline("x", 0, 3, children=[inner]), Inline("z", 4, 5)]
    attention = _Attention(["▁a", "▁b", "▁c", "▁d", "</s>"], ["▁D", "▁C", "▁B", "▁A", "</s>"],
                           {0: 3, 1: 2, 2: 1, 3: 0}, "D C B A")
    [placed] = translate_blocks([Block("a b c d", nodes)],
                                lambda sentences: [("D C B A", attention, 0)])
    x, z = placed.nodes
    text = placed.text
    assert text[x.target_start:x.target_end] == "B"
    assert text[inner.target_start:inner.target_end] == "B"
    assert text[z.target_start:z.target_end] == "A"


@pytest.mark.parametrize("name, expected", [("a.md", "markdown"), ("A.MARKDOWN", "markdown"),
                                            ("page.html", "html"), ("x.htm", "html"),
                                            ("notes.txt", "text"), ("data", "text")])
def test_format_from_the_extension(name: str, expected: str) -> None:
    assert format_for(Path(name)).value == expected
    assert format_for(None) is DocumentFormat.text


def _cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    # The installed package (or PYTHONPATH's), run outside the source tree, as test_cli.py does.
    env = {key: value for key, value in os.environ.items() if key != "PYTRANSFORMER_MODEL"}
    return subprocess.run([sys.executable, "-m", "pytransformer", "translate", *args],
                          input=input, capture_output=True, text=True, env=env, timeout=300,
                          cwd=tempfile.gettempdir())


def test_cli_translates_a_markdown_file_into_an_output_file(tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text("# Good night\n\nSee you *tomorrow*.\n", encoding="utf-8")
    result = _cli("--file", str(source), "--output", str(tmp_path / "out.md"))
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert written.startswith("# ") and written.count("*") == 2 and "tomorrow" not in written
    html = _cli("--format", "html", input="<p>Thank you, <b>my friend</b>.</p>\n")
    assert html.returncode == 0 and "<b>" in html.stdout and "friend" not in html.stdout
    refused = _cli("--format", "html", "--json", "hello")
    assert refused.returncode != 0 and "--format html writes one document" in refused.stderr


def test_line_breaks_split_lines_and_autolinks_stay(session) -> None:
    output = translate_document("<p>Good morning.<br>Thank you.<br>Good night.</p>",
                                DocumentFormat.html, session, SETTINGS)
    lines = [(node.tail or "") for node in _fragment(output).iter("br")]
    first = _fragment(output).find(".//p").text
    translations = [t.text for t in session.translator.translate(
        ["Good morning.", "Thank you.", "Good night."])]
    assert [first] + lines == translations  # each line translated on its own
    markdown = translate_document("Visit <https://example.com/a_b> now.\n",
                                  DocumentFormat.markdown, session, SETTINGS)
    assert "<https://example.com/a_b>" in markdown
    nested = translate_document("<p>I <em>really <strong>really</strong></em> like tea.</p>",
                                DocumentFormat.html, session, SETTINGS)
    assert _fragment(nested).find(".//strong").text  # a word even where attention put none


def test_emphasis_markdown_would_not_read_is_written_as_html() -> None:
    from pytransformer.cli.documents.markdown import _inline_markdown
    from pytransformer.cli.documents.placement import BlockTranslation

    around_punctuation = Inline(("*", "*"), 0, 0, target_start=3, target_end=4)
    around_words = Inline(("**", "**"), 0, 0, target_start=0, target_end=2)
    written = _inline_markdown(BlockTranslation("明天见。", [around_words, around_punctuation]))
    assert written == "**明天**见<em>。</em>"
    assert [node.tag for node in _rendered(written).iter()] == ["div", "p", "strong", "em"]
