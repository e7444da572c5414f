"""A model file changed under a process that uses it never crashes the process (issue 16).

A loaded model holds no reference to its file (ModelFile::open reads it with pread into private
memory; nothing is memory-mapped), so truncating the file, copying a shorter file over it (what
`cp` does: truncate, then write), rewriting it in place with the same size, or deleting it
leaves the loaded model translating exactly as before. A file changed *while* it is loaded, or
after a `_core.ModelFile` opened it without reading its tensors, gives ModelFormatError (a short
read, a changed header, size or modification time, or a tensor that no longer matches its
checksum), never SIGBUS and never a model mixing two files.

Every scenario runs in a child process, so that a regression kills the child (and fails the
test) rather than the test runner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import ModelFormatError, read_model, write_model
from tiny_models import random_tensors, tiny_metadata, write_random_model

SOURCE = [["\u2581w3", "\u2581w4", "\u2581w5", "\u2581w6"], ["\u2581w7"]]

# Loads the model at argv[1] through the public API, translates, then translates again each
# time a line arrives on stdin (after the parent changed the file), printing one JSON line per
# translation: the n-best tokens and scores.
TRANSLATE_ON_REQUEST = """
import json, sys
from pytransformer import Translator

translator = Translator(sys.argv[1], threads=1)
source = json.loads(sys.argv[2])

def translate():
    results = translator.translate_tokens(source, beam_size=3, n_best=2, return_scores=True)
    return [[(h.tokens, h.score) for h in r.hypotheses] for r in results]

print(json.dumps(translate()), flush=True)
for line in sys.stdin:
    print(json.dumps(translate()), flush=True)
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'model': the one in use; 'other': the same shapes and metadata, other weights (so the
    same size); 'shorter': a smaller model."""
    directory = tmp_path_factory.mktemp("models")
    paths = {name: directory / f"{name}.ptm" for name in ("model", "other", "shorter")}
    shape = dict(d_model=32, heads=4, ffn_dim=64, layers=2, source_vocab_size=200,
                 target_vocab_size=200)
    write_random_model(paths["model"], seed=1, **shape)
    write_random_model(paths["other"], seed=2, **shape)
    write_random_model(paths["shorter"], seed=3)
    assert paths["model"].stat().st_size == paths["other"].stat().st_size
    assert paths["shorter"].stat().st_size < paths["model"].stat().st_size // 4
    return paths


def overwrite_in_place(path: Path, data: bytes) -> None:
    """Rewrites the file's bytes without truncating it (same inode)."""
    with open(path, "r+b") as file:
        file.write(data)


