"""`pytransformer chat` driven through a real pseudo-terminal (pexpect): streaming, slash
commands, Ctrl-C during a long generation, Ctrl-D, history and multi-line paste. Expected
translations come from the public API on the same model."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

import pytransformer
from cli_models import PATIENCE_SECONDS, write_endless_model
from pytransformer.cli.main import app

PROMPT = "› "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STATUS = re.compile(r"(\d+) tokens · [\d.]+ s · [\d.]+ tokens/s( …)?")


@pytest.fixture(scope="module")
def endless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_endless_model(tmp_path_factory.mktemp("endless") / "endless.ptm")


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class Chat:
    """A `python -m pytransformer chat` process on a pseudo-terminal."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), TERM="xterm-256color",
                   COLUMNS="250", LINES="50")
        env.pop("PYTRANSFORMER_DEBUG", None)
        env.pop("PYTRANSFORMER_MODEL", None)
        self.child = pexpect.spawn(sys.executable, ["-m", "pytransformer", "chat", *args],
                                   cwd=str(tmp_path), env=env, encoding="utf-8",
                                   dimensions=(50, 250), timeout=PATIENCE_SECONDS)
        self.prompt()

    def prompt(self) -> str:
        """Waits for the prompt; returns what was printed since the last one, ANSI-free."""
        self.child.expect_exact(PROMPT)
        return plain(self.child.before)

    def enter(self, line: str) -> str:
        self.child.send(line + "\r")
        return self.prompt()

    def quit_with_ctrl_d(self) -> None:
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus == 0 and self.child.signalstatus is None

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def chats():
    started: list[Chat] = []
    yield started
    for chat in started:
        chat.close()


def start(chats: list[Chat], tmp_path: Path, *args: str) -> Chat:
    chat = Chat(tmp_path, *args)
    chats.append(chat)
    return chat


def frames(output: str) -> list[tuple[str, int, bool]]:
    """The frames the live view drew, in order: (text, token count, final). A frame's text is
    what lies between the previous status line and its own; wrapped lines are rejoined with a
    space (the test models' pieces are space-separated)."""
    found = []
    previous_end = None
    for match in STATUS.finditer(output):
        if previous_end is not None:
            text = " ".join(part.strip() for part in output[previous_end:match.start()]
                            .split("\n") if part.strip())
            found.append((text, int(match.group(1)), match.group(2) is None))
        previous_end = match.end()
    return found


def final_texts(output: str) -> list[str]:
    return [text for text, _, final in frames(output) if final]


def final_text(output: str) -> str:
    """The translation as finally drawn (the output holds exactly one translation)."""
    texts = final_texts(output)
    assert len(texts) == 1, output
    return texts[0]


def test_translation_streams_token_by_token(chats, tmp_path: Path, endless: Path) -> None:
    # Long enough to span several of the display's refresh periods (1/30 s) however fast the
    # core decodes (300 tokens of this model took 30 ms: one intermediate frame; 2000 take
    # ~0.3 s), short enough for the text to fit the 50 x 250 terminal (~40 lines).
    length = 2000
    expected = pytransformer.Translator(endless).translate(["▁w3 ▁w4"], max_length=length)[0]
    chat = start(chats, tmp_path, "-m", str(endless), "--max-length", str(length))
    output = chat.enter("▁w3 ▁w4")
    assert final_text(output) == expected.text
    # Intermediate frames: growing token counts, each text a prefix of the final one.
    streamed = [(text, count) for text, count, final in frames(output) if not final]
    counts = [count for _, count in streamed]
    assert counts == sorted(counts) and len({count for count in counts if count < length}) >= 2
    for text, _ in streamed:
        assert expected.text.startswith(text)
    assert re.search(rf"^{length} tokens · .* tokens/s$", output, re.MULTILINE)
    chat.quit_with_ctrl_d()


