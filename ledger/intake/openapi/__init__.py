"""The JSON face of the Avro schemas: the OpenAPI description of the HTTP gateway, and the decoder
that turns a JSON request into an Avro-ready record, both derived from schemas/avro.

Nothing about an event's fields is written here: every family record (a record of the catalogue
with an `envelope` field, newest version) becomes one JSON Schema, field by field, and the gateway
decodes requests with the very same walk over the same Avro schemas, so the description and the
behaviour cannot drift apart (tests/unit/test_openapi.py checks both ways).

Mapping (Avro -> JSON Schema, and what the decoder accepts):

    record              object, `properties` in field order, additionalProperties false; `required`
                        = the fields without a null branch and without a default
    doc                 description (the Chinese names and the national XK_/CF_ codes kept)
    ["null", T]         T or null (`type: [T, "null"]`, or anyOf [T, null] for a named T)
    other unions        anyOf over the branches
    enum                string with `enum` (a component of its own)
    array, map          array with `items`, object with `additionalProperties`
    int / long          integer with the 32-/64-bit range
    float / double      number;  boolean -> boolean;  string -> string
    bytes, fixed        string, base64 (`contentEncoding: base64`)
    date                string, format date (YYYY-MM-DD)
    timestamp-millis    string, format date-time (RFC 3339: seconds and an offset, e.g. ...Z or +08:00)
    named types         components/schemas/<name without namespace>, referenced by $ref

A `Submission` is one of the families; the family is chosen by `envelope.event_type`, which must be
the record's name (each family's schema pins it with `const`).

One module per concern, each importing only those above it:

    avro        what both walks share: the families, short names, optional fields, integer ranges
    schema      Avro -> JSON Schema (the named types as components)
    document    the OpenAPI document: components, paths, parameters, responses
    problems    Problem, Invalid and the safe echo of a bad value
    values      JSON -> Avro-ready primitive and logical values
    decoding    JSON -> Avro-ready record (the compiled decoders, the strict JSON parser), and back
"""

from ledger.intake.openapi.avro import families
from ledger.intake.openapi.decoding import decode_event, event_type_of, parse_json, plain
from ledger.intake.openapi.document import (
    API_VERSION,
    DEFAULT_TIMEOUT,
    MAX_BATCH,
    MAX_TIMEOUT,
    document,
    document_bytes,
)
from ledger.intake.openapi.problems import MAX_PROBLEMS, Invalid, Problem, echo, json_type

__all__ = [
    "API_VERSION", "DEFAULT_TIMEOUT", "MAX_BATCH", "MAX_PROBLEMS", "MAX_TIMEOUT", "Invalid", "Problem",
    "decode_event", "document", "document_bytes", "echo", "event_type_of", "families", "json_type", "parse_json",
    "plain",
]
