"""The schema registry API: the ledger's Avro schemas, read-only, as a Confluent Schema Registry
answers, on 127.0.0.1. A subscriber's standard deserializer (Confluent's KafkaAvroDeserializer,
confluent-kafka's AvroDeserializer on librdkafka, ...) pointed at it decodes the ledger's records by
the schema id each one carries (magic byte 0, 4-byte big-endian id, Avro body).

Served from schemas/avro/catalogue.json (schemas/subjects.py: subjects by the TopicRecordNameStrategy,
`<topic>-<record full name>`; a subject's versions are that record's ids in catalogue order; the
schema text is the full, self-contained schema). Nothing is registered here: a new schema is a new
file and a new id in the repository.

Routes (all GET; application/vnd.schemaregistry.v1+json):

  /schemas/ids/{id}                          {"schema": "<schema text>"}; 40403 if unknown
                                             (query subject=, format= are accepted and ignored)
  /schemas/ids/{id}/schema                   the schema text alone
  /schemas/ids/{id}/versions                 [{"subject", "version"}] of the id
  /schemas/ids/{id}/subjects                 the subjects of the id
  /schemas/types                             ["AVRO"]
  /subjects                                  every subject (subjectPrefix= filters)
  /subjects/{subject}/versions               [1, 2, ...]; 40401 if the subject is unknown
  /subjects/{subject}/versions/{version}     {"subject", "version", "id", "schema"}; version is a
                                             number or "latest" (or -1); 40402 no such version,
                                             42202 not a version
  /subjects/{subject}/versions/{version}/schema   the schema text alone
  /config                                    {"compatibilityLevel": "BACKWARD"}
  POST /subjects/{subject}                   look-up only: body {"schema": "<text>"} -> the version
                                             of the subject with that schema (compared in Avro's
                                             Parsing Canonical Form); 40403 if none, 42201 bad body
  /metrics                                   Prometheus metrics of this process

Errors are the registry's: {"error_code": 40403, "message": "Schema not found"}, 40401, 40402,
42202, 404 for an unknown route, 405 for any other method (nothing can be registered or deleted).

Run: python -m ops.run schema-registry [--port 8083] [--metrics-port 9114]
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from ledger.platform import config, logs
from ledger.platform.clock import Clock
from ledger.platform.web import Handler, metrics, observe
from schemas import registry, subjects

log = logs.get("schema-registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# every schema of the catalogue reads the data of the earlier versions of its record (tests/unit/test_schemas.py)
COMPATIBILITY = "BACKWARD"
MAX_VERSION = 2**31 - 1

REQUEST_SECONDS = Histogram("ledger_schema_registry_request_seconds", "Schema registry API request durations, "
                            "by route", ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1))
RESPONSES = Counter("ledger_schema_registry_responses_total", "Schema registry API responses, by route and status",
                    ["route", "status"])


class RegistryError(Exception):
    """An answer of the registry's own error kinds."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, ensure_ascii=False).encode("utf-8"), status=status,
                        content_type=CONTENT_TYPE, charset="utf-8")


def _schema_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or int(raw) not in registry.catalogue().by_id:
        raise RegistryError(404, 40403, "Schema not found")
    return int(raw)


def _subject(request: web.Request) -> str:
    subject = request.match_info["subject"]
    if subject not in subjects.subjects():
        raise RegistryError(404, 40401, f"Subject '{subject}' not found.")
    return subject


def _version(request: web.Request) -> subjects.Version:
    subject = _subject(request)
    raw = request.match_info["version"]
    number = -1 if raw == "latest" else int(raw) if raw.lstrip("-").isdigit() else 0
    if number != -1 and not 1 <= number <= MAX_VERSION:
        raise RegistryError(422, 42202, f"The specified version '{raw}' is not a valid version id. Allowed values "
                                        f"are between [1, 2^31-1] and the string \"latest\"")
    found = subjects.version(subject, number)
    if found is None:
        raise RegistryError(404, 40402, f"Version {raw} not found.")
    return found


# ============================================================================ handlers


