"""`pytransformer convert`: a translation model (Marian / OPUS-MT, M2M100 / NLLB-200, Marian's
own .npz / .bin, CTranslate2, argos-translate) or a language model (GGUF, Hugging Face Llama /
Qwen2 / SmolLM, llama2.c) -> a pytransformer model file."""

from __future__ import annotations

import tempfile
import time
import zipfile
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

import pytransformer
from pytransformer.cli.console import print_json, stderr_console, stdout_console
from pytransformer.cli.errors import CliError, reports_errors
from pytransformer.cli.views import model_summary, summary_table
from pytransformer.model_files import MODEL_SUFFIX, is_gguf, user_models_dir


class Quantization(str, Enum):
    int8 = "int8"
    int8_all = "int8_all"
    f16 = "f16"
    bf16 = "bf16"
    q8_0 = "q8_0"
    q4_1 = "q4_1"
    gguf = "gguf"


_STORED_AS = {
    None: "f32",
    "int8": "int8 decoder feed-forward and output projection, f16 other matrices, f32 vectors "
            "and per-row scales",
    "int8_all": "int8 weight matrices, f32 vectors and per-row scales",
    "q8_0": "q8_0 weight matrices (f16 where the columns are not a multiple of 32), f32 "
            "vectors",
    "q4_1": "q4_1 weight matrices (f16 where the columns are not a multiple of 32), f32 "
            "vectors",
    "gguf": "the GGUF file's Q8_0 and Q4_1 matrices unchanged (q8_0, q4_1), f16 other "
            "matrices, f32 vectors",
}


class SourceKind(str, Enum):
    auto = "auto"
    marian = "marian"
    marian_native = "marian-native"
    m2m100 = "m2m100"
    ctranslate2 = "ctranslate2"
    llama_hf = "llama-hf"
    gguf = "gguf"
    llama2c = "llama2c"


def _detect_file(source: Path) -> str:
    """The kind of a model given as one file: a GGUF file, a Marian model (.npz, or .bin in
    Marian's binary format), a llama2.c checkpoint (.bin), or an argos-translate package
    (.argosmodel, a zip)."""
    from pytransformer.convert.marian_native import is_marian_model_file

    if is_gguf(source):
        return "gguf"
    if source.suffix in (".npz", ".bin") and is_marian_model_file(source):
        return "marian_native"
    if source.suffix == ".argosmodel" or zipfile.is_zipfile(source):
        return "argos"
    if source.suffix == ".bin":
        return "llama2c"
    raise CliError(f"{source}: not a GGUF file, a Marian model (.npz, .bin), a llama2.c "
                   "checkpoint (.bin) nor an .argosmodel package (zip)")


def _unpack_argos(archive: Path, into: Path) -> Path:
    """An .argosmodel file is a zip holding one package directory: unpacks it, returns it."""
    try:
        with zipfile.ZipFile(archive) as package:
            package.extractall(into)
    except zipfile.BadZipFile:
        raise CliError(f"{archive}: not a directory, nor an .argosmodel package (zip)") from None
    entries = [path for path in into.iterdir() if path.is_dir()]
    return entries[0] if len(entries) == 1 else into


def _default_output(source: Path) -> Path:
    name = source.name
    for suffix in (".argosmodel", ".gguf", ".bin", ".npz"):
        name = name.removesuffix(suffix)
    return user_models_dir() / (name + MODEL_SUFFIX)


@reports_errors
def convert(
    source: Path = typer.Argument(
        ..., help="A translation model: a Hugging Face Marian / OPUS-MT or M2M100 / "
        "NLLB-200 directory, a Marian "
        "model (.npz or .bin file, or its directory with vocabularies and decoder.yml), a "
        "CTranslate2 model directory or an argos-translate package (directory or .argosmodel "
        "file); or a language model: a GGUF file, a Hugging Face Llama / Qwen2 / SmolLM "
        "directory, or a llama2.c checkpoint (.bin, with its tok*.bin beside it)."),
    output: Optional[Path] = typer.Argument(
        None, help="The model file to write. Default: NAME.ptm in the user models directory "
        "(see `pytransformer models`)."),
    quantize: Optional[Quantization] = typer.Option(
        None, "--quantize", "-q", help="Store the weight matrices as f16 or bf16 "
        "instead of f32; int8: the decoder's feed-forward and output projection as int8 "
        "(per-row scales), the other matrices as f16; int8_all: every matrix as int8; q8_0, "
        "q4_1: every matrix in llama.cpp's blocks of 32 (f16 where its columns are not a "
        "multiple of 32); gguf (GGUF files only): the file's Q8_0 and Q4_1 matrices as they "
        "are, the other matrices as f16."),
    kind: SourceKind = typer.Option(
        SourceKind.auto, "--from-format", help="The source format (default: detected)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Convert a translation model (Marian / OPUS-MT, M2M100 / NLLB-200, Marian .npz / .bin,
    CTranslate2, argos-translate) or a language model (GGUF, Hugging Face Llama / Qwen2,
    llama2.c) into a pytransformer model file."""
    if not source.exists():
        raise CliError(f"no such file or directory: {source}")
    target = output if output is not None else _default_output(source)
    if target.exists() and not force:
        raise CliError(f"{target} exists (use --force to overwrite it)")
    target.parent.mkdir(parents=True, exist_ok=True)

    from pytransformer.convert import detect_model_format  # not loaded by other commands

    with ExitStack() as stack:
        directory = source
        if kind is not SourceKind.auto:
            detected = kind.value.replace("-", "_")
        elif source.is_file():
            detected = _detect_file(source)
        else:
            detected = detect_model_format(directory)
        if detected == "argos" and source.is_file():
            unpacked = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            directory = _unpack_argos(source, unpacked)
        converter = {"marian": pytransformer.convert_marian,
                     "marian_native": pytransformer.convert_marian_native,
                     "m2m100": pytransformer.convert_m2m100,
                     "llama_hf": pytransformer.convert_llama_hf,
                     "gguf": pytransformer.convert_gguf,
                     "llama2c": pytransformer.convert_llama2c}.get(
                         detected, pytransformer.convert_ctranslate2)
        quantization = quantize.value if quantize is not None else None
        if quantization == "gguf" and detected != "gguf":
            raise CliError(f"--quantize gguf keeps a GGUF file's Q8_0 and Q4_1 blocks: "
                           f"{source} is a {detected} model, not a GGUF file")
        started = time.perf_counter()
        with stderr_console().status(escape(f"converting {detected} model {source} → {target}")):
            converter(str(directory), str(target), quantize=quantization)
        seconds = time.perf_counter() - started

    summary = model_summary(target)
    summary["converted_from"] = detected
    # What the writer stores for each choice (docs/format.md): vectors always stay f32.
    summary["stored_as"] = _STORED_AS.get(quantization,
                                          f"{quantization} weight matrices, f32 vectors")
    summary["seconds"] = round(seconds, 3)
    if as_json:
        print_json(summary)
    else:
        stdout_console().print(summary_table(summary, title="converted"))
