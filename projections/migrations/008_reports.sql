-- Credit reports as issued (projections/report/issue.py): the query API keeps every report it
-- issues, byte for byte, so that its number returns the same file (docs/domain-notes.md §10.2).
-- Not a projection of credit.events: a view rebuild leaves it alone.
create schema if not exists reports;

create table if not exists reports.issued (
    report_number   text primary key,    -- XCCR-<issue date YYYYMMDD>-<16 hex digits of the body's SHA-256>
    entity_id       text        not null,
    issued_on       date        not null,   -- China Standard Time date of issue
    first_issued_at timestamptz not null default now(),
    body_sha256     bytea       not null,
    document        bytea       not null    -- the report file (JSON, canonical form) exactly as issued
);
create index if not exists issued_entity on reports.issued (entity_id, issued_on);
