"""The migrations build exactly the schema the models describe (hand-written revisions included)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.domain.tables import metadata


async def test_models_and_migrations_agree(db):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
