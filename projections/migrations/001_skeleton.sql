-- Shared objects only. The read models live in the schema "views" (projections/views.sql),
-- created by projections.schema.ensure_live() so that a rebuild can create the same tables in a
-- fresh schema and swap it in.
create table if not exists view_generations (
    id          bigserial primary key,
    schema_name text not null,
    switched_at timestamptz not null default now(),
    digest      text not null,
    events      bigint not null
);
