"""Group commit: writes that many tasks ask for at about the same time share one transaction.

A caller awaits its own result as if it wrote alone. The first caller starts a writer; every
caller that arrives while a batch is being written joins the next one. Nothing waits on a
timer: a lone write goes out at once, and under load the batches grow by themselves. The
writer opens its connection once and keeps it while batches follow one another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from bot.db.engine import UNREACHABLE

C = TypeVar("C")  # what a batch is written through (a connection)
I = TypeVar("I")  # noqa: E741 - an item, as R is a result
R = TypeVar("R")

WriteMany = Callable[[C, Sequence[I]], Awaitable[Sequence[R]]]
Open = Callable[[], AbstractAsyncContextManager[C]]


class GroupCommit(Generic[C, I, R]):
    """Calls `write_many(connection, items)` with the items waiting, one batch after another."""

    def __init__(self, write_many: WriteMany[C, I, R], open: Open[C], *, limit: int = 64) -> None:
        self._write_many = write_many
        self._open = open
        self._limit = limit
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            # Callers of a loop that has ended are gone; what they asked for is not written.
            self._waiting = [(i, f) for i, f in self._waiting if f.get_loop() is loop]
            self._writer = loop.create_task(self._write_waiting())
        return await future

    async def _write_waiting(self) -> None:
        while self._waiting:
            # Results are handed out once the next batch is taken or, after the last one,
            # once the connection is back in the pool: a caller that goes on (and ends its
            # event loop) never leaves a connection checked out behind it.
            written: list[Written[R]] = []
            try:
                async with self._open() as connection:
                    while self._waiting:
                        _hand_out(written)
                        batch = self._waiting[: self._limit]
                        del self._waiting[: self._limit]
                        if not await self._write(connection, batch, written):
                            break  # the database went away: what waits gets a new connection
            except Exception as exc:  # no connection (or it broke): every caller hears of it
                batch, self._waiting = self._waiting, []
                written += [(future, exc) for _, future in batch]
            finally:
                _hand_out(written)

    async def _write(
        self, connection: C, batch: list[tuple[I, asyncio.Future[R]]], written: list[Written[R]]
    ) -> bool:
        """Write one batch, adding each caller's result (or error) to `written`.

        False if the database was unreachable.
        """
        try:
            results = await self._write_many(connection, [item for item, _ in batch])
        except UNREACHABLE as exc:
            written += [(future, exc) for _, future in batch]
            return False
        except Exception as exc:
            if len(batch) == 1:
                written.append((batch[0][1], exc))
                return True
            reachable = True
            for one in batch:  # one bad item must not fail the others: each alone, once
                reachable = await self._write(connection, [one], written) and reachable
            return reachable
        except BaseException as exc:  # cancelled: the callers learn it and may retry
            written += [(future, exc) for _, future in batch]
            raise
        written += [(future, result) for (_, future), result in zip(batch, results, strict=True)]
        return True


# A caller's future and what it gets: its result, or the error its write met.
Written = tuple[asyncio.Future[R], R | BaseException]


def _hand_out(written: list[Written[R]]) -> None:
    for future, outcome in written:
        if future.done():  # a caller cancelled meanwhile still had its write
            continue
        if isinstance(outcome, asyncio.CancelledError):
            future.cancel()
        elif isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    written.clear()
