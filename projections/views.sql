-- The read models: every table here is a projection of credit.events and can be dropped and
-- rebuilt. The statements are run with search_path set to the target schema ("views" for the live
-- views, a fresh schema for a rebuild), so they name no schema.

-- Where this set of views is in credit.events; written in the same transaction as the rows.
create table positions (
    topic       text   not null,
    partition   int    not null,
    next_offset bigint not null,
    last_append timestamptz,            -- ledger time of the last record applied
    primary key (topic, partition)
);

-- The fold state per entity (ledger.domain.model.EntityState as JSON); internal.
create table entity_state (
    entity_id  text primary key,
    version    bigint not null,
    state      text   not null
);

-- A per-entity copy of the ledger for fast history reads; (entity_id, entity_version) is the
-- idempotence key. The record is the submitted record's bytes as the ledger entry holds them (framed
-- Avro), with the subject's identifier in its public form: a natural person's ID number masked
-- (projections/rows.py, copied_record); rules_versions the versions of the rules files the entry was
-- judged under (null: the entry names none). The history reads decode the record (shown_record).
create table ledger_copy (
    entity_id       text        not null,
    entity_version  bigint      not null,
    event_id        text        not null,
    event_type      text        not null,
    category        text        not null,
    department      text        not null,
    kafka_partition int         not null,
    kafka_offset    bigint      not null,
    hash            bytea       not null,
    sequenced_at    timestamptz not null,
    valid_from      date        not null,
    record          bytea       not null,
    rules_versions  jsonb,
    primary key (entity_id, entity_version)
);
create unique index ledger_copy_position on ledger_copy (kafka_partition, kafka_offset);

-- The five credit databases: one row per entity.
create table entities (
    entity_id      text primary key,
    category       text   not null,      -- government, public_institution, social_organisation, enterprise, individual
    id_type        text   not null,
    public_id      text   not null,      -- the USCC, or the masked resident ID
    name           text   not null,
    version        bigint not null,
    first_seen     timestamptz not null,
    last_change    timestamptz not null,
    last_event_type text  not null,
    counts         jsonb  not null,      -- events by type
    black_lists    text[] not null,      -- list kinds with an active listing
    red_listed     boolean not null,
    registered_on  date,
    score          int    not null,
    grade          text   not null,
    grade_reasons  jsonb  not null,
    county         text   not null,      -- from the code (ledger/rules/divisions): 411002 ..., 411000 市本级, outside 市外
    key_persons    text[] not null       -- a natural person's key-person groups (ledger/rules/key_persons)
);
create index entities_category on entities (category);
create index entities_county on entities (county, category);
create index entities_name on entities (name text_pattern_ops);
-- the portal's search by part of a name (pg_trgm, migration 002; C.UTF-8 counts CJK as letters)
create index entities_name_trgm on entities using gin (name public.gin_trgm_ops);

-- Red and black lists: who, which list, why, which department, listed on, legal end, status.
create table list_entries (
    entity_id   text not null,
    list_kind   text not null,           -- dishonest_debtor, major_tax_violation, wage_arrears, procurement_ban, red
    ref         text not null,           -- case or decision number
    colour      text not null,           -- black | red
    reason      text not null,
    department  text not null,
    listed_on   date not null,
    legal_end   date,                    -- automatic end from the rules, when the period is fixed
    status      text not null,           -- active | delisted | repaired | expired
    ended_on    date,
    event_id    text not null,
    subject_name text not null,
    public_id   text not null,
    category    text not null,
    county      text not null,           -- the entity's county (as entities.county)
    primary key (entity_id, list_kind, ref)
);
create index list_entries_kind on list_entries (list_kind, status, listed_on);
create index list_entries_county on list_entries (county, listed_on);
create index list_entries_department on list_entries (department);
-- what the expiry scheduler looks for: in force, with a legal end
create index list_entries_due on list_entries (legal_end) where status = 'active';

