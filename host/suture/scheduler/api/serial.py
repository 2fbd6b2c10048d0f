"""One thread for a process's device transactions (polls and reports), on either database.

SQLite takes one writer at a time, so threads of a pool only queue for it; on PostgreSQL they
could run at once, but a node is one Python process whose threads take turns on one core (the
interpreter's lock), and each poll alone in its transaction pays its own ``BEGIN``, ``COMMIT``
and round trips. Either way, each thread handing its result back to the event loop is one more
wake-up of the loop and one more pass of the interpreter's lock between threads. Here the event
loop queues the work, a single thread runs it in arrival order, each item in its own
transaction exactly as before, and settles the answers of all that it ran since it last woke
the loop with one wake-up. A request is answered only after its transaction committed (or was
refused).

Group commit (``run_grouped``): the grouped items found waiting together (at most
``MAX_GROUP``) run one after the other in one transaction, committed once, and are answered
after that commit: one ``BEGIN``/``COMMIT`` and one write of the changed pages for the group
instead of one per item. If any item of a group raises, the group's transaction is rolled
back whole and each of its items runs again in a transaction of its own, so a refused request
changes nothing and never costs another its answer. Nothing is answered before it is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: A transaction for a group: entered, it yields what each grouped callable takes first (a
#: session in a begun transaction); left without an error, it has committed.
GroupTransaction = Callable[[], contextlib.AbstractContextManager[Any]]

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...],
              GroupTransaction | None]
_STOP: Any = object()
#: Most items run before their answers are handed back (bounds the wait of the first one).
MAX_BATCH = 8
#: Most grouped items in one transaction (about the requests a node keeps in flight).
MAX_GROUP = 32


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
        """``fn(*args)`` on the worker's thread, alone."""
        return await self._submit(fn, args, None)

    async def run_grouped(self, transaction: GroupTransaction, fn: Callable[..., T],
                          *args: Any) -> T:
        """``fn(tx, *args)`` on the worker's thread, inside a ``transaction()`` shared with the
        other grouped items waiting with it (an equal ``transaction`` factory); the answer comes
        once that transaction committed."""
        return await self._submit(fn, args, transaction)

    async def _submit(self, fn: Callable[..., T], args: tuple[Any, ...],
                      transaction: GroupTransaction | None) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put((loop, future, fn, args, transaction))
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
            while len(items) < MAX_GROUP:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            work = [item for item in items if item is not _STOP]
            i = 0
            while i < len(work):  # runs of items with the same transaction factory (or none)
                transaction = work[i][4]
                limit = MAX_BATCH if transaction is None else MAX_GROUP
                j = i + 1
                while j < len(work) and j - i < limit and work[j][4] == transaction:
                    j += 1
                run = work[i:j]
                _hand_back([_run_one(item) for item in run] if transaction is None
                           else _run_group(transaction, run))
                i = j
            if stop:
                return


def _run_one(item: _Item) -> tuple[asyncio.AbstractEventLoop, _Outcome]:
    loop, future, fn, args, transaction = item
    try:
        if transaction is None:
            return loop, (future, fn(*args), None)
        with transaction() as tx:
            result = fn(tx, *args)
        return loop, (future, result, None)
    except Exception as exc:  # handed to the request that asked
        return loop, (future, None, exc)


def _run_group(transaction: GroupTransaction, items: list[_Item]
               ) -> list[tuple[asyncio.AbstractEventLoop, _Outcome]]:
    """``items`` in one transaction; any error: each again in a transaction of its own."""
    if len(items) == 1:
        return [_run_one(items[0])]
    try:
        with transaction() as tx:
            results = [fn(tx, *args) for _, _, fn, args, _ in items]
    except Exception:  # one refused: none of the group's work stands; each runs alone
        return [_run_one(item) for item in items]
    return [(loop, (future, result, None))
            for (loop, future, _, _, _), result in zip(items, results, strict=True)]


def _hand_back(outcomes: list[tuple[asyncio.AbstractEventLoop, _Outcome]]) -> None:
    """One wake-up of each event loop for all the answers it waits for."""
    done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for loop, outcome in outcomes:
        done.setdefault(loop, []).append(outcome)
    for loop, settled in done.items():
        if not loop.is_closed():
            loop.call_soon_threadsafe(_settle, settled)
