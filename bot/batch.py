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
            try:
                async with self._open() as connection:
                    while self._waiting:
                        batch = self._waiting[: self._limit]
                        del self._waiting[: self._limit]
                        if not await self._write(connection, batch):
                            break  # the database went away: what waits gets a new connection
            except UNREACHABLE as exc:  # no connection: every caller waits it out its own way
                batch, self._waiting = self._waiting, []
                _settle(batch, exc)

    async def _write(self, connection: C, batch: list[tuple[I, asyncio.Future[R]]]) -> bool:
        """Write one batch and hand out its results; False if the database was unreachable."""
        try:
            results = await self._write_many(connection, [item for item, _ in batch])
        except UNREACHABLE as exc:
            _settle(batch, exc)
            return False
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return True
            reachable = True
            for one in batch:  # one bad item must not fail the others: each alone, once
                reachable = await self._write(connection, [one]) and reachable
            return reachable
        except BaseException as exc:  # cancelled: the callers learn it and may retry
            _settle(batch, exc)
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a caller cancelled meanwhile still had its write
                future.set_result(result)
        return True


def _settle(batch: list[tuple[I, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
