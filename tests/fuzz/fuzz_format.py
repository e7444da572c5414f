"""Mutation fuzzing of the model file reader.

Starts from small valid files (every dtype, optional tensors present) and mutates them: random
byte flips (mostly in the header region), truncations at and around every field boundary,
hostile values (0, 2^31, 2^32 - 1, 2^60, 2^63, 2^64 - 1, the file size...) written into every
u8/u32/u64 field of the header, metadata and tensor directory, and inserted or deleted bytes.
Every open must either succeed (then every accessor is exercised) or raise ModelFormatError:
any other exception is a failure, and a crash ends the process.

    python tests/fuzz/fuzz_format.py --iterations 100000 [--seed 1]
    python tests/fuzz/fuzz_format.py --iterations 20000 --driver /tmp/format_fuzz_asan
        (also feeds every mutated file to a sanitizer build of the C++ reader, see
        tests/fuzz/build_asan_driver.sh)

tests/python/test_format_fuzz.py runs a few thousand iterations of the same in the test suite.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from pytransformer import _core  # noqa: E402
from pytransformer.format import ModelFormatError  # noqa: E402
from tiny_models import FileLayout, file_layout, write_random_model  # noqa: E402

SEED_MODELS = [
    dict(quantize=None),
    dict(quantize="int8", output_bias=True, embedding_norm=True),
    dict(quantize="f16", pre_norm=True, linear_bias=False),
    dict(quantize="bf16", separate_vocabs=True, target_vocab_size=7,
         target_languages=["\u2581w4"]),
]
SMALL = dict(d_model=8, heads=2, layers=1, ffn_dim=8, source_vocab_size=6, target_vocab_size=6)

HOSTILE_U64 = [0, 1, 2, 63, 64, 65, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**60, 2**62,
               2**63 - 1, 2**63, 2**64 - 64, 2**64 - 1]
HOSTILE_U32 = [0, 1, 255, 256, 257, 2**16, 2**31 - 1, 2**31, 2**32 - 1]


@dataclass
class Seed:
    data: bytes
    layout: FileLayout
    fields: list[tuple[int, int]]  # (offset, width in bytes) of every integer field
    boundaries: list[int]  # offsets where a field or region starts or ends


def make_seeds(directory: Path) -> list[Seed]:
    seeds = []
    for i, options in enumerate(SEED_MODELS):
        path = directory / f"seed{i}.ptm"
        overrides = {**SMALL, **options}
        write_random_model(path, seed=i, **overrides)
        data = path.read_bytes()
        layout = file_layout(data)
        fields = [(8, 4), (12, 4), (16, 8), (24, 8), (32, 8), (40, 8)]
        boundaries = [0, 8, 12, 16, 24, 32, 40, 48, 64, layout.data_offset, len(data)]
        for entry in layout.metadata:
            fields += [(entry.start, 4), (entry.type_offset, 1)]
            if data[entry.type_offset] == 1:
                fields.append((entry.value_offset, 1))
            else:
                fields.append((entry.value_offset, 8))
            if data[entry.type_offset] == 7 and entry.end > entry.value_offset + 8:
                fields.append((entry.value_offset + 8, 8))  # first element's length
            boundaries += [entry.start, entry.type_offset, entry.value_offset, entry.end]
        for tensor in layout.tensors:
            fields += [(tensor.start, 4), (tensor.dtype_offset, 1), (tensor.rank_offset, 1),
                       (tensor.offset_offset, 8), (tensor.size_offset, 8)]
            fields += [(d, 8) for d in range(tensor.dims_offset, tensor.offset_offset, 8)]
            boundaries += [tensor.start, tensor.dtype_offset, tensor.dims_offset,
                           tensor.offset_offset, tensor.end,
                           layout.data_offset + tensor.data_offset,
                           layout.data_offset + tensor.data_offset + tensor.size]
        seeds.append(Seed(data, layout, fields, sorted(set(boundaries))))
    return seeds


def _hostile_value(rng: random.Random, width: int, seed: Seed, current: int) -> int:
    if width == 1:
        return rng.randrange(256)
    if width == 4:
        choices = HOSTILE_U32 + [current + rng.randint(-3, 3) & 0xFFFFFFFF]
        return rng.choice(choices) if rng.random() < 0.9 else rng.getrandbits(32)
    size, data_offset = len(seed.data), seed.layout.data_offset
    choices = HOSTILE_U64 + [size, size - data_offset, data_offset, size + 64,
                             (current + rng.choice([-64, -8, -1, 1, 8, 64])) % 2**64]
    return rng.choice(choices) if rng.random() < 0.9 else rng.getrandbits(64)


def _flip(rng: random.Random, data: bytearray, seed: Seed) -> None:
    header_end = min(seed.layout.data_offset, len(data))
    for _ in range(rng.randint(1, 8)):
        limit = header_end if rng.random() < 0.8 else len(data)
        if limit == 0:
            return
        position = rng.randrange(limit)
        if rng.random() < 0.5:
            data[position] ^= 1 << rng.randrange(8)
        else:
            data[position] = rng.randrange(256)


def _truncate(rng: random.Random, data: bytearray, seed: Seed) -> None:
    if rng.random() < 0.7:
        cut = rng.choice(seed.boundaries) + rng.randint(-2, 2)
    else:
        cut = rng.randrange(len(data) + 1)
    del data[max(0, min(cut, len(data))):]


def _hostile_field(rng: random.Random, data: bytearray, seed: Seed) -> None:
    offset, width = rng.choice(seed.fields)
    if offset + width > len(data):
        return
    current = int.from_bytes(data[offset:offset + width], "little")
    value = _hostile_value(rng, width, seed, current)
    data[offset:offset + width] = value.to_bytes(width, "little")


def _splice(rng: random.Random, data: bytearray, seed: Seed) -> None:
    position = rng.randrange(min(seed.layout.data_offset, len(data)) + 1)
    if rng.random() < 0.5:
        data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        del data[position:position + rng.randint(1, 16)]


STRATEGIES = [(_flip, 30), (_truncate, 15), (_hostile_field, 45), (_splice, 10)]


def mutate(rng: random.Random, seed: Seed) -> bytes:
    data = bytearray(seed.data)
    strategies, weights = zip(*STRATEGIES)
    for _ in range(1 if rng.random() < 0.85 else 2):
        rng.choices(strategies, weights)[0](rng, data, seed)
    return bytes(data)


def exercise(path: Path) -> str:
    """'ok' if the file opens (and every accessor works), else the error's problem text.

    Raises anything but ModelFormatError (a failure of the reader)."""
    try:
        model_file = _core.ModelFile(path)
    except ModelFormatError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        return message[len(f"{path}: "):]
    assert model_file.format_version == 1
    model_file.metadata
    for name in model_file.tensor_names():
        model_file.tensor_info(name)
        model_file.tensor_offset(name)
        model_file.tensor(name)
        model_file.tensor(name, dequantize=False)
    return "ok"


def problem_kind(message: str) -> str:
    """The message with numbers and quoted names removed, to count kinds of rejection."""
    message = re.sub(r"'[^']*'", "'…'", message)
    return re.sub(r"\d+", "N", message)[:90]


def run(iterations: int, seed: int, directory: Path, driver: str | None = None,
        progress: bool = False) -> collections.Counter:
    rng = random.Random(seed)
    seeds = make_seeds(directory)
    outcomes: collections.Counter = collections.Counter()
    batch: list[Path] = []
    batch_opened = 0
    path = directory / "mutant.ptm"
    start = time.monotonic()
    for i in range(iterations):
        data = mutate(rng, rng.choice(seeds))
        if driver:
            path = directory / f"mutant{len(batch)}.ptm"
            batch.append(path)
        path.write_bytes(data)
        outcome = exercise(path)
        outcomes["ok" if outcome == "ok" else problem_kind(outcome)] += 1
        batch_opened += outcome == "ok"
        if driver and (len(batch) == 1000 or i == iterations - 1):
            _run_driver(driver, batch, batch_opened)
            batch.clear()
            batch_opened = 0
        if progress and (i + 1) % 10000 == 0:
            print(f"{i + 1} iterations, {time.monotonic() - start:.0f} s", file=sys.stderr)
    return outcomes


def _run_driver(driver: str, paths: list[Path], expected_opened: int) -> None:
    """Runs the sanitizer build on the batch; it must agree with the extension on every file."""
    result = subprocess.run([driver, *map(str, paths)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sanitizer driver failed ({result.returncode}):\n{result.stderr[-4000:]}")
    opened = int(result.stdout.split()[0])
    if opened != expected_opened:
        raise RuntimeError(f"sanitizer driver opened {opened} files, the extension {expected_opened}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--driver", help="sanitizer build of tests/fuzz/format_fuzz_driver.cpp")
    arguments = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-format-") as directory:
        outcomes = run(arguments.iterations, arguments.seed, Path(directory), arguments.driver,
                       progress=True)
    elapsed = time.monotonic() - start
    print(f"{arguments.iterations} iterations in {elapsed:.0f} s: {outcomes['ok']} opened, "
          f"{arguments.iterations - outcomes['ok']} rejected with ModelFormatError, "
          f"no other exception{' (sanitizer driver clean)' if arguments.driver else ''}")
    print(f"{len(outcomes) - 1} kinds of rejection; most common:")
    for kind, count in outcomes.most_common(25):
        print(f"{count:8d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
