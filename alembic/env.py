"""Alembic environment: the URL comes from the bot's own settings unless given."""

from __future__ import annotations

from sqlalchemy import create_engine, pool

from alembic import context
from bot.db.engine import sync_url
from bot.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from bot.settings import Settings

    url = sync_url(Settings().database_url).render_as_string(hide_password=False)


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
