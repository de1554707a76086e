-- The credit office's working store of 红黑榜 drafts (projections/releases/drafts.py). Not a view: it
-- is not rebuilt from the ledger; what it drafts becomes public only through the approval on the
-- ledger (ListReleaseApproved), which carries the content itself (docs/domain-notes.md §11.2).
create schema if not exists office;

create table office.release_drafts (
    id              bigserial primary key,
    period          text        not null,   -- 2026-11 | 2026-Q4
    title           text        not null,
    corrects        int,                    -- the release a correction corrects
    content         text        not null,   -- the canonical content (ledger/domain/releases.py), as digested
    content_sha256  text        not null,
    entries         int         not null,
    black           int         not null,
    red             int         not null,
    drawn_at        timestamptz not null,
    drawn_positions jsonb       not null,   -- the views' positions in credit.events when drawn
    drafted_by      text        not null,
    status          text        not null default 'draft',  -- draft | reviewed | rejected | approved
    reviewed_by     text,
    reviewed_at     timestamptz,
    review_note     text,
    release_no      int,                    -- once approved: 第N期, and where the approval is on the ledger
    approved_by     text,
    approved_at     timestamptz,
    correction_note text,
    event_id        text,
    ledger_partition int,
    ledger_offset   bigint
);
create index release_drafts_status on office.release_drafts (status, id);