def test_slash_commands(chats, tmp_path: Path, bidirectional: Path, marian: Path) -> None:
    translator = pytransformer.Translator(bidirectional)
    latin, han = "▁w3 ▁w4", "你 好"
    # chat decodes greedily unless /beam says otherwise: greedy search streams token by token
    to_zh = translator.translate([latin], target_language="zh", beam_size=1)[0].text
    to_en = translator.translate([latin], target_language="en", beam_size=1)[0].text
    han_to_en = translator.translate([han], target_language="en", beam_size=1)[0].text
    assert to_zh != to_en
    chat = start(chats, tmp_path, "-m", str(bidirectional))
    help_text = chat.enter("/help")
    assert "/beam N" in help_text and "/quit" in help_text
    assert final_text(chat.enter(latin)) == to_zh  # Latin script: the other language
    assert "to en" in chat.enter("/to en")
    copied = chat.enter(latin)  # already in en by its script: copied, with a warning
    assert final_text(copied) == latin
    assert "warning: text already in en (by its script), the language /to asks for, is " \
        "copied unchanged" in " ".join(copied.split())
    assert final_text(chat.enter(han)) == han_to_en
    assert "error: unknown target language 'de'" in chat.enter("/to de")
    assert final_text(chat.enter(han)) == han_to_en  # the failed command changed nothing
    assert "to auto" in chat.enter("/to auto")
    assert "from zh" in chat.enter("/from zh")
    assert final_text(chat.enter(latin)) == to_en
    assert "beam size 2" in chat.enter("/beam 2")
    beam = translator.translate([latin], beam_size=2, target_language="en")[0]
    [(text, count, _)] = [frame for frame in frames(chat.enter(latin)) if frame[2]]
    assert (text, count) == (beam.text, len(beam.tokens))  # through Translator.stream too
    assert "usage: /beam N" in chat.enter("/beam zero")
    stats = chat.enter("/stats")
    assert re.search(r"translations\s+6", stats) and re.search(r"beam size\s+2 \(beam search",
                                                               stats)
    assert re.search(r"languages\s+en, zh", stats)
    assert "unknown command /frobnicate" in chat.enter("/frobnicate")
    assert "error: unknown model" in chat.enter("/model /no/such/model.ptm")
    assert f"loaded {marian}" in chat.enter(f"/model {marian}")
    expected = pytransformer.Translator(marian).translate(["Hello."], beam_size=2)[0].text
    assert final_text(chat.enter("Hello.")) == expected
    chat.child.send("/quit\r")
    chat.child.expect(pexpect.EOF)
    chat.child.close()
    assert chat.child.exitstatus == 0


def test_ctrl_c_stops_a_long_generation(chats, tmp_path: Path, endless: Path) -> None:
    chat = start(chats, tmp_path, "-m", str(endless))
    chat.child.sendintr()  # at the prompt: a fresh prompt, the session goes on
    chat.prompt()
    chat.child.send("▁w3 ▁w4\r")
    chat.child.expect(r"[1-9]\d* tokens · ")  # generating
    chat.child.sendintr()
    output = chat.prompt()
    assert "interrupted" in output
    assert "Traceback" not in output
    shown = [int(m.group(1)) for m in STATUS.finditer(output)]
    assert 0 < shown[-1] < 4000  # stopped long before max_length, on content not wall time
    assert re.search(r"translations\s+0", chat.enter("/stats"))
    # The model still works after the interruption.
    assert STATUS.search(chat.enter("/max-length 5")) is None
    quick = pytransformer.Translator(endless).translate(["▁w5"], max_length=5)[0].text
    assert final_text(chat.enter("▁w5")) == quick
    chat.quit_with_ctrl_d()


def test_paste_and_history_across_sessions(chats, tmp_path: Path, marian: Path) -> None:
    translator = pytransformer.Translator(marian)
    first, second = (t.text for t in translator.translate(["First line.", "Second line."],
                                                          beam_size=1))
    chat = start(chats, tmp_path, "-m", str(marian))
    chat.child.send("First line.\nSecond line.\n")  # one paste: both lines, one prompt
    assert final_texts(chat.prompt()) == [first, second]
    chat.quit_with_ctrl_d()
    history = tmp_path / "xdg" / "pytransformer" / "history"
    assert history.read_text(encoding="utf-8").splitlines()[-2:] == ["First line.",
                                                                     "Second line."]
    again = start(chats, tmp_path, "-m", str(marian))
    again.child.send("\x1b[A")  # Up: the last line of the previous session
    again.child.send("\r")
    assert final_text(again.prompt()) == second
    again.quit_with_ctrl_d()


