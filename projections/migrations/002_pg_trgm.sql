-- Trigram matching for the public portal's search by any part of a Chinese name
-- (views.entities.name ILIKE '%...%' served by a GIN index; see projections/views.sql).
create extension if not exists pg_trgm with schema public;
