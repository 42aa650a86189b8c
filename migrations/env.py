"""Alembic environment: runs on the connection ``archiver.db.connect.migrate`` hands over.

Run from the command line (``alembic -x url=…``) it opens its own async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context

from archiver.db.models import metadata


def run_on(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone(url: str) -> None:
    from archiver.db.connect import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    asyncio.run(run_standalone(url))