def test_chat_without_a_terminal_and_its_errors(tmp_path: Path, marian: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    runner = CliRunner()
    expected = pytransformer.Translator(marian).translate(["Hello."], beam_size=1)[0].text
    result = runner.invoke(app, ["chat", "-m", str(marian), "--no-history"],
                           input="Hello.\n/to fr\n/stats\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"  # stdout: the translations only
    assert "does not say which languages" in result.stderr
    assert re.search(r"translations\s+1", result.stderr)
    assert not (tmp_path / "xdg" / "pytransformer" / "history").exists()
    missing = runner.invoke(app, ["chat", "-m", str(tmp_path / "none.ptm")])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: unknown model")
    assert "Traceback" not in missing.output


def test_without_a_terminal_stdout_has_one_line_per_input_line(tmp_path: Path, marian: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """`printf ... | pytransformer chat > file`: exactly one line per input line on stdout (an
    empty line gives an empty line, a slash command none); status, statistics and replies to
    commands on stderr, never glued to a translation."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    translator = pytransformer.Translator(marian)

    def greedy(*sentences: str) -> str:
        return " ".join(t.text for t in translator.translate(list(sentences), beam_size=1))

    result = CliRunner().invoke(app, ["chat", "-m", str(marian)],
                                input="Good morning.\n\nThe cat sleeps. The dog barks!\n"
                                      "/stats\n/to fr\nI like tea.\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n") == [greedy("Good morning."), "",
                                         greedy("The cat sleeps.", "The dog barks!"),
                                         greedy("I like tea."), ""]
    assert "tokens/s" not in result.stdout and "translations" in result.stderr


def test_without_a_terminal_on_stdout_status_goes_to_the_terminal_on_stderr(
        chats, tmp_path: Path, marian: Path) -> None:
    """Typing at a terminal with stdout redirected: the prompt, the banner and each
    translation's speed appear on the terminal (stderr); the file receives translations only."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), TERM="xterm-256color")
    command = f"{sys.executable} -m pytransformer chat -m {marian} > out.txt"
    child = pexpect.spawn("/bin/sh", ["-c", command], cwd=str(tmp_path), env=env,
                          encoding="utf-8", dimensions=(50, 200), timeout=PATIENCE_SECONDS)
    child.expect_exact(PROMPT)
    assert "pytransformer chat" in plain(child.before)
    child.send("Hello.\r")
    child.expect_exact(PROMPT)
    assert STATUS.search(plain(child.before))
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    expected = pytransformer.Translator(marian).translate(["Hello."], beam_size=1)[0].text
    assert (tmp_path / "out.txt").read_text() == expected + "\n"


def test_stats_fit_80_columns_and_say_what_is_used(tmp_path: Path, marian: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "80")
    deep = tmp_path / ("a-directory-with-a-rather-long-name-" * 3) / "and-a-long-model-name.ptm"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(marian.read_bytes())
    translator = pytransformer.Translator(deep)
    limit = translator.max_positions
    result = CliRunner().invoke(app, ["chat", "-m", str(deep)],
                                input=f"/max-length {limit + 1}\n/stats\n")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert f"error: /max-length {limit + 1}: this model generates at most {limit} tokens " \
           "per sentence" in lines  # refused at once, not when translating
    assert all(len(line) <= 80 for line in lines if not line.startswith("error:"))
    # the path wraps within its column instead of being cut
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    value_column = lines[start].index(str(deep)[:10])
    rejoined = lines[start][value_column:].strip()
    for line in lines[start + 1:]:
        if line[:value_column].strip():  # the next row's name
            break
        rejoined += line[value_column:].strip()
    assert rejoined == str(deep)
    default_length = translator.metadata["generation.max_length"]
    assert re.search(r"^beam size +1 \(greedy search, streamed\) *$", result.stderr, re.M)
    assert re.search(rf"^max length +{default_length} \(the model's default\) *$",
                     result.stderr, re.M)
