"""The decode loop makes no heap allocation per step: the KV cache and every scratch buffer are
sized once per batch (greedy, sampling, and beam search in both conventions).

How it is measured: _core replaces operator new, in every form, by a version that counts its
calls before calling malloc (csrc/python/bind_heap_allocations.cpp), and exports nothing but
its Python entry point, so the replacement serves the calls of _core's own code (the whole C++
core is linked into it) and no other library's. _core._heap_allocations() reads the count.

A generate() call allocates a fixed number of blocks per batch: encoder activations, the cache,
the search's buffers, the results. Each decoder step must add none. The same batch is decoded
twice with EOS forbidden until max_length (min_length = max_length, forced_eos off, as the
benchmark does), so every hypothesis runs exactly SHORT, then LONG steps: any allocation made
per step would make the second count larger by (LONG - SHORT) times that many. The results hold
more tokens in the long run, but each hypothesis's token list is still one block (vectors
reserved to max_length), so the two counts must be equal. A first run at LONG comes before
both: per-thread buffers (the attention kernels' scores, the processors' scratch) are sized on
first use by the longest sequence seen so far and kept, so they only grow during that run.

Not seen by the counter: blocks allocated inside libstdc++.so itself (such as a std::string's
out-of-line growth) and direct malloc calls; Python objects are not counted either.
"""

from __future__ import annotations

import pytest

from pytransformer import _core
from tiny_models import write_random_model

SHORT, LONG = 8, 40  # decoder steps; the tiny model's max_positions is 64
SOURCES = [[5, 9, 3, 1], [7, 1], [4, 4, 8, 12, 6, 1]]  # ids < 30, ending with EOS (1)

SEARCHES = {
    "greedy": {"beam_size": 1},
    "sampling": {"beam_size": 1, "sampling": True, "temperature": 0.8, "top_k": 10,
                 "top_p": 0.9, "n_best": 2, "seed": 3},
    "beam_transformers": {"beam_size": 4, "n_best": 2, "convention": "transformers"},
    "beam_ctranslate2": {"beam_size": 4, "n_best": 2, "convention": "ctranslate2"},
}


@pytest.fixture(scope="module", params=[False, True], ids=["post_norm", "pre_norm"])
def model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("allocations") / "tiny.ptm"
    write_random_model(path, seed=11, pre_norm=request.param)
    # Two threads, so the steps also go through the thread pool's hand-off.
    return _core.Model(str(path), threads=2)


def allocations_of(model, length: int, options: dict) -> tuple[int, list]:
    before = _core._heap_allocations()
    results = _core.generate(model, SOURCES, _core.SearchOptions(model, max_length=length,
                                                                 min_length=length,
                                                                 forced_eos=False, **options))
    return _core._heap_allocations() - before, results


@pytest.mark.parametrize("search", SEARCHES)
def test_decode_steps_allocate_nothing(model, search):
    options = SEARCHES[search]
    # Warm-up: one-time process state (the kernel table), and per-thread scratch buffers of the
    # kernels, which grow to the longest cache they have attended over and are then kept.
    allocations_of(model, LONG, options)
    short, short_results = allocations_of(model, SHORT, options)
    long, long_results = allocations_of(model, LONG, options)
    for results, length in ((short_results, SHORT), (long_results, LONG)):
        assert all(len(tokens) == length for hypotheses in results for tokens, _, _ in hypotheses)
    assert short > 0, "the counter saw no allocation: is the operator new replacement linked?"
    assert long == short, (
        f"{search}: {short} heap allocations for {SHORT} steps, {long} for {LONG}: "
        f"about {(long - short) / (LONG - SHORT):.1f} per decoder step")
