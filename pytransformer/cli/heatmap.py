"""The cross-attention heatmap of `explain`: target pieces (rows) × source pieces (columns)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from rich.text import Text

# Shade characters from no attention to full attention: readable without colour too.
SHADES = " ·░▒▓█"
_COLD = (35, 35, 60)
_HOT = (255, 200, 40)


def _shade_style(weight: float) -> Style:
    rgb = tuple(int(c + (h - c) * weight) for c, h in zip(_COLD, _HOT))
    return Style(color=Color.from_rgb(*rgb))


def _fit(label: str, width: int) -> str:
    """label cut (with …) and padded to exactly `width` terminal cells."""
    if cell_len(label) > width:
        while label and cell_len(label) > width - 1:
            label = label[:-1]
        label += "…"
    return label + " " * (width - cell_len(label))


def render_heatmap(source_pieces: Sequence[str], target_pieces: Sequence[str],
                   weights: np.ndarray, title: str, max_width: int) -> Text:
    """weights: [len(target_pieces), len(source_pieces)] attention probabilities (rows sum to 1
    over the source). Shading is relative to the largest weight shown. Columns are labelled by
    the source pieces when they fit in `max_width` cells, else by index with a legend."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(target_pieces), len(source_pieces)):
        raise ValueError(f"attention shape {weights.shape} does not match "
                         f"{len(target_pieces)} target × {len(source_pieces)} source pieces")
    peak = float(weights.max()) if weights.size else 0.0
    scaled = weights / peak if peak > 0 else weights
    row_label_width = min(max([cell_len(p) for p in target_pieces] + [4]), 16)
    named_width = min(max([cell_len(p) for p in source_pieces] + [2]), 8)
    use_names = row_label_width + 1 + len(source_pieces) * (named_width + 1) <= max_width
    cell_width = named_width if use_names else max(2, len(str(len(source_pieces) - 1)))

    out = Text()
    out.append(title + "\n", style="bold")
    if not use_names:
        legend = "  ".join(f"{i}:{piece}" for i, piece in enumerate(source_pieces))
        out.append(legend + "\n", style="dim")
    out.append(" " * (row_label_width + 1))
    for i, piece in enumerate(source_pieces):
        out.append(_fit(piece if use_names else str(i), cell_width) + " ", style="cyan")
    out.append("\n")
    for row, piece in enumerate(target_pieces):
        out.append(_fit(piece, row_label_width) + " ", style="green")
        for column in range(len(source_pieces)):
            value = float(scaled[row, column])
            level = min(int(value * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)
            out.append(SHADES[level] * cell_width, style=_shade_style(value))
            out.append(" ")
        out.append("\n")
    out.append(f"shading relative to the largest weight ({peak:.3f}): "
               f"'{SHADES[1]}' low … '{SHADES[-1]}' high", style="dim")
    return out
