"""The views' connection pool of an HTTP service (the query API, the portal): opened with the app,
closed at its clean-up, at app[POOL]; and the wait of read-your-writes for a ledger position."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg_pool
from aiohttp import web

from ledger.platform import config
from projections import queries, schema

POOL = web.AppKey("pool", psycopg_pool.AsyncConnectionPool)


def database(settings: config.Settings, name: str, pool: psycopg_pool.AsyncConnectionPool | None = None,
             max_size: int = 10) -> Callable[[web.Application], Any]:
    """A cleanup context that puts a connection pool on the views (search_path views, autocommit,
    no prepared statements) at app[POOL]: `pool` if given, else its own (2..`max_size`), closed on
    clean-up."""

    async def ctx(app: web.Application):  # type: ignore[no-untyped-def]
        if pool is not None:
            app[POOL] = pool
            yield
            return
        own = psycopg_pool.AsyncConnectionPool(
            settings.pg_dsn, min_size=2, max_size=max_size, open=False, timeout=10, name=name,
            kwargs={"autocommit": True, "options": f"-c search_path={schema.LIVE}", "prepare_threshold": None},
            check=psycopg_pool.AsyncConnectionPool.check_connection)
        await own.open(wait=True, timeout=30)
        app[POOL] = own
        yield
        await own.close()

    return ctx


async def wait_for_position(pool: psycopg_pool.AsyncConnectionPool, partition: int, offset: int,
                            wait: float) -> tuple[bool, dict[int, int]]:
    """Poll views.positions until the record at `partition`:`offset` is applied (next_offset > offset)
    or `wait` seconds pass. Returns (reached, the current positions)."""
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        async with pool.connection() as conn:
            current = await queries.positions(conn)
        if current.get(partition, 0) > offset:
            return True, current
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, current
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.2)
