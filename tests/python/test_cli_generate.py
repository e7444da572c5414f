"""`pytransformer generate`: the continuation streamed to stdout equals LanguageModel.complete's
text for the same options; the prompt from arguments or stdin; --chat; --stats; errors as one
line with a non-zero exit status."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the test language models are built with torch")
pytest.importorskip("transformers", reason="the test language models are transformers models")
pytest.importorskip("tokenizers", reason="the test language models' tokenizer needs tokenizers")

import pytransformer  # noqa: E402
from cli_language_models import write_language_model  # noqa: E402
from cli_models import PATIENCE_SECONDS  # noqa: E402
from pytransformer.cli.main import app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROMPT = "Once upon a time"
STATS = re.compile(r"^prompt: (\d+) tokens · [\d.]+ s · [\d.]+ tokens/s\n"
                   r"generated: (\d+) tokens · [\d.]+ s · [\d.]+ tokens/s · "
                   r"(ended by the model|stopped at the length limit)$", re.MULTILINE)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_language_model(tmp_path_factory.mktemp("lm"))


@pytest.fixture(scope="module")
def plain_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A language model without a chat template."""
    return write_language_model(tmp_path_factory.mktemp("plain"), chat_template=None)


@pytest.fixture(scope="module")
def model(lm: Path) -> pytransformer.LanguageModel:
    return pytransformer.LanguageModel(lm, threads=1)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PYTRANSFORMER_MODEL", raising=False)
    monkeypatch.delenv("PYTRANSFORMER_DEBUG", raising=False)


def generate(*args: str, input: str | None = None):
    return CliRunner().invoke(app, ["generate", *args], input=input)


def test_output_is_the_greedy_completion(lm: Path, model) -> None:
    for options, api in ([["-n", "20"], {"max_new_tokens": 20}], [[], {}]):
        expected = model.complete(PROMPT, **api)
        assert expected.text  # (something to compare)
        result = generate("-m", str(lm), *options, PROMPT)
        assert result.exit_code == 0, result.output
        assert result.stdout == expected.text + "\n"
        assert result.stderr == ""
    # several words are one prompt, joined by spaces
    words = generate("-m", str(lm), "-n", "20", *PROMPT.split())
    assert words.stdout == model.complete(PROMPT, max_new_tokens=20).text + "\n"


def test_prompt_from_stdin(lm: Path, model) -> None:
    expected = model.complete(PROMPT, max_new_tokens=12).text + "\n"
    for arguments in ([], ["-"]):
        result = generate("-m", str(lm), "-n", "12", *arguments, input=PROMPT + "\n")
        assert result.exit_code == 0, result.output
        assert result.stdout == expected  # its final newline is not part of the prompt
    two_lines = generate("-m", str(lm), "-n", "12", input="First line.\nSecond line.\n")
    assert two_lines.stdout == model.complete("First line.\nSecond line.",
                                              max_new_tokens=12).text + "\n"


def test_sampling_is_reproducible_with_a_seed(lm: Path, model) -> None:
    options = ["-t", "0.9", "--top-k", "50", "--top-p", "0.9", "--seed", "7", "-n", "30"]
    first = generate("-m", str(lm), *options, PROMPT)
    assert first.exit_code == 0, first.output
    expected = model.complete(PROMPT, temperature=0.9, top_k=50, top_p=0.9, seed=7,
                              max_new_tokens=30).text
    assert first.stdout == expected + "\n"
    assert generate("-m", str(lm), *options, PROMPT).stdout == first.stdout
    greedy_extras = generate("-m", str(lm), "-n", "5", "--seed", "3", PROMPT)
    assert "warning: --top-k, --top-p, --min-p and --seed apply to sampling" in greedy_extras.stderr


def test_chat_wraps_the_prompt_as_a_user_message(lm: Path, plain_lm: Path, model) -> None:
    ids = model.chat_ids([{"role": "user", "content": "Hello there"}])
    expected = model.complete(ids, max_new_tokens=15).text
    result = generate("-m", str(lm), "--chat", "-n", "15", "Hello there")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected + "\n"
    assert result.stdout != generate("-m", str(lm), "-n", "15", "Hello there").stdout
    refused = generate("-m", str(plain_lm), "--chat", "Hello there")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and "has no chat template" in refused.stderr
    assert generate("-m", str(plain_lm), "-n", "3", "Hello there").exit_code == 0


def test_stats_on_stderr(lm: Path, model) -> None:
    result = generate("-m", str(lm), "-n", "10", "--stats", PROMPT)
    assert result.exit_code == 0, result.output
    expected = model.complete(PROMPT, max_new_tokens=10)
    assert result.stdout == expected.text + "\n"
    match = STATS.search(result.stderr)
    assert match, result.stderr
    assert int(match.group(1)) == expected.prompt_tokens == len(model.prompt_ids(PROMPT))
    assert int(match.group(2)) == len(expected.tokens)
    assert match.group(3) == ("ended by the model" if expected.finished
                              else "stopped at the length limit")


def test_a_model_named_as_for_the_other_commands(lm: Path, tmp_path: Path, model) -> None:
    models = tmp_path / "xdg" / "pytransformer" / "models"
    models.mkdir(parents=True)
    shutil.copy(lm, models / "tiny-lm.ptm")
    result = generate("-m", "tiny-lm", "-n", "5", PROMPT)
    assert result.exit_code == 0, result.output
    assert result.stdout == model.complete(PROMPT, max_new_tokens=5).text + "\n"


def test_errors_are_one_line(lm: Path, model, tmp_path: Path,
                             request: pytest.FixtureRequest) -> None:
    translation_model = REPO / "weights" / "model.ptm"  # the default model
    if not translation_model.is_file():
        translation_model = request.getfixturevalue("marian")
    long_prompt = " ".join(["word"] * model.context_length)
    cases = [
        (["-m", str(translation_model), "Hello"],
         "is a translation model (architecture transformer-seq2seq), not a language model: "
         "use `pytransformer translate` or `pytransformer chat` with it"),
        (["-m", str(lm), ""], "the prompt is empty"),
        (["-m", str(lm), long_prompt], f"and the model's context holds {model.context_length}: "
                                       "shorten it"),
        (["Hello"], "generate needs a language model: pass --model/-m MODEL"),
        (["-m", str(tmp_path / "none.ptm"), "Hello"], "unknown model"),
    ]
    for arguments, message in cases:
        result = generate(*arguments)
        assert result.exit_code == 1, (arguments, result.output)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("error: ") and message in line, line
    empty_stdin = generate("-m", str(lm), input="")
    assert empty_stdin.exit_code == 1 and "error: the prompt is empty (stdin)" in \
        empty_stdin.stderr
    usage = generate("-m", str(lm), "--top-p", "0", "Hello")
    assert usage.exit_code == 2 and usage.stderr == "error: --top-p: must be greater than 0 " \
                                                    "(got 0)\n"
    cut = generate("-m", str(lm), "-n", "1000", "Hello")
    assert cut.exit_code == 0 and "warning: --max-tokens 1000: the prompt" in cut.stderr


def test_in_a_pipe(lm: Path, model, tmp_path: Path) -> None:
    """The installed entry point (python -m pytransformer) reading a pipe and writing one."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop("PYTRANSFORMER_MODEL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "pytransformer", "generate", "-m", str(lm), "-n", "8"],
        input=PROMPT.encode(), capture_output=True, env=env, timeout=PATIENCE_SECONDS)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.decode() == model.complete(PROMPT, max_new_tokens=8).text + "\n"
    assert completed.stderr == b""
