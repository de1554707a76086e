-- The department supervision (consumers/supervision/): counts per department and period of what the
-- ledger's topics show of each department's work, and samples of the services' lag for the charts.
-- Written only by the supervision; read by the dashboard (projections/supervision.py).
create schema if not exists supervision;

-- One row per (period, period start, department, measure, source topic, source partition): the count
-- of that source partition's records in the period. A write sets the count only upwards
-- (greatest(old, new)): a window value is always the exact count of a prefix of its partition's
-- records, so writing a value again, or an older one, changes nothing (idempotent). Totals sum over
-- the source partitions. period: day | month (China-local; department set) | 5min (department '').
create table if not exists supervision.counts (
    period           text        not null,
    period_start     timestamptz not null,
    department       text        not null,
    measure          text        not null,
    source_topic     text        not null,
    source_partition int         not null,
    count            bigint      not null check (count >= 0),
    updated_at       timestamptz not null default now(),
    primary key (period, period_start, department, measure, source_topic, source_partition)
);
create index if not exists counts_by_period on supervision.counts (period, period_start);

-- Samples of the services' lag, recorded by the supervision every 30 s (the last 48 hours are kept).
create table if not exists supervision.samples (
    series text             not null,
    at     timestamptz      not null,
    value  double precision not null,
    primary key (series, at)
);
