"""The OpenAPI 3.1 description of the gateway: the families' JSON Schemas (``schema.Deriver``), the
answers' schemas, the paths with their parameters and responses, assembled once and cached.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from ledger.intake.openapi.avro import families
from ledger.intake.openapi.schema import REF, Deriver
from schemas import registry

API_VERSION = "1.0.0"
MAX_BATCH = 10_000
MAX_TIMEOUT, DEFAULT_TIMEOUT = 30.0, 5.0

CONTENT_SIGNATURE = {
    "name": "X-Content-Signature", "in": "header", "required": False,
    "description": "Optional (客户端签名): the base64 of an Ed25519 signature over the exact request body, made "
                   "with the department's own key (the one whose public key is LEDGER_KEYS_DIR/<department>.pub). "
                   "The gateway checks it (400 naming this header, with the reason, when it is malformed, does not "
                   "verify, or the body is not one event) and submits it with the body; the sequencer checks it "
                   "again, and the ledger entry keeps both, so an auditor can show the department itself sent "
                   "this event (python -m ledger.audit.verify --department-keys).",
    "schema": {"type": "string", "contentEncoding": "base64"}}

def _problem_schemas() -> dict[str, Any]:
    problem = {"type": "object", "required": ["field", "code", "message"], "properties": {
        "field": {"type": "string", "description": "JSON path of the field at fault, e.g. envelope.valid_from"},
        "code": {"type": "string", "description": "machine-readable reason, e.g. schema.date, uscc.length"},
        "message": {"type": "string", "description": "中文说明 (English in brackets)"}}}
    batch_problem = {**problem, "required": ["field", "code", "message"],
                     "properties": {"index": {"type": "integer", "minimum": 0,
                                              "description": "position of the event in the batch (0-based); "
                                                             "absent when the body as a whole is at fault"},
                                    **problem["properties"]}}
    return {
        "Problem": {**problem, "title": "Problem"},
        "BatchProblem": {**batch_problem, "title": "BatchProblem"},
        "Refusal": {"type": "object", "required": ["error", "reasons"], "title": "Refusal",
                    "description": "The gateway refused the request before anything was submitted.",
                    "properties": {"error": {"type": "string"},
                                   "reasons": {"type": "array", "items": {"$ref": REF + "Problem"}}}},
        "BatchRefusal": {"type": "object", "required": ["error", "reasons"], "title": "BatchRefusal",
                         "description": "The whole batch was refused: nothing of it was submitted.",
                         "properties": {"error": {"type": "string"},
                                        "reasons": {"type": "array", "items": {"$ref": REF + "BatchProblem"}}}},
        "Error": {"type": "object", "required": ["error"], "title": "Error",
                  "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
        "ParameterError": {"type": "object", "required": ["error", "code", "parameter"], "title": "ParameterError",
                           "description": "A query parameter that cannot be used (nothing submitted).",
                           "properties": {"error": {"type": "string"}, "code": {"const": "parameter"},
                                          "parameter": {"type": "string", "description": "its name"}}},
        "Pending": {"type": "object", "required": ["event_id", "status", "status_url"], "title": "Pending",
                    "description": "Submitted to the ledger (on Kafka, acknowledged) but not judged yet.",
                    "properties": {"event_id": {"type": "string"}, "status": {"const": "PENDING"},
                                   "status_url": {"type": "string",
                                                  "description": "GET it for the outcome (with ?timeout= to wait)"}}},
        "BatchResult": {
            "type": "object", "required": ["counts", "outcomes"], "title": "BatchResult",
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                           "description": "number of outcomes by status (PENDING: not judged yet)"},
                "outcomes": {"type": "array", "description": "one per event, in the order of the request",
                             "items": {"oneOf": [{"$ref": REF + "Outcome"}, {"$ref": REF + "Pending"}]}}}},
        "Health": {"type": "object", "required": ["status"], "title": "Health",
                   "properties": {"status": {"type": "string"}, "kafka": {"type": "string"},
                                  "outcomes_watcher": {"type": "string"}}},
    }


def _json(schema_ref: str, description: str, *alternatives: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": REF + schema_ref}
    if alternatives:
        schema = {"anyOf": [schema] + [{"$ref": REF + a} for a in alternatives]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@cache
def _document() -> str:
    d = Deriver()
    names = families()
    for name in names:
        d.ref(registry.schema_for(name).parsed["name"])
        fam = d.components[name]
        envelope = fam["properties"]["envelope"]
        # the family is chosen by envelope.event_type, which must be the record's name
        fam["properties"]["envelope"] = {
            "allOf": [{"$ref": envelope["$ref"]},
                      {"type": "object", "properties": {"event_type": {"const": name}}}],
            **{k: v for k, v in envelope.items() if k != "$ref"}}
    d.ref(registry.schema_for("Outcome").parsed["name"])
    components = dict(sorted(d.components.items()))
    components["Submission"] = {
        "title": "Submission", "oneOf": [{"$ref": REF + n} for n in names],
        "description": "One credit event of any family, chosen by envelope.event_type (信用事件)."}
    components["SubmissionBatch"] = {"title": "SubmissionBatch", "type": "array", "minItems": 1,
                                     "maxItems": MAX_BATCH, "items": {"$ref": REF + "Submission"}}
    components.update(_problem_schemas())
    timeout = {"name": "timeout", "in": "query", "required": False,
               "description": f"seconds to wait for the sequencer's outcome (default {DEFAULT_TIMEOUT:g}, at "
                              f"most {MAX_TIMEOUT:g}); after that the answer is 202 with a status URL",
               "schema": {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT, "default": DEFAULT_TIMEOUT}}
    unauthorized = _json("Error", "no or unknown bearer token (nothing submitted)")
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    limited = _json("Error", "the department is over its rate or its requests at once (limit.rate, "
                             "limit.concurrency); nothing submitted: retry after Retry-After seconds")
    limited["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    common = {"401": unauthorized, "413": _json("Error", "body too large (nothing submitted)"), "429": limited,
              "503": _json("Error", "Kafka unavailable: nothing or not surely submitted; resubmit with the same "
                                    "event id (a resubmission is answered DUPLICATE)")}
    paths = {
        "/v1/events": {"post": {
            "operationId": "submitEvent", "summary": "Submit one credit event (报送一条信用事件)",
            "description": "Validated against the family's Avro schema, the department authorised against "
                           "the department matrix, attested with the gateway's own key (the gateway holds no "
                           "department's key; the matrix names the departments it may attest for) and "
                           "submitted to credit.submissions; the answer is the sequencer's outcome. With "
                           "X-Content-Signature, the department's own signature over the exact body is checked "
                           "and kept with the ledger entry.",
            "parameters": [timeout, CONTENT_SIGNATURE],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": REF + "Submission"}}}},
            "responses": {
                "200": _json("Outcome", "ACCEPTED (with the ledger position) or DUPLICATE (the original one)"),
                "202": {**_json("Pending", "no outcome within the timeout: ask the status URL"),
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                "400": _json("Refusal", "not JSON, not a valid event of its family, or a malformed identifier "
                                        "(or a bad query parameter)", "ParameterError"),
                "403": _json("Refusal", "the caller's department may not submit this event, or may not submit "
                                        "through the gateway (a system or sector department signs its own)"),
                "422": _json("Outcome", "REJECTED or CONFLICT by the sequencer, with reasons"),
                **common}}},
        "/v1/events:batch": {"post": {
            "operationId": "submitBatch", "summary": f"Submit up to {MAX_BATCH:,} events (批量报送)",
            "description": "All or nothing at the gateway: every event is checked first, and if any is invalid "
                           "or forbidden the whole batch is refused and nothing is submitted. Then each event "
                           "is judged by the sequencer on its own (per-item outcomes). One attestation by the "
                           "gateway's key covers the whole batch (a Merkle root, each event with its proof). "
                           "X-Content-Signature is refused here (400): the body of a batch is not kept per "
                           "event; sign each event and POST it to /v1/events, or use the direct Avro client, "
                           "whose batch signatures prove the same.",
            "parameters": [timeout],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": REF + "SubmissionBatch"}}}},
            "responses": {
                "200": _json("BatchResult", "every event judged (each outcome may be ACCEPTED, DUPLICATE, "
                                            "REJECTED or CONFLICT)"),
                "202": _json("BatchResult", "some events not judged within the timeout (status PENDING, with "
                                            "their status URLs)"),
                "400": _json("BatchRefusal", "some event invalid: nothing submitted (or a bad query parameter)",
                             "ParameterError"),
                "403": _json("BatchRefusal", "some event forbidden for the caller's department: nothing submitted"),
                **common}}},
        "/v1/outcomes/{event_id}": {"get": {
            "operationId": "getOutcome", "summary": "The outcome of a submission (查询报送结果)",
            "description": "Known for the events this gateway submitted for the caller's department since it "
                           "started (a bounded cache); 404 otherwise.",
            "parameters": [
                {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {**timeout, "description": "seconds to wait for a pending outcome (default 0, at most "
                                           f"{MAX_TIMEOUT:g})", "schema": {**timeout["schema"], "default": 0}}],
            "responses": {
                "200": _json("Outcome", "judged: ACCEPTED or DUPLICATE"),
                "202": _json("Pending", "submitted, not judged yet"),
                "400": _json("ParameterError", "bad parameter"),
                "404": _json("Error", "unknown to this gateway"),
                "422": _json("Outcome", "judged: REJECTED or CONFLICT"),
                "401": unauthorized, "503": common["503"]}}},
        "/health": {"get": {
            "operationId": "health", "summary": "200 when Kafka answers and outcomes are watched", "security": [],
            "responses": {"200": _json("Health", "healthy"), "503": _json("Health", "not healthy")}}},
    }
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Credit ledger submission gateway (信用信息报送接口)", "version": API_VERSION,
                 "description": "Departments submit credit events over HTTP/JSON. The event shapes are derived "
                                "from the Avro schemas in schemas/avro (the one source of event shapes); dates "
                                "are YYYY-MM-DD, times RFC 3339 with seconds and offset (Avro holds dates and "
                                "times of years 1 to 9999 in UTC, without leap seconds: others are refused with "
                                "schema.unrepresentable), money integer fen (分). Authenticate with "
                                "`Authorization: Bearer <your department's token>`."},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"departmentToken": []}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"departmentToken": {
                           "type": "http", "scheme": "bearer",
                           "description": "one token per emitting department (LEDGER_KEYS_DIR/api-tokens.json "
                                          "holds their SHA-256)"}}},
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=False)


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 description (a fresh copy)."""
    return json.loads(_document())


def document_bytes() -> bytes:
    return _document().encode("utf-8")
