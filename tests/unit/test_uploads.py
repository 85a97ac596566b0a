"""`Attachments`: one upload per content, shared through a store, never blocked by it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.uploads import UPLOAD_REUSE, Attachments

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


class Uploader:
    """Counts uploads and names them in order; slow enough for tasks to overlap."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def __call__(self, kind: str, name: str, data: bytes, mime: str) -> str:
        self.calls.append((kind, name, mime))
        await asyncio.sleep(0.01)
        return f"id-{len(self.calls)}"


class DictStore:
    """An `UploadStore` in a dict, as another process would have filled it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], tuple[str, datetime]] = {}

    async def find(
        self, account: str, sha256: str, kind: str, *, newer_than: datetime
    ) -> tuple[str, datetime] | None:
        row = self.rows.get((account, sha256, kind))
        return row if row is not None and row[1] > newer_than else None

    async def save(
        self, account: str, sha256: str, kind: str, remote_id: str, *, uploaded_at: datetime
    ) -> None:
        self.rows[(account, sha256, kind)] = (remote_id, uploaded_at)

    async def forget(self, account: str, sha256: str, kind: str, remote_id: str) -> None:
        if self.rows.get((account, sha256, kind), ("",))[0] == remote_id:
            del self.rows[(account, sha256, kind)]


class BrokenStore(DictStore):
    """A database that is down."""

    async def find(
        self, account: str, sha256: str, kind: str, *, newer_than: datetime
    ) -> tuple[str, datetime] | None:
        raise ConnectionError("database down")

    async def save(
        self, account: str, sha256: str, kind: str, remote_id: str, *, uploaded_at: datetime
    ) -> None:
        raise ConnectionError("database down")


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "ke-hoach.pdf"
    path.write_bytes(b"%PDF-1.4 sample")
    return path


async def test_a_store_filled_by_another_process_is_used_until_six_days(pdf: Path) -> None:
    store, clock = DictStore(), [NOW]
    first = Attachments("zalo", Uploader(), store, lambda: clock[0])
    made = await first.get(pdf, "file")
    assert not made.reused
    other_upload = Uploader()
    other = Attachments("zalo", other_upload, store, lambda: clock[0])
    clock[0] = NOW + UPLOAD_REUSE - timedelta(minutes=1)
    assert (await other.get(pdf, "file")).remote_id == made.remote_id
    clock[0] = NOW + UPLOAD_REUSE
    assert (await other.get(pdf, "file")).reused is False
    assert len(other_upload.calls) == 1


async def test_tasks_of_one_process_upload_a_file_once(pdf: Path) -> None:
    upload = Uploader()
    attachments = Attachments("zalo", upload, None, lambda: NOW)
    got = await asyncio.gather(*(attachments.get(pdf, "file") for _ in range(5)))
    assert {a.remote_id for a in got} == {"id-1"}
    assert upload.calls == [("file", "ke-hoach.pdf", "application/pdf")]


async def test_a_refused_id_is_replaced_once_for_everyone(pdf: Path) -> None:
    upload, store = Uploader(), DictStore()
    attachments = Attachments("zalo", upload, store, lambda: NOW)
    stale = await attachments.get(pdf, "file")
    await attachments.forget(stale)
    fresh = await asyncio.gather(
        *(attachments.get(pdf, "file", refused=stale.remote_id) for _ in range(3))
    )
    assert {a.remote_id for a in fresh} == {"id-2"}
    assert [row[0] for row in store.rows.values()] == ["id-2"]


async def test_a_broken_store_does_not_stop_the_upload(pdf: Path) -> None:
    upload = Uploader()
    attachments = Attachments("zalo", upload, BrokenStore(), lambda: NOW)
    assert (await attachments.get(pdf, "file")).remote_id == "id-1"
    assert (await attachments.get(pdf, "file")).remote_id == "id-1"  # the memory layer
    assert len(upload.calls) == 1
