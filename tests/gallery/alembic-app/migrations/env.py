from __future__ import annotations

from alembic import context
from catalog.settings import Settings
from sqlalchemy import create_engine


def sqlalchemy_url() -> str:
    dsn = Settings().db_dsn.get_secret_value()
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


engine = create_engine(sqlalchemy_url())
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
