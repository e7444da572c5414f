"""Shared pytest fixtures and markers for the Python test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
MARIAN_FIXTURES = DATA / "marian"
# ../shared beside the repository (data sets and peer models, see its README).
SHARED = REPO.parent / "shared"
AREN_MODEL = SHARED / "peer-models" / "ctranslate2-aren-transliteration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes minutes (live comparisons on full-size models); run in CI")


@pytest.fixture(scope="session")
def converted_marian(tmp_path_factory: pytest.TempPathFactory):
    """Converts a tests/data/marian/<variant> fixture once per session: call with the variant
    name, get the .ptm path."""
    from pytransformer.convert import convert_marian

    directory = tmp_path_factory.mktemp("marian")
    cache: dict[str, Path] = {}

    def convert(variant: str) -> Path:
        if variant not in cache:
            cache[variant] = convert_marian(MARIAN_FIXTURES / variant,
                                            directory / f"{variant}.ptm")
        return cache[variant]

    return convert


@pytest.fixture(scope="session")
def marian(converted_marian) -> Path:
    """The converted "base" Marian fixture (post-norm, swish, tied, SentencePiece)."""
    return converted_marian("base")


@pytest.fixture(scope="session")
def bidirectional(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny two-language model with >>en<< / >>zh<< target tokens (cli_models.py)."""
    from cli_models import write_bidirectional_model

    return write_bidirectional_model(tmp_path_factory.mktemp("bi") / "bi.ptm")

