"""The JSON face of the Avro schemas (moving into modules of this package)."""

from ledger.intake.openapi.decoding import (  # noqa: F401
    DEFAULT_TIMEOUT,
    MAX_BATCH,
    MAX_PROBLEMS,
    MAX_TIMEOUT,
    Invalid,
    Problem,
    _json_type,
    decode_event,
    document,
    document_bytes,
    echo,
    families,
    parse_json,
    plain,
)
