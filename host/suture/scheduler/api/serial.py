"""One thread for a process's SQLite poll transactions.

SQLite takes one writer at a time, so threads of a pool only queue for it, and each handing its
result back to the event loop is one more wake-up of the loop and one more pass of the GIL
between threads. Here the event loop queues the work, a single thread runs it in arrival order,
each item in its own transaction exactly as before, and settles the answers of all that it ran
since it last woke the loop with one wake-up. A request is answered only after its transaction
committed (or was refused).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_STOP: Any = object()
#: Most items run before their answers are handed back (bounds the wait of the first one).
MAX_BATCH = 8


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(done: list[_Outcome]) -> None:
    for future, result, error in done:
        if future.done():  # the request went away (cancelled)
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class SerialWorker:
    """Runs the callables given to ``run`` one after the other on a thread of its own."""

    def __init__(self, name: str = "suture-serial") -> None:
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put((loop, future, fn, args))
        return await future

    def stop(self) -> None:
        """Ends the thread once the work queued before is done."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stop = False
            for item in items:
                if item is _STOP:
                    stop = True
                    continue
                loop, future, fn, args = item
                outcome: _Outcome
                try:
                    outcome = (future, fn(*args), None)
                except Exception as exc:  # handed to the request that asked
                    outcome = (future, None, exc)
                done.setdefault(loop, []).append(outcome)
            for loop, outcomes in done.items():
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_settle, outcomes)
            if stop:
                return
