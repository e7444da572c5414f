"""The CLI's Rich views without a model: the attention heatmap, sizes and the system table."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.console import Console

from pytransformer.cli.heatmap import SHADES, render_heatmap
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
    text = rendered(render_heatmap(source, ["a", "b"], weights, "narrow", 60), width=400)
    lines = text.splitlines()
    assert lines[1].startswith("0:▁piece0  1:▁piece1")  # a legend of the numbered columns
    assert lines[1].rstrip().endswith("29:▁piece29")
    assert lines[2].split() == [str(i) for i in range(30)]
    assert lines[3].split()[0] == "a" and lines[3].count(SHADES[-1]) == 60


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
