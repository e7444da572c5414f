"""The cross-attention heatmap of `explain`: target pieces (rows) × source pieces (columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from rich.text import Text

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI loads this module for
    import numpy as np  # every command, and numpy alone costs ~0.15 s of start-up (issue 17)

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


# A target piece's row label is cut to at most this many cells, and when space is short to no
# fewer than MIN_ROW_LABEL (or the longest piece, if shorter).
MAX_ROW_LABEL = 16
MIN_ROW_LABEL = 6
# A named column is as wide as its piece, within these bounds.
MIN_NAMED_COLUMN = 2
MAX_NAMED_COLUMN = 8


@dataclass(frozen=True)
class _Layout:
    row_label_width: int
    cell_width: int
    use_names: bool  # columns labelled by the pieces (else by index, with a legend)
    gap: int = 1  # blank cells between columns; 0: a compact grid, indices written downwards

    def width(self, columns: int) -> int:
        return self.row_label_width + 1 + columns * (self.cell_width + self.gap)


def _layouts(source_pieces: Sequence[str], target_pieces: Sequence[str]) -> list[_Layout]:
    """The layouts to try, most readable first; the last is the narrowest: one cell per
    column, no gaps, the column indices written downwards (tens above units)."""
    label = min(max([cell_len(p) for p in target_pieces] + [4]), MAX_ROW_LABEL)
    named = min(max([cell_len(p) for p in source_pieces] + [MIN_NAMED_COLUMN]),
                MAX_NAMED_COLUMN)
    digits = len(str(max(len(source_pieces) - 1, 0)))
    narrow_label = min(label, MIN_ROW_LABEL)
    return [_Layout(label, named, True), _Layout(label, max(2, digits), False),
            _Layout(narrow_label, max(2, digits), False),
            _Layout(narrow_label, 1, False, gap=0)]


def _choose_layout(source_pieces: Sequence[str], target_pieces: Sequence[str],
                   max_width: int) -> _Layout | None:
    for layout in _layouts(source_pieces, target_pieces):
        if layout.width(len(source_pieces)) <= max_width:
            return layout
    return None


def required_width(source_pieces: Sequence[str], target_pieces: Sequence[str]) -> int:
    """The fewest terminal columns the heatmap's rows need."""
    return _layouts(source_pieces, target_pieces)[-1].width(len(source_pieces))


def _legend(source_pieces: Sequence[str], max_width: int) -> str:
    """`0:▁The  1:▁cat ...` in lines of at most max_width cells, never splitting an entry."""
    lines: list[str] = []
    current = ""
    for i, piece in enumerate(source_pieces):
        entry = f"{i}:{piece}"
        candidate = f"{current}  {entry}" if current else entry
        if current and cell_len(candidate) > max_width:
            lines.append(current)
            candidate = entry
        current = candidate
    if current:
        lines.append(current)
    return "\n".join(lines)


def render_heatmap(source_pieces: Sequence[str], target_pieces: Sequence[str],
                   weights: np.ndarray, title: str, max_width: int) -> Text:
    """weights: [len(target_pieces), len(source_pieces)] attention probabilities (rows sum to 1
    over the source). Shading is relative to the largest weight shown. Columns are labelled by
    the source pieces when they fit in `max_width` cells, else by index with a legend; row
    labels are cut shorter when needed. ValueError when even that is wider than max_width
    (required_width() says how wide it must be)."""
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(target_pieces), len(source_pieces)):
        raise ValueError(f"attention shape {weights.shape} does not match "
                         f"{len(target_pieces)} target × {len(source_pieces)} source pieces")
    layout = _choose_layout(source_pieces, target_pieces, max_width)
    if layout is None:
        raise ValueError(f"the heatmap needs {required_width(source_pieces, target_pieces)} "
                         f"columns, {max_width} are available")
    peak = float(weights.max()) if weights.size else 0.0
    scaled = weights / peak if peak > 0 else weights
    row_label_width, cell_width = layout.row_label_width, layout.cell_width

    out = Text()
    out.append(title + "\n", style="bold")
    if not layout.use_names:
        out.append(_legend(source_pieces, max_width) + "\n", style="dim")
    gap = " " * layout.gap
    if layout.gap:
        out.append(" " * (row_label_width + 1))
        for i, piece in enumerate(source_pieces):
            out.append(_fit(piece if layout.use_names else str(i), cell_width) + gap,
                       style="cyan")
        out.append("\n")
    else:  # one character per column: each index written downwards
        digits = len(str(max(len(source_pieces) - 1, 0)))
        for position in range(digits):
            out.append(" " * (row_label_width + 1))
            out.append("".join(str(i).rjust(digits)[position]
                               for i in range(len(source_pieces))), style="cyan")
            out.append("\n")
    for row, piece in enumerate(target_pieces):
        out.append(_fit(piece, row_label_width) + " ", style="green")
        for column in range(len(source_pieces)):
            value = float(scaled[row, column])
            level = min(int(value * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)
            out.append(SHADES[level] * cell_width, style=_shade_style(value))
            out.append(gap)
        out.append("\n")
    out.append(f"shading relative to the largest weight ({peak:.3f}): "
               f"'{SHADES[1]}' low … '{SHADES[-1]}' high", style="dim")
    return out
