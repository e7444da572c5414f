"""Options shared by several commands."""

from __future__ import annotations

import typer

MODEL_OPTION = typer.Option(
    None, "--model", "-m",
    help="Model file (.ptm), or the name of one in the user models directory "
    "(see `pytransformer models`). Default: $PYTRANSFORMER_MODEL, else the bundled en<->zh "
    "model.")
THREADS_OPTION = typer.Option(
    0, "--threads", "-t", min=0, help="CPU threads for inference (0: automatic).")
DEVICE_OPTION = typer.Option(
    "cpu", "--device", help="cpu, cuda or cuda:N (docs/cuda.md).")
