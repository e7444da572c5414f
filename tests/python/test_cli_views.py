"""The CLI's Rich views without a model: the attention heatmap, sizes and the system table."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.console import Console

from pytransformer.cli.heatmap import SHADES, render_heatmap, required_width
from pytransformer.cli.views import human_size, system_table


def rendered(renderable, width: int = 120) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_heatmap_shades_rows_by_weight() -> None:
    source = ["▁Hello", "▁world", "</s>"]
    target = ["▁你好", "世界", "</s>"]
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.6]])
    text = rendered(render_heatmap(source, target, weights, "mean of layers and heads", 120))
    lines = text.splitlines()
    assert lines[0] == "mean of layers and heads"
    assert lines[1].split() == source  # column labels fit: the pieces themselves
    first = lines[2]
    assert first.startswith("▁你好") and SHADES[-1] * 6 in first  # full weight: darkest
    assert first.count(SHADES[-1]) == 6
    assert SHADES[-1] not in lines[3] and SHADES[3] * 6 in lines[3]  # 0.5 of the peak
    assert "largest weight (1.000)" in lines[-1]


def test_heatmap_falls_back_to_numbered_columns_when_narrow() -> None:
    source = [f"▁piece{i}" for i in range(30)]
    weights = np.full((2, 30), 1 / 30)
    text = rendered(render_heatmap(source, ["a", "b"], weights, "narrow", 100), width=400)
    lines = text.splitlines()
    # A legend of the numbered columns, in lines that fit, no entry split.
    legend = lines[1:lines.index(next(line for line in lines if line.startswith("     0")))]
    assert legend[0].startswith("0:▁piece0  1:▁piece1")
    assert all(len(line.rstrip()) <= 100 for line in legend)
    assert "  ".join(line.strip() for line in legend).split("  ") == [
        f"{i}:▁piece{i}" for i in range(30)]
    header = lines[1 + len(legend)]
    assert header.split() == [str(i) for i in range(30)]
    row = lines[2 + len(legend)]
    assert row.split()[0] == "a" and row.count(SHADES[-1]) == 60


@pytest.mark.parametrize("width", [40, 60, 80])
def test_heatmap_fits_the_width_or_says_how_wide_it_must_be(width: int) -> None:
    """Every line fits `width` columns (row labels and cells narrowed as needed), so nothing
    wraps into a garbled grid; what cannot fit is refused with the width it needs."""
    source = ["▁Hello", "▁world", ",", "▁how", "▁are", "▁you", "?", "</s>"]
    target = ["▁comment_allez", "-vous", "▁le", "▁monde", "?", "</s>"]
    weights = np.random.default_rng(0).dirichlet(np.ones(len(source)), size=len(target))
    needed = required_width(source, target)
    assert needed <= 40
    text = rendered(render_heatmap(source, target, weights, "t", width), width=width)
    grid = text.splitlines()[1:-1]  # between the title and the shading note
    assert all(len(line.rstrip()) <= width for line in grid)
    assert sum(1 for line in grid if line.rstrip().endswith(tuple(SHADES[1:]))) >= 1
    many = [f"▁p{i}" for i in range(100)]
    wide = required_width(many, target)
    assert wide == 6 + 1 + 100  # short row labels, one cell per column
    with pytest.raises(ValueError, match=f"needs {wide} columns, 80 are available"):
        render_heatmap(many, target, np.full((len(target), 100), 1 / 100), "t", 80)


def test_the_narrowest_heatmap_writes_column_indices_downwards() -> None:
    source = [f"▁p{i}" for i in range(12)]
    weights = np.zeros((1, 12))
    weights[0, 11] = 1.0
    lines = rendered(render_heatmap(source, ["▁a_long_piece"], weights, "t", 20),
                     width=20).splitlines()
    grid = lines[lines.index(next(line for line in lines if line.strip() == "11")):]
    assert grid[0] == " " * 7 + " " * 10 + "11"  # tens
    assert grid[1] == " " * 7 + "012345678901"  # units
    assert grid[2] == "▁a_lo… " + " " * 11 + SHADES[-1]


def test_heatmap_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match 2 target × 3 source"):
        render_heatmap(["a", "b", "c"], ["x", "y"], np.zeros((3, 2)), "t", 80)


def test_sizes_and_system_rows() -> None:
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KB"
    assert human_size(3 * 1024**3) == "3.0 GB"
    text = rendered(system_table({"version": "1", "cpu": {
        "features": {"avx2": True, "fma": True, "neon": False},
        "supported_isas": ["scalar", "avx2"], "selected_isa": "avx2", "isa_error": None}}))
    assert re.search(r"cpu features\s+avx2, fma *$", text, re.MULTILINE)
    assert re.search(r"cpu supported isas\s+scalar, avx2 *$", text, re.MULTILINE)
    assert re.search(r"cpu selected isa\s+avx2 *$", text, re.MULTILINE)
    assert re.search(r"cpu isa error\s+- *$", text, re.MULTILINE)
