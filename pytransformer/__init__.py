"""pytransformer: exact, fast encoder-decoder Transformer translation from the terminal."""
