"""pytransformer.distributed and `translate --ray` on a real local Ray cluster (issue 17): the
distributed output is line-for-line the single-process output, also when a worker is killed
mid-run; inputs cut at line boundaries read every line once."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pytransformer import Translator
from pytransformer.cli.main import app

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
distributed = pytest.importorskip("pytransformer.distributed")

runner = CliRunner()
WORDS = ("the a house cat dog runs quickly slowly big small red tree. Where is it? "
         "Yes! 你好 世界").split()


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # A run that stops moving fails within minutes, not Ray Data's default half hour.
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = 300
    yield
    ray.shutdown()


def write_corpus(path: Path, lines: int, seed: int = 1) -> Path:
    """Lines of 1-14 words, some empty, one CRLF-ended, a BOM first."""
    rng = random.Random(seed)
    with open(path, "wb") as stream:
        stream.write(b"\xef\xbb\xbf")
        for number in range(lines):
            text = "" if number % 17 == 3 else " ".join(
                rng.choice(WORDS) for _ in range(rng.randint(1, 14)))
            stream.write(text.encode() + (b"\r\n" if number == 5 else b"\n"))
    return path


def test_read_ranges_give_every_line_once(tmp_path: Path) -> None:
    """Byte ranges of any size, cut anywhere, give exactly the file's lines, each from the range
    that holds its first byte, with offsets chaining to the file's end."""
    path = write_corpus(tmp_path / "in.txt", 300)
    path.write_bytes(path.read_bytes() + b"no final newline")
    expected = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode().split("\n")
    expected = [line.removesuffix("\r") for line in expected]
    size = path.stat().st_size
    for chunk in (1, 7, 64, 1000, size, size + 5):
        texts, previous_end = [], 0
        for start, end in distributed._line_ranges(size, chunk):
            table = distributed._read_lines(str(path), start, end, "strict").to_pydict()
            for offset, line_end in zip(table["offset"], table["end"]):
                assert offset == previous_end and start <= offset < end
                previous_end = line_end
            texts += table["text"]
        assert texts == expected and previous_end == size, chunk


def test_alignment_refuses_lost_duplicated_or_reordered_lines(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("x\nyy\n")
    second.write_text("z\n")
    alignment = distributed._Alignment([first, second], [5, 2])
    alignment.check([0, 0, 1], [0, 2, 0], [2, 5, 2])
    alignment.finish()
    for files, offsets, ends in (([0, 0], [0, 0], [2, 2]),      # a line twice
                                 ([0, 1], [0, 0], [2, 2]),      # a line lost
                                 ([0, 0], [2, 0], [5, 2])):     # out of order
        with pytest.raises(distributed.DistributedError):
            checker = distributed._Alignment([first, second], [5, 2])
            checker.check(files, offsets, ends)
            checker.finish()


def test_cli_ray_output_is_the_single_process_output(cluster, tmp_path: Path,
                                                     marian: Path) -> None:
    source = write_corpus(tmp_path / "in.txt", 1500)
    single, spread = tmp_path / "single.txt", tmp_path / "ray.txt"
    result = runner.invoke(app, ["translate", "-m", str(marian), "-f", str(source),
                                 "-o", str(single), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["translate", "--ray", "--actors", "2", "-m", str(marian),
                                 "-f", str(source), "-o", str(spread)])
    assert result.exit_code == 0, result.output
    assert spread.read_bytes() == single.read_bytes()
    assert len(spread.read_text().splitlines()) == 1500
    assert "1500 lines" in result.output and "lines per worker" in result.output


def test_api_directories_globs_and_parquet(cluster, tmp_path: Path, marian: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    folder.mkdir()
    for index in range(3):
        write_corpus(folder / f"part{index}.txt", 120, seed=index)
    lines = []
    for index in range(3):
        data = (folder / f"part{index}.txt").read_bytes().removeprefix(b"\xef\xbb\xbf")
        lines += [line.removesuffix("\r") for line in data.decode().split("\n")[:-1]]
    translator = Translator(marian)
    expected = [translator.translate([line])[0].text if line.strip() else "" for line in lines]
    parts = [folder / f"part{index}.txt" for index in range(3)]
    parts = [part.resolve() for part in parts]
    assert distributed.input_files([folder]) == parts
    assert distributed.input_files([str(folder / "part*.txt")]) == parts
    out = tmp_path / "out.txt"
    summary = distributed.translate_dataset([folder], out, model=str(marian), actors=2,
                                            batch_lines=32, chunk_bytes=1500)
    assert out.read_text().split("\n")[:-1] == expected
    assert summary.lines == len(lines) == sum(summary.lines_per_worker.values())
    pq.write_table(pa.table({"sentence": lines + [None]}), tmp_path / "in.parquet")
    distributed.translate_dataset(tmp_path / "in.parquet", tmp_path / "out.parquet",
                                  model=str(marian), column="sentence", actors=2)
    table = pq.read_table(tmp_path / "out.parquet").to_pydict()
    # A null text is an empty line, not the word "None".
    assert table == {"sentence": lines + [""], "translation": expected + [""]}


def _actor_processes() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::") and b"TranslatorActor" in command:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the actor processes in /proc")
def test_a_worker_killed_mid_run_still_gives_the_whole_output(cluster, tmp_path: Path,
                                                              marian: Path) -> None:
    source = write_corpus(tmp_path / "in.txt", 600, seed=3)
    lines = [line.removesuffix("\r") for line in source.read_bytes().removeprefix(
        b"\xef\xbb\xbf").decode().split("\n")[:-1]]
    # What an actor computes, computed here: the LineTranslator's own function.
    reference = "".join(f"{text}\n" for text in
                        distributed.TranslatorLines(str(marian)).load()(lines))
    killed = []

    def kill_one_actor(done: int) -> None:
        if not killed and done >= 64:
            victims = _actor_processes()
            assert victims, "no translator actor process found"
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])

    out = tmp_path / "out.txt"
    summary = distributed.translate_dataset(source, out, model=str(marian), actors=2,
                                            batch_lines=32, chunk_bytes=4000,
                                            progress=kill_one_actor)
    assert killed
    assert out.read_text() == reference
    assert summary.lines == 600


