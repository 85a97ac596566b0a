"""Group commit: writes that many tasks ask for at about the same time share one transaction.

A caller awaits its own result as if it wrote alone. The first caller starts a writer; every
caller that arrives while a batch is being written joins the next one. Nothing waits on a
timer: a lone write goes out at once, and under load the batches grow by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from bot.db.engine import UNREACHABLE

I = TypeVar("I")  # noqa: E741 - an item, as R is a result
R = TypeVar("R")

WriteMany = Callable[[Sequence[I]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[I, R]):
    """Calls `write_many` with the items waiting, one batch after another."""

    def __init__(self, write_many: WriteMany[I, R], *, limit: int = 64) -> None:
        self._write_many = write_many
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
            batch = self._waiting[: self._limit]
            del self._waiting[: self._limit]
            await self._write(batch)

    async def _write(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write_many([item for item, _ in batch])
        except UNREACHABLE as exc:  # every caller waits out the outage in its own way
            _settle(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            for one in batch:  # one bad item must not fail the others: each alone, once
                await self._write([one])
        except BaseException as exc:  # cancelled: the callers learn it and may retry
            _settle(batch, exc)
            raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a caller cancelled meanwhile still had its write
                    future.set_result(result)


def _settle(batch: list[tuple[I, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
