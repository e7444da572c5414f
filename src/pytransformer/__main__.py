"""`python -m pytransformer` runs the command line."""

from pytransformer.cli.main import main

if __name__ == "__main__":
    main()
