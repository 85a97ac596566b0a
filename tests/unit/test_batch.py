"""Group commit: callers of about the same moment share one write, and keep their own results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.exc import OperationalError

from bot.batch import GroupCommit


def refused() -> OperationalError:
    return OperationalError("UPDATE", {}, ConnectionRefusedError("refused"))


class Recorder:
    """A `write_many` that remembers its batches (by connection) and fails on request."""

    def __init__(self, *, bad: int | None = None, down: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.connections: list[int] = []  # the connection each batch was written through
        self.opened = 0
        self.bad = bad
        self.down = down

    @asynccontextmanager
    async def open(self) -> AsyncIterator[int]:
        self.opened += 1
        yield self.opened

    def commit(self, *, limit: int = 64) -> GroupCommit[int, int, int]:
        return GroupCommit(self, self.open, limit=limit)

    async def __call__(self, connection: int, items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0)  # a real write yields to the loop while it runs
        if self.down:  # this many more batches find the database gone
            self.down -= 1
            raise refused()
        if self.bad in items:
            raise ValueError(f"bad item {self.bad}")
        self.batches.append(list(items))
        self.connections.append(connection)
        return [item * 10 for item in items]


async def test_callers_of_the_same_moment_share_one_write() -> None:
    write = Recorder()
    commit = write.commit()
    results = await asyncio.gather(*(commit(n) for n in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert write.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_write_goes_at_once_and_later_callers_form_the_next_batch() -> None:
    write = Recorder()
    commit = write.commit()
    assert await commit(1) == 10
    first = asyncio.ensure_future(commit(2))
    await asyncio.sleep(0)  # the writer has taken [2]; these two arrive while it writes
    rest = await asyncio.gather(commit(3), commit(4))
    assert await first == 20 and list(rest) == [30, 40]
    assert write.batches == [[1], [2], [3, 4]]
    assert write.connections == [1, 2, 2]  # one connection while batches follow one another


async def test_batches_are_cut_at_the_limit() -> None:
    write = Recorder()
    commit = write.commit(limit=2)
    await asyncio.gather(*(commit(n) for n in range(5)))
    assert write.batches == [[0, 1], [2, 3], [4]]


async def test_one_bad_item_fails_only_its_own_caller() -> None:
    write = Recorder(bad=2)
    commit = write.commit()
    results = await asyncio.gather(*(commit(n) for n in range(4)), return_exceptions=True)
    assert results[:2] == [0, 10] and results[3] == 30
    assert isinstance(results[2], ValueError)
    assert write.batches == [[0], [1], [3]]  # the batch failed, then each item went alone


async def test_an_unreachable_database_reaches_every_caller_to_wait_out() -> None:
    commit = Recorder(down=1).commit()
    results = await asyncio.gather(*(commit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)


async def test_a_cancelled_caller_still_has_its_write_and_the_others_their_results() -> None:
    write = Recorder()
    commit = write.commit()
    gone = asyncio.ensure_future(commit(1))
    kept = asyncio.ensure_future(commit(2))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert write.batches == [[1, 2]]


async def test_after_an_unreachable_batch_the_next_gets_a_new_connection() -> None:
    write = Recorder(down=1)
    commit = write.commit(limit=1)
    first, second = await asyncio.gather(commit(1), commit(2), return_exceptions=True)
    assert isinstance(first, OperationalError) and second == 20
    assert write.connections == [2]  # [1] failed on the first connection, which was let go


async def test_a_connection_that_cannot_be_opened_reaches_every_caller() -> None:
    @asynccontextmanager
    async def unreachable() -> AsyncIterator[int]:
        raise refused()
        yield 0  # pragma: no cover - makes this a generator

    commit = GroupCommit(Recorder(), unreachable)
    results = await asyncio.gather(*(commit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)
    assert commit._writer is not None and commit._writer.done()  # no writer left spinning


async def test_any_failure_to_connect_reaches_every_caller_and_the_next_write_goes_on() -> None:
    write = Recorder()
    failures = [RuntimeError("the pool broke")]

    @asynccontextmanager
    async def breaks_once() -> AsyncIterator[int]:
        if failures:
            raise failures.pop()
        async with write.open() as connection:
            yield connection

    commit = GroupCommit(write, breaks_once)
    results = await asyncio.gather(*(commit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await commit(4) == 40  # no caller is left waiting, and the writer starts anew


def test_a_new_event_loop_gets_a_writer_of_its_own() -> None:
    write = Recorder()
    commit = write.commit()
    assert asyncio.run(commit(1)) == 10
    assert asyncio.run(commit(2)) == 20  # the first loop's writer is gone with its loop
    assert write.batches == [[1], [2]]
