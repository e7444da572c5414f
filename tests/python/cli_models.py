"""Model files for the CLI tests, written with the FORMAT helper's tiny_models."""

from __future__ import annotations

from pathlib import Path

from tiny_models import vocabulary, write_random_model

LANGUAGE_TOKENS = [">>en<<", ">>zh<<"]
# Pre-tokenized (tokenizer "none") bidirectional model: Latin pieces "▁w3".. and two Han pieces,
# so the CLI's script detection has both scripts to see.
BIDIRECTIONAL_VOCAB = vocabulary(40)[:-4] + ["你", "好"] + LANGUAGE_TOKENS
BIDIRECTIONAL_SEED = 2  # a seed whose en and zh outputs differ for the test inputs
# How long a test waits on a child process before calling it hung. Generous on purpose: CI
# machines are shared and a loaded one can take tens of seconds to start Python; a hang still
# fails, and no test asserts on wall-clock speed (that is the bench's job).
PATIENCE_SECONDS = 600


def write_bidirectional_model(path: Path) -> Path:
    write_random_model(path, seed=BIDIRECTIONAL_SEED, source_vocab_size=40,
                       target_vocab_size=40, target_languages=LANGUAGE_TOKENS, max_length=8,
                       extra={"vocab.source": BIDIRECTIONAL_VOCAB,
                              "vocab.target": BIDIRECTIONAL_VOCAB})
    return path


def write_endless_model(path: Path, max_length: int = 4000) -> Path:
    """A model that never ends a sentence by itself (EOS suppressed) and may generate
    `max_length` tokens, each costing a real decoder step: for interruption tests."""
    write_random_model(path, seed=5, d_model=256, heads=4, ffn_dim=1024,
                       max_positions=max_length + 64, max_length=max_length,
                       suppressed_ids=[0, 1], forced_eos=False, beam_size=1)
    return path