def test_bad_utf8_is_named_or_replaced(cluster, tmp_path: Path, marian: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"a house.\nbad \xff byte\n")
    out = tmp_path / "out.txt"
    with pytest.raises(Exception, match=r"in\.txt: invalid UTF-8 in the line at byte 9"):
        distributed.translate_dataset(source, out, model=str(marian))
    assert not out.exists()
    distributed.translate_dataset(source, out, model=str(marian), errors="replace")
    assert len(out.read_text().splitlines()) == 2
    with pytest.raises(distributed.DistributedError, match="no such file"):
        distributed.translate_dataset(tmp_path / "missing*.txt", out, model=str(marian))


def test_an_output_directory_gets_one_file_per_input(cluster, tmp_path: Path,
                                                      marian: Path) -> None:
    """`-o DIR` (an existing directory; `DIR/` for the API): each input file's translation at
    its path below the inputs' common folder,
    byte-identical to `translate --file` of that file alone; an empty input gives an empty
    output, small files share batches, and an output that would replace its input is
    refused."""
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    inputs = [write_corpus(corpus / "a.txt", 40, seed=1), write_corpus(corpus / "sub" / "b.txt", 7,
                                                                        seed=2)]
    (corpus / "empty.txt").write_bytes(b"")
    inputs.append(corpus / "empty.txt")
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["translate", "--ray", "--actors", "2", "-m", str(marian),
                                 "-f", str(corpus), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    for source in inputs:
        single = tmp_path / f"single-{source.name}"
        alone = runner.invoke(app, ["translate", "-m", str(marian), "-f", str(source),
                                    "-o", str(single), "-q"])
        assert alone.exit_code == 0, alone.output
        assert (out / source.relative_to(corpus)).read_bytes() == single.read_bytes()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["a.txt", "empty.txt", "sub", "sub/b.txt"]
    api = tmp_path / "api"  # not yet a directory: the trailing "/" makes it one
    distributed.translate_dataset(corpus / "sub", f"{api}/", model=str(marian))
    assert (api / "b.txt").read_text().count("\n") == 7
    with pytest.raises(distributed.DistributedError, match="would replace it"):
        distributed.translate_dataset(corpus, corpus, model=str(marian))
    assert (corpus / "a.txt").read_bytes() == inputs[0].read_bytes()
