"""The `pytransformer` command line (Typer app and Rich views); entry point: main.main()."""