-- Double publicity (双公示): licence and penalty records in the national fields, with their
-- publication window and the 7-working-day deadline from decision to ledger.
create table publicity (
    event_id        text primary key,
    entity_id       text not null,
    kind            text not null,       -- licence | penalty
    ref             text not null,       -- licence number or decision number
    national        jsonb not null,      -- the record in XK_/CF_ field codes
    department      text not null,
    decision_date   date not null,
    ledger_date     date not null,       -- China-local date the ledger recorded it
    deadline        date,                -- 7th working day after the decision
    working_days    int,
    late            boolean,             -- null: the calendar does not cover the dates
    window_start    date not null,
    earliest_repair date,
    automatic_end   date,
    status          text not null,       -- published | repaired | expired | revoked (penalties); valid | revoked (licences)
    ended_on        date,
    subject_name    text not null,
    public_id       text not null,
    category        text not null,
    provisional     boolean not null default false, -- deadline or count over a year without its holiday notice
    county          text not null        -- the entity's county (as entities.county)
);
create index publicity_county on publicity (county);
create index publicity_entity on publicity (entity_id);
create index publicity_provisional on publicity (event_id) where provisional;

-- Short working-day deadlines (docs/domain-notes.md §15.2; the rules in ledger/rules/workdays.v<N>.json
-- "deadlines"): the act, its trigger date, the date it was done, the deadline and whether it was late.
create table short_deadlines (
    event_id        text primary key,    -- the act: withdrawal, deletion, removal, repair, expiry
    entity_id       text not null,
    rule            text not null,       -- penalty_withdrawal | court_deletion | wage_removal | repair_decision
                                         -- | objection_forward | objection_answer_own | objection_source_answer
                                         -- | repair_accept | repair_decide
    ref             text not null,       -- decision or case number of what was withdrawn, deleted, removed;
                                         -- the receipt number of an objection's or application's step
    department      text not null,
    trigger_date    date not null,
    done_date       date not null,
    allowed         int not null,        -- working days allowed
    deadline        date,
    working_days    int,
    late            boolean,             -- null: the calendar does not cover the dates
    provisional     boolean not null default false,
    subject_name    text not null,
    public_id       text not null,
    category        text not null
);
create index short_deadlines_department on short_deadlines (department, rule, late);
create index publicity_department on publicity (department, late);
create index publicity_due on publicity (automatic_end) where status = 'published';

