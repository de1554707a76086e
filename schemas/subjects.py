"""The catalogue as a Confluent Schema Registry shows it: subjects, versions and schema texts.

Pure functions over schemas/avro/catalogue.json and the topics of schemas/registry.py, served
read-only by projections/web/schema_registry.py so that a standard deserializer (Confluent's for
Java, confluent-kafka on librdkafka) can decode the ledger's records by their schema id.

- A **subject** is named by the TopicRecordNameStrategy: `<topic>-<record full name>`, for every
  topic and every record name it carries (`credit.lists.current-credit.ListStatus`). A topic carries
  the record its `value` names; credit.submissions carries every event family (the records that
  start with the envelope), the ones a LedgerEntry of credit.events embeds as its submission bytes.
- The **versions** of a subject are that record name's schema ids in catalogue order: version 1 is
  the first id of the name, version 2 the next, ... (LedgerEntry: 1 -> id 1, 2 -> id 4, 3 -> id 5).
- The **schema text** of an id is the full, self-contained schema: the file fastavro parses for the
  project's encode and decode, with the shared named types (the envelope) defined where first used,
  as compact JSON. Any Avro library parses it alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import fastavro

from schemas import registry

NAMESPACE = "credit"
FAMILY_MARK = {"name": "envelope", "type": f"{NAMESPACE}.EnvelopeV1"}


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    id: int


def full_name(name: str) -> str:
    """A record's full name: `credit.<name>`."""
    return f"{NAMESPACE}.{name}"


def families() -> tuple[str, ...]:
    """The event families (records whose first field is the envelope), in catalogue order."""
    cat = registry.catalogue()
    names: list[str] = []
    for s in cat.by_id.values():
        if s.name not in names and _raw(s.file)["fields"][:1] == [FAMILY_MARK]:
            names.append(s.name)
    return tuple(names)


def topic_records(topic: registry.Topic) -> tuple[str, ...]:
    """The record names a topic's values carry."""
    if topic.name == registry.SUBMISSIONS.name:
        return families()
    if topic.value in registry.catalogue().latest:
        return (topic.value,)
    raise registry.SchemaError(f"{topic.name}: its value {topic.value!r} names no record of schemas/avro")


@cache
def subjects() -> dict[str, tuple[int, ...]]:
    """Every subject, sorted, with its schema ids (version n = the n-th id)."""
    ids_of: dict[str, list[int]] = {}
    for s in registry.catalogue().by_id.values():  # catalogue order
        ids_of.setdefault(s.name, []).append(s.id)
    out = {f"{t.name}-{full_name(name)}": tuple(ids_of[name])
           for t in registry.TOPICS for name in topic_records(t)}
    return dict(sorted(out.items()))


def version(subject: str, number: int) -> Version | None:
    """Version `number` (1-based; -1 = the latest) of a subject, None if the subject has no such version."""
    ids = subjects().get(subject, ())
    if number == -1 and ids:
        return Version(subject, len(ids), ids[-1])
    if 1 <= number <= len(ids):
        return Version(subject, number, ids[number - 1])
    return None


def versions_of_id(schema_id: int) -> list[Version]:
    """Every (subject, version) whose schema is `schema_id`."""
    return [Version(subject, n, i) for subject, ids in subjects().items()
            for n, i in enumerate(ids, start=1) if i == schema_id]


def lookup(subject: str, text: str) -> Version | None:
    """The version of `subject` whose schema is `text` (compared in Avro's Parsing Canonical Form, so
    docs, defaults and spacing do not matter); None when none is, or the text is no Avro schema."""
    try:
        wanted = canonical(json.loads(text))
    except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException):
        return None
    return next((Version(subject, n, i) for n, i in enumerate(subjects().get(subject, ()), start=1)
                 if canonical(json.loads(schema_text(i))) == wanted), None)


def canonical(schema: object) -> str:
    """Avro's Parsing Canonical Form of a schema (its identity for a registry's lookup)."""
    return fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(schema))


@cache
def schema_text(schema_id: int) -> str:
    """The full, self-contained schema of an id as JSON text; KeyError for an unknown id."""
    s = registry.catalogue().by_id[schema_id]
    shared = {f"{raw['namespace']}.{raw['name']}": raw for raw in map(_raw, _meta()["named_types"])}
    return json.dumps(_inline(_raw(s.file), shared, set()), ensure_ascii=False, separators=(",", ":"))


def _inline(node: object, shared: dict[str, dict], done: set[str]) -> object:  # type: ignore[type-arg]
    """The schema file as written, each shared named type (the envelope) defined where it is first used
    and named after that, as an Avro parser reading the text alone needs it."""
    if isinstance(node, str):
        if node in shared and node not in done:
            done.add(node)
            return _inline(shared[node], shared, done)
        return node
    if isinstance(node, list):
        return [_inline(x, shared, done) for x in node]
    if isinstance(node, dict):
        return {k: _inline(v, shared, done) if k in ("type", "items", "values", "fields") else v
                for k, v in node.items()}
    return node


def _raw(file: str) -> dict:  # type: ignore[type-arg]
    return json.loads((registry.AVRO_DIR / file).read_text(encoding="utf-8"))


@cache
def _meta() -> dict:  # type: ignore[type-arg]
    return _raw("catalogue.json")
