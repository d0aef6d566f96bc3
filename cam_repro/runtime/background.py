"""Worker threads that run calls beside the caller, a bounded number ahead.

cam-eval scores a batch (box extraction, the threshold sweeps, PxAP: numpy and numba kernels
that release the GIL) here while the main thread runs the next batch's forward pass.
`results()` returns the calls' values in submission order, whichever thread ran them and when.
A call that raises stops the run: its error is raised in the caller at the next `submit` or at
`results()`, and the calls not yet started are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Background:
    """`submit(fn, *args)` runs fn in one of `threads` workers (with 0 threads: at once, in the
    caller); at most `depth` calls wait or run there, `submit` blocks on the oldest beyond that
    (so memory stays bounded by `depth` batches). Use as a context manager."""

    def __init__(self, threads: int = 1, depth: int = 2, name: str = "cam-repro") -> None:
        if depth < 1 or threads < 0:
            raise ValueError(f"depth must be >= 1 and threads >= 0, got {depth} and {threads}")
        self.depth = depth
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name) if threads else None
        self._pending: deque[Future] = deque()
        self._done: list[Any] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            self._done.append(fn(*args))
            return
        while self._pending and (
            len(self._pending) >= self.depth or self._pending[0].done()
        ):  # collect what is finished (raising its error early), wait when full
            self._done.append(self._pending.popleft().result())
        self._pending.append(self._pool.submit(fn, *args))

    def results(self) -> list[Any]:
        """Every call's value, in submission order (waits for the last ones)."""
        while self._pending:
            self._done.append(self._pending.popleft().result())
        done, self._done = self._done, []
        return done

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # on an error in the caller, drop the calls not started; always join the worker
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
            self._pending.clear()