-- Joint-punishment feedback (联合惩戒反馈): what a sector system reports it did about a measure of
-- the catalogue (ledger/rules/punishment_catalogue), for the report of measures per department.
create table punishment_feedback (
    event_id         text primary key,
    entity_id        text not null,
    department       text not null,      -- the reporting department (one of the measure's implementers)
    measure_code     text not null,      -- the measure's id in the catalogue
    action           text not null,      -- applied | lifted | not_applicable
    trigger_event_id text not null,      -- the listing or penalty the measure followed
    trigger_kind     text not null,      -- its list kind, or administrative_penalty
    business_ref     text not null,
    acted_on         date not null,
    note             text,
    subject_name     text not null,
    public_id        text not null,
    category         text not null
);
create index punishment_feedback_report on punishment_feedback (acted_on, department, measure_code);
create index punishment_feedback_entity on punishment_feedback (entity_id);

-- Objections (信用信息异议, docs/domain-notes.md §9): one row per objection, written at each of its
-- steps (ledger/domain/objections.py; deadlines from ledger/rules/objections.v<N>.json, in working
-- days). While status is filed or forwarded the record target_event_id is marked 异议处理中.
create table objections (
    receipt_no          text primary key,    -- the ObjectionFiled's event id
    entity_id           text not null,
    target_event_id     text not null,       -- the event that made the record objected to
    record_kind         text not null,       -- administrative_penalty | administrative_licence | a list kind | red
    record_ref          text not null,       -- its decision, licence, case or document number
    grounds             text not null,       -- error | omission | past_period | infringement
    status              text not null,       -- filed | forwarded | answered
    result              text,                -- CORRECTED | PARTLY_CORRECTED | UPHELD, once answered
    correcting_event_id text,                -- the event that corrected the record (CORRECTED, PARTLY_CORRECTED)
    filed_by            text not null,       -- the department that received it (public: the public intake's form)
    filed_event_id      text not null,       -- = receipt_no
    received_on         date not null,
    forward_due         date,                -- received_on + 4 working days (objection_forward)
    forwarded_on        date,
    forwarded_to        text,                -- the department that provided the record
    forward_late        boolean,
    source_due          date,                -- forwarded_on + 3 working days (objection_source_answer)
    answer_due          date,                -- received_on + 7 working days once forwarded, + 3 before
    answered_on         date,
    answered_by         text,                -- forwarded_to, or the credit office (own remit, or on its behalf)
    answer_late         boolean,             -- answered after answer_due
    source_late         boolean,             -- a forwarded objection answered after source_due
    explanation         text,                -- the answer's 处理说明
    provisional         boolean not null default false,  -- a deadline over a year without its holiday notice
    subject_name        text not null,
    public_id           text not null,
    category            text not null
);
create index objections_entity on objections (entity_id);
create index objections_open on objections (target_event_id) where status <> 'answered';

-- Credit repair applications (信用修复申请, docs/domain-notes.md §9.2): one row per application.
create table repair_applications (
    receipt_no          text primary key,    -- the RepairApplied's event id
    entity_id           text not null,
    target_event_id     text not null,       -- the event that imposed the penalty or made the listing
    record_kind         text not null,       -- administrative_penalty | a black list kind
    record_ref          text not null,
    status              text not null,       -- applied | accepted | refused | decided
    result              text,                -- GRANTED | NOT_GRANTED, once decided
    repair_event_id     text,                -- the CreditRepaired that carried out a GRANTED decision
    filed_by            text not null,
    filed_event_id      text not null,       -- = receipt_no
    received_on         date not null,
    regime              text,                -- the repair rules of received_on (order58 | order36); null: none
    accept_due          date,                -- received_on + the regime's repair_accept working days
    accepted_on         date,
    refused_on          date,
    refusal_reason      text,
    accept_late         boolean,             -- accepted or refused after accept_due
    decide_due          date,                -- received_on + the regime's repair_decide working days
    decided_on          date,
    decide_late         boolean,
    explanation         text,                -- the decision's 决定说明
    provisional         boolean not null default false,
    subject_name        text not null,
    public_id           text not null,
    category            text not null
);
create index repair_applications_entity on repair_applications (entity_id);

-- 红黑榜 releases (ListReleaseApproved, docs/domain-notes.md §11.2): one row per approved release, its
-- entries in release_entries exactly as the approval carries them (never drawn from the lists again).
create table releases (
    release_no      int primary key,     -- 第N期
    period          text not null,       -- 2026-11 | 2026-Q4
    title           text not null,
    period_start    date not null,
    period_end      date not null,
    corrects        int,                 -- the release this one corrects
    correction_note text,
    drawn_at        timestamptz not null,
    drawn_positions jsonb not null,      -- the views' position per partition when the content was drawn
    drafted_by      text not null,
    reviewed_by     text not null,
    reviewed_on     date not null,
    approved_by     text not null,
    approved_on     date not null,
    content_sha256  text not null,       -- of the canonical content (ledger/domain/releases.py)
    entries         int not null,
    black           int not null,
    red             int not null,
    event_id        text not null,
    entity_id       text not null,       -- the publisher
    kafka_partition int not null,
    kafka_offset    bigint not null,
    sequenced_at    timestamptz not null
);
create table release_entries (
    release_no       int not null,
    seq              int not null,       -- the entry's place in the release (0-based)
    colour           text not null,
    list_kind        text not null,
    entity_id        text not null,
    public_id        text not null,
    subject_name     text not null,
    category         text not null,
    county           text not null,
    county_name      text not null,
    ref              text not null,
    reason           text not null,
    department       text not null,
    department_name  text not null,
    listed_on        date not null,
    legal_end        date,
    listing_event_id text not null,
    entity_version   bigint not null,
    primary key (release_no, seq)
);
create index release_entries_county on release_entries (county, release_no);

-- Records that could not be applied, with their provenance; nothing is skipped silently.
create table quarantine (
    kafka_partition int    not null,
    kafka_offset    bigint not null,
    entity_key      text,
    reason          text   not null,     -- undecodable | unknown_schema | held_back | ...
    detail          text   not null,
    raw             bytea,
    quarantined_at  timestamptz not null default now(),
    primary key (kafka_partition, kafka_offset)
);

-- Entities whose events are held back because an earlier record of theirs is quarantined.
create table held_entities (
    entity_key      text primary key,
    kafka_partition int    not null,
    kafka_offset    bigint not null,
    since           timestamptz not null default now()
);
