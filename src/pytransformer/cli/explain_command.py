"""`pytransformer explain`: translate one sentence and draw the decoder's cross-attention
(target pieces × source pieces) as a shaded heatmap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import typer

from pytransformer.cli.console import print_json, stdout_console
from pytransformer.cli.errors import CliError, print_warning, reports_errors
from pytransformer.cli.heatmap import render_heatmap, required_width
from pytransformer.cli.options import DEVICE_OPTION, MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import Session, Settings, describe_notes

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI loads this module for
    import numpy as np  # every command, and numpy alone costs ~0.15 s of start-up (issue 17)

ALL = "all"


def parse_choice(value: str | None, count: int, option: str, what: str,
                 default: int | None) -> int | None:
    """--layer / --head: a 1-based number up to `count`, or 'all' (None: the mean over all);
    not given: `default`. CliError for anything else."""
    if value is None:
        return default
    if value.strip().lower() == ALL:
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= count:
        raise CliError(f"{option} {value}: the model has {count} {what} (give 1 to {count}, "
                       f"or '{ALL}' for their mean)")
    return int(text)


def select_weights(weights: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """weights [layers, heads, T, S] -> [T, S]: one layer (1-based) or the mean over layers,
    then one head or the mean over heads. A mean of attention distributions is one too."""
    chosen = weights[layer - 1] if layer is not None else weights.mean(axis=0)
    return chosen[head - 1] if head is not None else chosen.mean(axis=0)


def describe_choice(layer: int | None, head: int | None, layers: int, heads: int) -> str:
    where = f"layer {layer} of {layers}" if layer is not None else f"mean of the {layers} layers"
    which = f"head {head} of {heads}" if head is not None else f"mean of the {heads} heads"
    return f"cross-attention, {where}, {which}"


@reports_errors
def explain(
    text: list[str] = typer.Argument(
        ..., metavar="TEXT", help="The text to translate and explain, as one model input "
        "(several words are joined by spaces)."),
    layer: Optional[str] = typer.Option(
        None, "--layer", "-l", metavar="N|all",
        help="Decoder layer to show, counted from 1, or 'all' for the mean over the layers "
        "(default: the last layer)."),
    head: Optional[str] = typer.Option(
        None, "--head", metavar="N|all",
        help="Attention head to show, counted from 1 (default 'all': the mean over the "
        "heads)."),
    source_language: Optional[str] = typer.Option(
        None, "--from", help="Source language (for models with several directions; "
        "required by NLLB-200 / M2M100 models)."),
    target_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: as for translate)."),
    beam: Optional[int] = typer.Option(
        None, "--beam", "-b", min=1, help="Beam size (default: the model's)."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=1, help="Maximum generated tokens."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: the pieces, the translation and the weights shown."),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
    device: str = DEVICE_OPTION,
) -> None:
    """Translate one sentence and show where the decoder looked in the source for each target
    piece: its cross-attention as a heatmap (rows: target pieces, columns: source pieces).
    """
    sentence = " ".join(text)
    if not sentence.strip():
        raise CliError("no text to explain")
    settings = Settings(source_language, target_language, beam, 1, max_length)
    session = Session(model, threads, device)
    session.check(settings)
    for message in describe_notes(session.notes([sentence], settings), single=True,
                                  copied=False):
        print_warning(message)
    config = session.translator.metadata
    layers, heads = int(config["model.decoder_layers"]), int(config["model.decoder_heads"])
    chosen_layer = parse_choice(layer, layers, "--layer", "decoder layers", default=layers)
    chosen_head = parse_choice(head, heads, "--head", "heads per layer", default=None)

    target = session.languages.target_for(sentence, source_language, target_language)
    options: dict[str, Any] = {"target_language": target} if target is not None else {}
    options.update(session.source_options(settings, sentence))
    if beam is not None:
        options["beam_size"] = beam
    if max_length is not None:
        options["max_length"] = max_length
    attention = session.translator.attention(sentence, **options)
    shown = select_weights(attention.weights, chosen_layer, chosen_head)

    if as_json:
        print_json({
            "model": str(session.model_path),
            "source": sentence,
            "target_language": target,
            "translation": attention.text,
            "source_pieces": attention.source_pieces,
            "target_pieces": attention.target_pieces,
            "layer": chosen_layer if chosen_layer is not None else ALL,
            "head": chosen_head if chosen_head is not None else ALL,
            "shape": list(attention.weights.shape),
            "weights": [[round(float(w), 6) for w in row] for row in shown],
        })
        return
    console = stdout_console()
    needed = required_width(attention.source_pieces, attention.target_pieces)
    if needed > console.width:
        raise CliError(f"the heatmap of this sentence needs {needed} columns and the terminal "
                       f"has {console.width}: widen it (or set COLUMNS), or use --json")
    console.print(attention.text, markup=False, highlight=False)
    console.print(render_heatmap(attention.source_pieces, attention.target_pieces, shown,
                                 describe_choice(chosen_layer, chosen_head, layers, heads),
                                 console.width))
