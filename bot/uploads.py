"""Uploads remembered in the `uploads` table, so every process reuses one upload per content.

The row is keyed by (account, sha256 of the content, kind); `uploaded_at` is written from
the connector's clock (the platform's time), which is also the clock its age is read on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Upload


class DbUploadStore:
    """`connectors.uploads.UploadStore` over the `uploads` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def find(
        self, account: str, sha256: str, kind: str, *, newer_than: datetime
    ) -> tuple[str, datetime] | None:
        """The remote id and upload time of this content, if uploaded after `newer_than`."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Upload.remote_id, Upload.uploaded_at).where(
                        Upload.account == account,
                        Upload.sha256 == sha256,
                        Upload.kind == kind,
                        Upload.uploaded_at > newer_than,
                    )
                )
            ).first()
        return None if row is None else (row.remote_id, row.uploaded_at)

    async def save(
        self, account: str, sha256: str, kind: str, remote_id: str, *, uploaded_at: datetime
    ) -> None:
        """Insert, or replace the older upload of the same content."""
        values = {
            "account": account,
            "sha256": sha256,
            "kind": kind,
            "remote_id": remote_id,
            "uploaded_at": uploaded_at,
        }
        async with self._sessions.begin() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            statement = dialect.insert(Upload).values(**values)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[Upload.account, Upload.sha256, Upload.kind],
                    set_={"remote_id": remote_id, "uploaded_at": uploaded_at},
                )
            )

    async def forget(self, account: str, sha256: str, kind: str, remote_id: str) -> None:
        """Delete the row, unless another process has stored a newer upload meanwhile."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(Upload).where(
                    Upload.account == account,
                    Upload.sha256 == sha256,
                    Upload.kind == kind,
                    Upload.remote_id == remote_id,
                )
            )