CHANGES = {
    "truncated": lambda path, models: os.truncate(path, 4096),
    "truncated to nothing": lambda path, models: os.truncate(path, 0),
    # shutil.copyfile opens the destination with O_TRUNC and writes, as cp does.
    "shorter file copied over it": lambda path, models: shutil.copyfile(models["shorter"], path),
    "same size, other weights": lambda path, models: overwrite_in_place(
        path, models["other"].read_bytes()),
    "same size, zeros": lambda path, models: overwrite_in_place(
        path, bytes(path.stat().st_size)),
    "deleted": lambda path, models: path.unlink(),
    "replaced by a rename": lambda path, models: write_model(path, *read_model(models["other"])),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_loaded_model_is_unaffected_by_changes_to_its_file(tmp_path, models, change):
    path = tmp_path / "model.ptm"
    shutil.copyfile(models["model"], path)
    child = subprocess.Popen(
        [sys.executable, "-c", TRANSLATE_ON_REQUEST, str(path), json.dumps(SOURCE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    try:
        before = child.stdout.readline()
        assert before, child.stderr.read()
        CHANGES[change](path, models)
        child.stdin.write("again\n")
        child.stdin.flush()
        after = child.stdout.readline()
        child.stdin.close()
        returncode = child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    stderr = child.stderr.read()
    assert returncode == 0, (returncode, signal.Signals(-returncode).name
                             if returncode < 0 else stderr)
    assert after == before
    assert json.loads(before)[0][0][0], "the test model should translate to something"


def test_chat_keeps_translating_after_a_shorter_file_is_copied_over_its_model(tmp_path, marian,
                                                                             models):
    """The issue's report: `cp` a shorter file over the model while `chat` runs, then type."""
    pexpect = pytest.importorskip("pexpect")
    from pytransformer import Translator

    path = tmp_path / "model.ptm"
    shutil.copyfile(marian, path)
    text = "hello world"
    expected = Translator(path).translate([text], beam_size=1)[0].text
    assert expected
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), TERM="xterm-256color",
               COLUMNS="200", LINES="40")
    env.pop("PYTRANSFORMER_DEBUG", None)
    env.pop("PYTRANSFORMER_MODEL", None)
    chat = pexpect.spawn(sys.executable, ["-m", "pytransformer", "chat", "-m", str(path)],
                         cwd=str(tmp_path), env=env, encoding="utf-8", dimensions=(40, 200),
                         timeout=60)
    try:
        outputs = []
        chat.expect_exact("› ")
        for _ in range(2):
            chat.send(text + "\r")
            chat.expect_exact("› ")
            outputs.append(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", chat.before))
            shutil.copyfile(models["shorter"], path)
        chat.sendcontrol("d")
        chat.expect(pexpect.EOF)
        chat.close()
        assert chat.signalstatus is None and chat.exitstatus == 0, (chat.signalstatus,
                                                                     chat.exitstatus)
    finally:
        if chat.isalive():
            chat.terminate(force=True)
    for output in outputs:
        assert expected in output and "error" not in output, output


# --- a file changed after _core.ModelFile opened it (tensors read on demand) ------------------


def test_model_file_reads_from_a_truncated_file_raise(tmp_path, models):
    path = tmp_path / "model.ptm"
    shutil.copyfile(models["model"], path)
    model_file = _core.ModelFile(path)
    last = max(model_file.tensor_names(), key=model_file.tensor_offset)
    os.truncate(path, 4096)
    pattern = (r"the file changed after it was opened \(truncated or rewritten by another "
               r"process: it is now 4096 bytes, not \d+, reading tensor '.*'\); open it "
               r"again")
    with pytest.raises(ModelFormatError, match=pattern):
        model_file.tensor(last)
    with pytest.raises(ModelFormatError, match=pattern):
        model_file.verify()
    assert model_file.metadata["model.d_model"] == 32  # read when opened


def test_model_file_verify_detects_a_same_size_rewrite(tmp_path, models):
    path = tmp_path / "model.ptm"
    shutil.copyfile(models["model"], path)
    model_file = _core.ModelFile(path)
    expected = model_file.tensor("enc.embed.weight")
    assert model_file.verify() == len(model_file.tensor_names())
    overwrite_in_place(path, models["other"].read_bytes())
    # The raw accessor reads what the file holds now; verify=True and verify() check it.
    assert not np.array_equal(model_file.tensor("enc.embed.weight"), expected)
    message = (r"tensor 'enc.embed.weight' does not match its checksum \(CRC-32 [0-9a-f]{8}, "
               r"expected [0-9a-f]{8}\): the file is corrupt, or changed after it was opened")
    with pytest.raises(ModelFormatError, match=message):
        model_file.tensor("enc.embed.weight", verify=True)
    with pytest.raises(ModelFormatError, match="does not match its checksum"):
        model_file.verify()


def test_model_file_keeps_reading_a_file_replaced_by_a_rename(tmp_path, models):
    path = tmp_path / "model.ptm"
    shutil.copyfile(models["model"], path)
    model_file = _core.ModelFile(path)
    expected = read_model(models["model"])[1]["dec.0.ffn_up.weight"]
    write_model(path, *read_model(models["other"]))  # atomic replace: a new inode
    np.testing.assert_array_equal(model_file.tensor("dec.0.ffn_up.weight", verify=True), expected)
    assert model_file.verify() > 0


# --- a file changed while it is being loaded -------------------------------------------------

# Loads argv[1] repeatedly while the parent rewrites it; each load must give exactly the
# model of argv[2] or of argv[3] (compared by their teacher-forced logits), or raise
# ModelFormatError naming the file. Prints the outcome counts and the distinct error messages
# (without the path, numbers replaced by N) as JSON.
LOAD_REPEATEDLY = """
import json, re, sys, time
import numpy as np
from pytransformer import _core

path, first, second, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
source, target = [[3, 4, 5, 6, 7, 1]], [[0, 8, 9, 10]]

def logits(model_path):
    return _core.Model(model_path, threads=1).teacher_forced_logits(source, target)[0]

references = {"first": logits(first), "second": logits(second)}
print("ready", flush=True)
outcomes, errors = {}, set()
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        result = logits(path)
    except _core.ModelFormatError as error:
        outcome = "error"
        message = str(error)
        assert message.startswith(path + ": "), message
        errors.add(re.sub(r"\\d+", "N", message[len(path) + 2:]))
    else:
        outcome = next((name for name, reference in references.items()
                        if np.array_equal(reference, result)), "mixed")
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(json.dumps({"outcomes": outcomes, "errors": sorted(errors)}), flush=True)
"""


def test_a_file_changed_while_it_is_loaded_gives_an_error_or_one_whole_model(tmp_path):
    # Large enough (~3 MB) that loads and rewrites overlap often.
    shape = dict(d_model=64, heads=4, ffn_dim=128, layers=2, source_vocab_size=4000,
                 target_vocab_size=4000)
    first, second = tmp_path / "first.ptm", tmp_path / "second.ptm"
    write_random_model(first, seed=11, **shape)
    write_random_model(second, seed=12, **shape)
    versions = [first.read_bytes(), second.read_bytes()]
    assert len(versions[0]) == len(versions[1]) > 2_000_000
    path = tmp_path / "model.ptm"
    path.write_bytes(versions[0])

    child = subprocess.Popen(
        [sys.executable, "-c", LOAD_REPEATEDLY, str(path), str(first), str(second), "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    stop = threading.Event()

    def rewrite() -> None:
        """Alternates the two versions in place, a chunk at a time, sometimes truncating the
        file first (as cp does)."""
        i = 0
        while not stop.is_set():
            i += 1
            data = versions[i % 2]
            with open(path, "r+b") as file:
                if i % 3 == 0:
                    file.truncate(0)
                for start in range(0, len(data), 1 << 18):
                    file.write(data[start:start + (1 << 18)])
                    file.flush()
            time.sleep(0.001)

    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        writer = threading.Thread(target=rewrite)
        writer.start()
        try:
            output, stderr = child.communicate(timeout=120)
        finally:
            stop.set()
            writer.join()
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, (child.returncode, stderr)
    report = json.loads(output)
    outcomes = report["outcomes"]
    assert "mixed" not in outcomes, report
    assert outcomes.get("error", 0) > 0, report  # the race was actually run
    print(report)


# --- checksums ---------------------------------------------------------------------------


def test_a_corrupt_data_section_fails_to_load_with_the_tensor_named(tmp_path, models):
    data = bytearray(models["model"].read_bytes())
    model_file = _core.ModelFile(models["model"])
    data_offset = int.from_bytes(data[32:40], "little")
    position = data_offset + model_file.tensor_offset("dec.1.ffn_down.weight") + 100
    data[position] ^= 0x40
    path = tmp_path / "corrupt.ptm"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError,
                       match=f"^{re.escape(str(path))}: tensor 'dec.1.ffn_down.weight' does not "
                       r"match its checksum \(CRC-32 [0-9a-f]{8}, expected [0-9a-f]{8}\): the "
                       "file is corrupt, or changed while being read$"):
        _core.Model(str(path))
    assert _core.ModelFile(path).tensor_names()  # the directory is still readable


def test_files_without_checksums_still_load(tmp_path):
    """Version-1 files written before the checksums (tests/data/format_v1) load; verify()
    has nothing to check."""
    fixtures = Path(__file__).resolve().parents[1] / "data" / "format_v1"
    for fixture in sorted(fixtures.glob("*.ptm")):
        model_file = _core.ModelFile(fixture)
        assert not model_file.has_checksums and model_file.verify() == 0
        assert "checksum.crc32" not in model_file.metadata
        model = _core.Model(str(fixture), threads=1)
        assert model.teacher_forced_logits([[3, 4, 1]], [[0, 3]])[0].shape[0] == 2


def test_tied_weights_are_still_read_after_the_output_projection_is_packed(tmp_path):
    """Packing gives back the memory of a matrix's bytes, but not of bytes another entry
    shares: a tied output projection's bytes are the decoder embeddings, still read."""
    metadata = tiny_metadata(d_model=64, heads=4, ffn_dim=64, layers=1, source_vocab_size=3000,
                             target_vocab_size=3000)
    tensors = random_tensors(metadata, seed=5, tied=True)
    tied, untied = tmp_path / "tied.ptm", tmp_path / "untied.ptm"
    write_model(tied, metadata, tensors)
    write_model(untied, metadata, {**tensors, "dec.out_proj.weight":
                                   tensors["dec.embed.weight"].copy()})
    assert tied.stat().st_size < untied.stat().st_size
    source, target = [[5, 2900, 17, 1]], [[0, 2999, 1500, 7, 2048]]
    for quantize in (None, "f16"):
        if quantize:
            write_model(tied, metadata, tensors, quantize=quantize)
            write_model(untied, metadata, {**tensors, "dec.out_proj.weight":
                                           tensors["dec.embed.weight"].copy()}, quantize=quantize)
        np.testing.assert_array_equal(
            _core.Model(str(tied), threads=1).teacher_forced_logits(source, target)[0],
            _core.Model(str(untied), threads=1).teacher_forced_logits(source, target)[0])
