"""Rich views of models and of the machine: summaries and tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

import pytransformer
from pytransformer.cli.languages import bare
from pytransformer.cli.session import language_choice


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def model_summary(path: Path) -> dict[str, Any]:
    """What a model file holds (pytransformer.describe_model: metadata only, weights not read):
    name, languages, sizes and tensor dtypes."""
    info = pytransformer.describe_model(path)
    languages = language_choice(info)
    return {
        "path": str(path),
        "name": info.name,
        "source": info.source,
        "size_bytes": info.size_bytes,
        "target_languages": [bare(code) for code in languages.selectable],
        # NLLB-200 / M2M100: from any of target_languages into any other (--from required).
        "any_to_any": languages.needs_source,
        "source_language": (languages.sources[0] if languages.sources
                            and not languages.needs_source else None),
        "target_language": languages.targets[0] if languages.targets else None,
        "dtypes": info.tensor_dtypes,
        "d_model": info.d_model,
        "layers": [info.encoder_layers, info.decoder_layers],
        "vocab_sizes": [info.source_vocab_size, info.target_vocab_size],
        "tokenizer": info.tokenizer,
        "architecture": info.architecture,
        "heads": [info.decoder_heads, info.metadata.get("model.kv_heads", info.decoder_heads)],
        "context": info.max_positions,
    }


def _languages(summary: dict[str, Any]) -> str:
    if summary.get("architecture") == "llama":
        return "language model"
    targets = summary.get("target_languages") or []
    if summary.get("any_to_any"):
        return f"any ↔ any of {len(targets)}"
    if targets:
        return " ↔ ".join(targets) if len(targets) == 2 else "→ " + ", ".join(targets)
    source, target = summary.get("source_language"), summary.get("target_language")
    if source or target:
        return f"{source or '?'} → {target or '?'}"
    return "?"


def _dtypes(summary: dict[str, Any]) -> str:
    counts = summary["dtypes"]
    return ", ".join(f"{dtype} ×{count}" for dtype, count in sorted(counts.items()))


def models_table(found: list[dict[str, Any]]) -> Table:
    """The models found; `name` is what --model/-m accepts (a model in the user models
    directory, by its file name without .ptm), `-` for one given by path or the default."""
    table = Table(title="models", title_justify="left")
    for column in ("", "name", "languages", "size", "dtypes", "path"):
        table.add_column(column, overflow="fold")
    if not found:
        table.add_row("", "[dim]none found[/]", "", "", "", "")
    for entry in found:
        origin = "default" if entry.get("origin") == "default" else ""
        if "error" in entry:
            option = entry.get("model_option")
            table.add_row(origin, escape(option) if option else "[dim]-[/]", "[red]unreadable[/]",
                          "", f"[red]{escape(entry['error'])}[/]", escape(entry["path"]))
            continue
        option = entry.get("model_option")
        table.add_row(origin, escape(option) if option else "[dim]-[/]",
                      escape(_languages(entry)), human_size(entry["size_bytes"]),
                      _dtypes(entry), escape(entry["path"]))
    return table


def summary_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("file", escape(summary["path"]))
    table.add_row("size", human_size(summary["size_bytes"]))
    language_model = summary.get("architecture") == "llama"
    if not language_model:
        table.add_row("languages", escape(_languages(summary)))
    table.add_row("dtypes", _dtypes(summary))
    if summary.get("stored_as"):
        table.add_row("stored as", summary["stored_as"])
    if summary.get("d_model") and language_model:
        heads, kv_heads = summary["heads"]
        table.add_row("architecture", f"language model: d_model {summary['d_model']}, "
                      f"{summary['layers'][1]} layers, {heads} heads ({kv_heads} K/V), "
                      f"context {summary['context']}")
        table.add_row("vocabulary", f"{summary['vocab_sizes'][1]} ({summary.get('tokenizer')})")
    elif summary.get("d_model"):
        encoder, decoder = summary["layers"]
        table.add_row("architecture", f"d_model {summary['d_model']}, {encoder} encoder + "
                      f"{decoder} decoder layers")
        source_vocab, target_vocab = summary["vocab_sizes"]
        vocab = str(source_vocab) if source_vocab == target_vocab else \
            f"{source_vocab} source, {target_vocab} target"
        table.add_row("vocabulary", f"{vocab} ({summary.get('tokenizer')})")
    for key in ("name", "source", "converted_from"):
        if summary.get(key):
            table.add_row(key.replace("_", " "), escape(str(summary[key])))
    return table


def _system_rows(prefix: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in values.items():
        name = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, dict) and value and all(isinstance(v, bool)
                                                      for v in value.values()):
            value = [flag for flag, present in value.items() if present]  # e.g. CPU features
        elif isinstance(value, dict):
            rows += _system_rows(name + " ", value)
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(item) for item in value) or "none"
        rows.append((name, "-" if value is None else str(value)))
    return rows


def system_table(system: dict[str, Any]) -> Table:
    """pytransformer.info(): nested dictionaries (e.g. the CPU report) as prefixed rows."""
    table = Table(title="system", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in _system_rows("", system):
        table.add_row(name, escape(value))
    return table
