-- Where each projector is in credit.events, committed in the same transaction as its rows.
create table projector_positions (
    projector   text   not null,
    topic       text   not null,
    partition   int    not null,
    next_offset bigint not null,
    updated_at  timestamptz not null default now(),
    primary key (projector, topic, partition)
);

-- A per-entity copy of the ledger, for fast history reads. (entity_id, entity_version) is the
-- idempotence key: a replayed event changes nothing.
create table ledger_copy (
    entity_id      text        not null,
    entity_version bigint      not null,
    event_id       text        not null unique,
    event_type     text        not null,
    category       text        not null,
    department     text        not null,
    kafka_partition int        not null,
    kafka_offset   bigint      not null,
    hash           bytea       not null,
    sequenced_at   timestamptz not null,
    payload        jsonb       not null,
    primary key (entity_id, entity_version),
    unique (kafka_partition, kafka_offset)
);

-- Administrative penalties in the national double-publicity fields (public view: no clear ID numbers).
create table admin_penalties (
    event_id        text primary key,
    entity_id       text   not null,
    entity_version  bigint not null,
    subject_name    text   not null,
    subject_id_public text not null,
    category        text   not null,
    decision_no     text   not null,
    violation_type  text   not null,
    penalty_categories text[] not null,
    fine_fen        bigint,
    severity        text   not null,
    decision_date   date   not null,
    authority       text   not null,
    department      text   not null,
    sequenced_at    timestamptz not null
);
create index admin_penalties_entity on admin_penalties (entity_id);