async def get_schema(request: web.Request) -> web.Response:
    return reply({"schema": subjects.schema_text(_schema_id(request))})


async def get_schema_text(request: web.Request) -> web.Response:
    return reply(json.loads(subjects.schema_text(_schema_id(request))))


async def get_schema_versions(request: web.Request) -> web.Response:
    return reply([{"subject": v.subject, "version": v.version} for v in subjects.versions_of_id(_schema_id(request))])


async def get_schema_subjects(request: web.Request) -> web.Response:
    return reply([v.subject for v in subjects.versions_of_id(_schema_id(request))])


async def get_types(request: web.Request) -> web.Response:
    return reply(["AVRO"])


async def get_subjects(request: web.Request) -> web.Response:
    prefix = request.query.get("subjectPrefix", "")
    return reply([s for s in subjects.subjects() if s.startswith(prefix)])


async def get_subject_versions(request: web.Request) -> web.Response:
    return reply(list(range(1, len(subjects.subjects()[_subject(request)]) + 1)))


async def get_subject_version(request: web.Request) -> web.Response:
    v = _version(request)
    return reply({"subject": v.subject, "version": v.version, "id": v.id, "schema": subjects.schema_text(v.id)})


async def get_subject_version_schema(request: web.Request) -> web.Response:
    return reply(json.loads(subjects.schema_text(_version(request).id)))


async def lookup_schema(request: web.Request) -> web.Response:
    """POST /subjects/{subject}: is this schema a version of the subject? (a look-up, nothing is registered)"""
    subject = _subject(request)
    try:
        body = await request.json()
        text = body["schema"]
    except (ValueError, TypeError, KeyError):
        raise RegistryError(422, 42201, "Invalid schema: the body must be {\"schema\": \"<schema text>\"}") from None
    found = subjects.lookup(subject, text) if isinstance(text, str) else None
    if found is None:
        raise RegistryError(404, 40403, "Schema not found")
    return reply({"subject": found.subject, "version": found.version, "id": found.id,
                  "schema": subjects.schema_text(found.id)})


async def get_config(request: web.Request) -> web.Response:
    return reply({"compatibilityLevel": COMPATIBILITY})


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/schemas/ids/{id}", get_schema),
    ("/schemas/ids/{id}/schema", get_schema_text),
    ("/schemas/ids/{id}/versions", get_schema_versions),
    ("/schemas/ids/{id}/subjects", get_schema_subjects),
    ("/schemas/types", get_types),
    ("/subjects", get_subjects),
    ("/subjects/{subject}/versions", get_subject_versions),
    ("/subjects/{subject}/versions/{version}", get_subject_version),
    ("/subjects/{subject}/versions/{version}/schema", get_subject_version_schema),
    ("/config", get_config),
    ("/metrics", metrics),
)


# the one POST: a look-up of a schema under a subject (standard deserializers ask it to learn a writer's version)
LOOKUP_ROUTE = "/subjects/{subject}"


def error(status: int, code: int, message: str) -> web.Response:
    return reply({"error_code": code, "message": message}, status)


def answer(request: web.Request, exc: Exception, route: str) -> web.Response | None:
    """The registry's error bodies for what a handler raised."""
    if isinstance(exc, RegistryError):
        return error(exc.status, exc.code, exc.message)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return error(405, 405, "HTTP 405 Method Not Allowed: this registry is read-only (GET); the ledger's "
                               "schemas are added to its repository, never registered here")
    if isinstance(exc, web.HTTPException):
        return error(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
    return None


def make_app(settings: config.Settings, rules: Any = None, clock: Clock | None = None) -> web.Application:
    """The application (the settings, rules and clock are the web services' common arguments; the
    registry answers from the catalogue alone)."""
    observed = observe(log, REQUEST_SECONDS, RESPONSES, answer,
                       lambda request: error(500, 50001, "Error in the backend data store"))
    app = web.Application(middlewares=[observed])
    for path, handler in ROUTES:
        app.router.add_get(path, handler)
    app.router.add_post(LOOKUP_ROUTE, lookup_schema)
    return app
