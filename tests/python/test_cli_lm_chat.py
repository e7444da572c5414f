"""`pytransformer chat` with a language model (lm_chat.py): a multi-turn conversation rendered
through the chat template each turn, slash commands, the oldest exchanges dropped when the
context is full, Ctrl-C during an answer, Ctrl-D. Greedy answers (--temperature 0) are checked
against LanguageModel.complete on the same conversation; without a terminal on stdout (Typer's
CliRunner) stdout carries exactly the answers, each followed by a newline."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the test language models are built with torch")
pytest.importorskip("transformers", reason="the test language models are transformers models")
pytest.importorskip("tokenizers", reason="the test language models' tokenizer needs tokenizers")
pexpect = pytest.importorskip("pexpect", reason="the REPL is driven through a pseudo-terminal")

import pytransformer  # noqa: E402
from cli_language_models import SLOW, write_language_model  # noqa: E402
from cli_models import PATIENCE_SECONDS  # noqa: E402
from pytransformer.cli.main import app  # noqa: E402

PROMPT = "› "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CONTEXT = re.compile(r"^context +(\d+) / (\d+) tokens", re.MULTILINE)
LAST_PROMPT = re.compile(r"^last prompt +(\d+) tokens", re.MULTILINE)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_language_model(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def model(lm: Path) -> pytransformer.LanguageModel:
    return pytransformer.LanguageModel(lm, threads=1)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)


def chat(*args: str, input: str):
    return CliRunner().invoke(app, ["chat", "--no-history", *args], input=input)


class Conversation:
    """What the REPL should do, through the Python API: greedy answers of `max_tokens` to the
    conversation so far, the oldest exchanges dropped while the prompt leaves less room than
    that in the context (the system message kept)."""

    def __init__(self, model, max_tokens: int, system: str | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.messages = [{"role": "system", "content": system}] if system else []
        self.prompt_tokens = 0
        self.used = 0
        self.dropped = 0

    def say(self, text: str) -> str:
        self.messages.append({"role": "user", "content": text})
        start = 1 if self.messages[0]["role"] == "system" else 0
        while True:
            ids = self.model.chat_ids(self.messages)
            room = self.model.context_length - len(ids) + 1
            if room >= self.max_tokens or len(self.messages) - start <= 1:
                break
            del self.messages[start:start + 2]
            self.dropped += 1
        answer = self.model.complete(ids, max_new_tokens=min(room, self.max_tokens))
        self.messages.append({"role": "assistant", "content": answer.text})
        self.prompt_tokens, self.used = len(ids), len(ids) + len(answer.tokens)
        return answer.text


def test_each_turn_sees_the_conversation(lm: Path, model) -> None:
    expected = Conversation(model, max_tokens=8)
    first, second = expected.say("Hello"), expected.say("How are you?")
    result = chat("-m", str(lm), "--temperature", "0", "--max-tokens", "8",
                  input="Hello\n/stats\nHow are you?\n/stats\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == first + "\n" + second + "\n"  # stdout: the answers only
    (used_1, total), (used_2, _) = [tuple(map(int, m)) for m in CONTEXT.findall(result.stderr)]
    prompt_1, prompt_2 = map(int, LAST_PROMPT.findall(result.stderr))
    assert total == model.context_length
    assert prompt_2 == expected.prompt_tokens and used_2 == expected.used
    assert prompt_2 > used_1 > prompt_1  # the second prompt holds the first exchange
    assert "Traceback" not in result.output


def test_reset_system_and_sampling_commands(lm: Path, model) -> None:
    fresh = Conversation(model, max_tokens=6).say("Hello")
    with_system = Conversation(model, max_tokens=6, system="Answer briefly.").say("Hello")
    result = chat("-m", str(lm), "--temperature", "0", "--max-tokens", "6",
                  input="Hello\n/reset\n/stats\nHello\n/system Answer briefly.\nHello\n"
                        "/temp 0.5\n/top-p 0.8\n/top-k 7\n/top-p 2\n/temp x\n/frobnicate\n"
                        "/stats\n/help\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "\n".join([fresh, fresh, with_system]) + "\n"
    stderr = result.stderr
    assert "new conversation" in stderr and "system prompt set; new conversation" in stderr
    first_stats, last_stats = stderr.split("\nmodel ")[1:3]
    assert re.search(r"conversation +0 exchanges", first_stats)
    assert CONTEXT.search(first_stats).group(1) == "0"
    assert re.search(r"conversation +1 exchange, with a system prompt", last_stats)
    assert re.search(r"temperature +0\.5\b", last_stats)
    assert re.search(r"top-p / top-k +0\.8 / 7\b", last_stats)
    assert "error: usage: /top-p X (0 < X <= 1)" in stderr
    assert "error: usage: /temp X" in stderr
    assert "error: unknown command /frobnicate" in stderr
    assert "/system TEXT" in stderr and "/max-tokens N" in stderr


def test_a_full_context_drops_the_oldest_exchanges(tmp_path_factory, model) -> None:
    small = write_language_model(tmp_path_factory.mktemp("small"), max_position_embeddings=64)
    small_model = pytransformer.LanguageModel(small, threads=1)
    assert small_model.context_length == 64
    expected = Conversation(small_model, max_tokens=16, system="Be kind.")
    messages = ["Hello", "Tell me a story", "And then?", "Why?", "Thanks"]
    answers = [expected.say(text) for text in messages]
    assert expected.dropped >= 2  # (the test sees exchanges dropped)
    too_long = " ".join(["word"] * 80)
    result = chat("-m", str(small), "--temperature", "0", "--max-tokens", "16",
                  "--system", "Be kind.", input="".join(f"{m}\n/stats\n" for m in messages) +
                  f"{too_long}\n/stats\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(answer + "\n" for answer in answers)
    notices = re.findall(r"\(dropped the oldest (\d+) exchanges? to fit the context of 64 "
                         r"tokens\)", result.stderr)
    assert notices and sum(map(int, notices)) == expected.dropped
    used = [int(used) for used, total in CONTEXT.findall(result.stderr)]
    assert len(used) == len(messages) + 1 and max(used) <= 64
    assert int(LAST_PROMPT.findall(result.stderr)[-1]) == expected.prompt_tokens
    # a message that cannot fit even alone is refused, the conversation left as it was
    assert re.search(r"^error: the message makes a prompt of \d+ tokens and the model's "
                     r"context holds 64: shorten it$", result.stderr, re.MULTILINE)
    exchanges = re.findall(r"^conversation +(\d+) exchange", result.stderr, re.MULTILINE)
    assert exchanges[-1] == exchanges[-2] != "0"


def test_errors(lm: Path, tmp_path_factory, marian: Path) -> None:
    plain = write_language_model(tmp_path_factory.mktemp("plain"), chat_template=None)
    cases = [
        (["-m", str(plain)], "has no chat template", "pytransformer generate -m"),
        (["-m", str(lm), "--beam", "2"], "--beam: for translation models", "language model"),
        (["-m", str(lm), "--device", "cuda"], "language models run on the CPU only", ""),
        (["-m", str(marian), "--temperature", "0.5"], "--temperature: for language models",
         "translation model"),
    ]
    for arguments, message, more in cases:
        result = chat(*arguments, input="Hello\n")
        assert result.exit_code == 1, (arguments, result.output)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and message in line and more in line, line


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def test_streaming_ctrl_c_and_ctrl_d_on_a_terminal(tmp_path: Path,
                                                   tmp_path_factory) -> None:
    slow = write_language_model(tmp_path_factory.mktemp("slow"), **SLOW)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), TERM="xterm-256color",
               COLUMNS="200", LINES="50")
    child = pexpect.spawn(sys.executable, ["-m", "pytransformer", "chat", "-m", str(slow),
                                           "--temperature", "0", "--max-tokens", "4000",
                                           "--threads", "1"],
                          env=env, encoding="utf-8", dimensions=(50, 200),
                          timeout=PATIENCE_SECONDS)
    try:
        child.expect_exact(PROMPT)
        assert "language model, context 4096 tokens" in plain(child.before)
        child.sendintr()  # at the prompt: a fresh prompt
        child.expect_exact(PROMPT)
        child.send("Hello\r")
        # streamed: a frame with some tokens, drawn before the answer is complete
        child.expect(r"[1-9]\d* tokens · [\d.]+ s · [\d.]+ tokens/s …")
        child.sendintr()
        child.expect_exact(PROMPT)
        output = plain(child.before)
        assert "interrupted" in output and "Traceback" not in output
        child.send("/stats\r")
        child.expect_exact(PROMPT)
        stats = plain(child.before)
        assert re.search(r"conversation +1 exchange\b", stats)  # the partial answer is kept
        tokens = int(re.search(r"last answer +(\d+) tokens", stats).group(1))
        assert 0 < tokens < 4000 and "(interrupted)" in stats
        used = int(CONTEXT.search(stats).group(1))
        child.send("/max-tokens 3\r")
        child.expect_exact(PROMPT)
        child.send("Again\r")
        child.expect_exact(PROMPT)
        assert re.search(r"^[0-3] tokens · [\d.]+ s · [\d.]+ tokens/s *$",
                         plain(child.before), re.MULTILINE)
        child.send("/stats\r")
        child.expect_exact(PROMPT)
        stats = plain(child.before)
        assert re.search(r"conversation +2 exchanges", stats)
        assert int(CONTEXT.search(stats).group(1)) > used
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0 and child.signalstatus is None
    history = tmp_path / "xdg" / "pytransformer" / "lm-history"
    assert history.read_text(encoding="utf-8").splitlines()[-5:] == [
        "Hello", "/stats", "/max-tokens 3", "Again", "/stats"]
