"""Given a live views schema made by older code (a table of views.sql missing), when the stack or
the projector starts (schema.ensure_live), then the schema is re-created with every table, empty,
so the projector projects the ledger again from offset 0; a complete schema is left alone."""

from __future__ import annotations

import uuid

import psycopg

from projections import schema


def test_a_live_schema_missing_a_table_is_recreated_and_a_complete_one_left_alone(stack) -> None:
    name = f"ledger_schema_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.pg_admin_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    dsn = stack.pg_dsn.replace(f"dbname={stack.pg_database}", f"dbname={name}")
    try:
        assert schema.ensure_live(dsn) is True  # none yet: created
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("insert into views.positions values ('credit.events', 0, 42, now())")
            assert schema.ensure_live(dsn) is False  # complete: untouched
            assert conn.execute("select next_offset from views.positions").fetchall() == [(42,)]
            conn.execute("drop table views.punishment_feedback")
            assert schema.missing_tables(conn, schema.LIVE) == ["punishment_feedback"]
            assert schema.ensure_live(dsn) is True
            assert schema.missing_tables(conn, schema.LIVE) == []
            assert conn.execute("select count(*) from views.positions").fetchone() == (0,)  # from offset 0
            # a table made by older code, without a column views.sql now gives it: made again too
            conn.execute("insert into views.positions values ('credit.events', 0, 42, now())")
            conn.execute("alter table views.list_entries drop column county")
            assert schema.missing_tables(conn, schema.LIVE) == ["list_entries.county"]
            assert schema.ensure_live(dsn) is True
            assert schema.missing_tables(conn, schema.LIVE) == []
            assert conn.execute("select count(*) from views.positions").fetchone() == (0,)
    finally:
        with psycopg.connect(stack.pg_admin_dsn, autocommit=True) as admin:
            admin.execute(f'drop database "{name}" with (force)')
