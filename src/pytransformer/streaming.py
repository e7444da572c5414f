"""TokenStream: generated text in increments as the core produces tokens, for any model of the
core (a translation model's Translator.stream, a LanguageModel's stream).
"""

from __future__ import annotations

import collections
import os
import threading
from types import TracebackType
from typing import Any, Iterator, Protocol, Sequence

from pytransformer import _core

_REPLACEMENT = "\ufffd"  # what a decoder gives for the first bytes of an unfinished character
_WINDOW_CONTEXT = 4  # tokens kept before the new one when decoding a step's text


class Detokenizer(Protocol):
    """What a stream needs of a tokenizer: the text of ids, and the ids that end a sequence
    (eos, a language model's end-of-turn tokens), which are not text and not counted."""

    end_ids: frozenset[int]

    def decode(self, ids: Sequence[int]) -> str: ...


class TokenStream(Iterator[str]):
    """An iterator of text increments (str) whose concatenation is the decoded output, and whose
    `token_count` is the number of tokens generated so far (exact at every step, so a caller can
    show tokens per second; the final end token is not counted). Nothing is computed until the
    first increment is asked for. Greedy search and sampling run in a worker thread that hands
    over each token (so decoding continues while the caller draws); a beam search runs in the
    caller's thread and yields its whole text at the end. Text is held back while it may still
    change: a piece can change how the text before it detokenizes only at its start (the
    leading space SentencePiece strips), and a character split over byte tokens decodes to
    U+FFFD until its last byte arrives. Once the stream is exhausted, `tokens` holds the
    generated ids (without the end token) and `finished` tells whether the model ended the text
    itself (an end token) rather than reaching the length limit or being stopped.
    `target_prefix`: target ids forced before the generated ones (an NLLB-200 / M2M100 model's
    target-language code); they are neither text, nor counted, nor part of `tokens`.
    """

    def __init__(self, model: Any, tokenizer: Detokenizer, source_ids: list[int] | None,
                 options: _core.SearchOptions,
                 target_prefix: Sequence[int] = ()) -> None:
        self.token_count = 0
        self.tokens: list[int] = []
        self.finished = False
        self._model = model
        self._tokenizer = tokenizer
        self._prefix = list(target_prefix)
        if source_ids is None:
            self._increments: Iterator[str] = iter(())
            return
        self._increments = (self._tokenwise(source_ids, options) if options.beam_size == 1
                            else self._whole(source_ids, options))

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> str:
        return next(self._increments)

    def close(self) -> None:
        """Stops the generation (waits for the worker thread to end)."""
        close = getattr(self._increments, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> TokenStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _whole(self, source_ids: list[int], options: _core.SearchOptions) -> Iterator[str]:
        # In this thread, so that Ctrl-C reaches the core's signal checks and stops it.
        tokens, _score, finished = _core.generate(self._model, [source_ids], options,
                                                  **self._prefix_option())[0][0]
        tokens = tokens[len(self._prefix):]
        self.token_count = len(tokens)
        self.tokens = list(tokens)
        self.finished = finished
        text = self._tokenizer.decode(tokens)
        if text:
            yield text

    def _prefix_option(self) -> dict[str, Any]:
        return {"target_prefix": [self._prefix]} if self._prefix else {}

    def _tokenwise(self, source_ids: list[int],
                   options: _core.SearchOptions) -> Iterator[str]:
        tokenizer = self._tokenizer
        # The decoding thread hands items over through a deque (appends and pops need no lock)
        # and wakes this thread with a byte on a pipe. A queue.Queue would not do: Ctrl-C
        # raised inside its get() can leave its lock held, and the decoding thread's next
        # put() then waits for ever while this thread waits for it to finish (seen once, in CI).
        items: collections.deque[tuple[str, Any]] = collections.deque()
        wake_read, wake_write = os.pipe()
        stop = threading.Event()

        def hand_over(kind: str, value: Any) -> None:
            items.append((kind, value))
            os.write(wake_write, b"\0")

        def on_token(_sentence: int, token: int) -> bool:
            hand_over("token", token)
            return not stop.is_set()

        def run() -> None:
            try:
                result = _core.generate(self._model, [source_ids], options, callback=on_token,
                                        **self._prefix_option())
                hand_over("done", result)
            except BaseException as error:  # handed to the consumer thread
                hand_over("error", error)

        worker = threading.Thread(target=run, name="pytransformer-stream", daemon=True)
        worker.start()
        generated: list[int] = []
        emitted = ""
        # Only the text of the last few tokens is decoded again each step (the window from
        # `window_start`, whose text so far, `window_text`, is already emitted), so a long
        # output costs linear, not quadratic, time.
        window_start, window_text = 0, ""
        try:
            while True:
                if not items:
                    os.read(wake_read, 4096)  # blocks until the next hand-over; Ctrl-C ends it
                    continue
                kind, value = items.popleft()
                if kind == "error":
                    raise value
                if kind == "done":
                    final_tokens, _score, finished = value[0][0]
                    final_tokens = final_tokens[len(self._prefix):]  # (the callback skips it)
                    self.token_count = len(final_tokens)
                    self.tokens = list(final_tokens)
                    self.finished = finished
                    final = tokenizer.decode(final_tokens)
                    if final.startswith(emitted) and len(final) > len(emitted):
                        yield final[len(emitted):]
                    return
                if value in tokenizer.end_ids:
                    continue
                generated.append(value)
                self.token_count = len(generated)
                window = tokenizer.decode(generated[window_start:]).rstrip(_REPLACEMENT)
                if window.startswith(window_text) and len(window) > len(window_text):
                    increment = window[len(window_text):]
                    yield increment
                    emitted += increment
                    # The next window keeps a few tokens before the new one: the context a
                    # piece's leading space or a fused character depends on.
                    window_start = max(len(generated) - _WINDOW_CONTEXT, 0)
                    window_text = tokenizer.decode(generated[window_start:]).rstrip(_REPLACEMENT)
        finally:
            stop.set()
            worker.join()
            os.close(wake_read)
            os.close(wake_write)
