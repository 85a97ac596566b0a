"""The claim also leases in_doubt deliveries: its partial index covers them.

Revision ID: 0006
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status IN ('pending', 'retry_wait', 'claimed')"
AFTER = "status IN ('pending', 'retry_wait', 'claimed', 'in_doubt')"


def _due_index(where: str) -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["account", "next_attempt_at"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    _due_index(AFTER)


def downgrade() -> None:
    _due_index(BEFORE)
