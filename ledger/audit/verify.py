"""Offline verifier of an audit bundle: python -m ledger.audit.verify BUNDLE --public-key FILE
(or of one signed tree head alone: python -m ledger.audit.verify --head FILE --public-key FILE;
or of a credit report: python -m ledger.audit.verify --report FILE --public-key FILE --issuer-key FILE)

An auditor runs this with nothing but the bundle (one JSON file exported by
`python -m projections.audit export-bundle`) and the notary's public key, obtained separately from the
bundle (the key file the ledger operator publishes). It imports only the Python standard library
and `cryptography` (for Ed25519); no Kafka, no PostgreSQL, no other module of the ledger, so it can
be read in one sitting. It checks, and names the first thing that fails:

1. The signed tree head: its Ed25519 signature under the given public key, over the exact text
   built by `head_message` (topic, partition, tree size, root, timestamp, key id), and that the key
   id is the one of the given key.
2. Freshness (with --trusted-head FILE, a head the auditor already trusts, e.g. saved by an earlier
   run with --save-head): a head of the same partition whose signature holds; the bundle's head
   must not be older (a smaller tree) than it ("old tree head replayed"); of the same size it must
   have the same root (otherwise the log forked); if newer, the bundle must carry an RFC 9162
   consistency proof from the trusted size to the bundle's size, and the proof must verify.
3. Every event: the record is the exact LedgerEntry bytes of the ledger (credit.events); it
   belongs to the bundle's entity; its leaf index lies inside the signed tree; its RFC 9162
   inclusion proof leads from SHA-256(0x00 || record) to the signed root; leaf indexes increase.
4. The entity's hash chain (ledger/records/chain.py): versions 1, 2, 3 ... without a gap, each prev_hash is
   the previous entry's hash (32 zero bytes for version 1), and each hash is
   SHA-256(prev_hash || the record with an empty hash field).
5. With --department-keys DIR (the departments' and intakes' public keys, <name>.pub, obtained apart
   from the bundle): each event's Ed25519 signature. By its department, or by the intake that
   attested it for the department (the HTTP gateway, named in the entry's `signer`); over the
   submission bytes (the first scheme) or over the batch message (signer, department, batch size,
   Merkle root) when the entry carries a batch proof, whose path must lead from
   SHA-256(0x00 || submission) to that root. When the entry keeps a client's detached signature
   over the HTTP body it sent, that signature by the department over that body too.

With --head FILE instead of a bundle (a head downloaded from the public portal's /tree-head page):
only check 1, its signature and key id; the head can then be kept as the --trusted-head of later
bundles.

With --report FILE (a credit report's JSON, from the query API's /entities/{id}/report.json or
/reports/{number}.json) and --issuer-key FILE (the report issuer's Ed25519 public key, obtained
apart from the report): the report as issued (docs/architecture.md, "Credit reports"):
6. The file is byte for byte its canonical form (`canonical_json`: compact, keys sorted, UTF-8);
   its report number is XCCR-<issue date>-<the first 16 hex digits of SHA-256 of the body's
   canonical form>, so a changed body no longer matches its number; the issuer's Ed25519 signature
   covers the number and the body's whole digest (`report_message`).
7. The signed tree head (check 1), and every record: its inclusion proof to the signed root, from
   SHA-256(0x00 || the LedgerEntry bytes) when the report carries them, else from its leaf hash
   (a natural person's entry holds the clear ID number, which a report never carries). With the
   bytes: the entry is the report subject's, of the stated version, event, type and department, its
   own hash holds, and its submission decodes (with the Avro schema the report names by id) to the
   record's `facts`, from which every cell a row marks as `proven` is recomputed.
8. Every event a row of a section names is one of the report's proven records.

Exit status 0 when everything holds, 1 with the reason when something does not, 2 on bad usage.

What this does not show: that no event of the entity came AFTER the last one in the bundle (a
tail cut off). The tree proves what it includes, not what it leaves out; the bundle's newest
version can be compared with the entity's version in any later bundle or view.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BUNDLE_FORMAT = "credit-ledger-audit-bundle/1"
LEDGER_TOPIC = "credit.events"
LEDGER_ENTRY_SCHEMA_IDS = {1: 1, 4: 2, 5: 3}  # schemas/avro/catalogue.json: id -> LedgerEntry.v<N>.avsc
GENESIS = bytes(32)


class VerificationFailed(Exception):
    """The bundle does not prove what it claims; the message says what and where."""


# --------------------------------------------------------------------------- RFC 9162 section 2.1


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that an inclusion proof of leaf hash `leaf` at `index` implies."""
    if not 0 <= index < size:
        raise VerificationFailed(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationFailed("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationFailed("inclusion proof is shorter than the tree is deep")
    return r


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise VerificationFailed unless the tree of size2 extends the tree of size1."""
    if size1 > size2:
        raise VerificationFailed(f"consistency: the first tree ({size1}) is larger than the second ({size2})")
    if size1 == size2:
        if proof:
            raise VerificationFailed("consistency: a proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationFailed("consistency: same size, different roots (the log forked)")
        return
    if size1 == 0:
        if proof:
            raise VerificationFailed("consistency: a proof from the empty tree must be empty")
        return
    if not proof:
        raise VerificationFailed("consistency: the proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationFailed("consistency: the proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationFailed("consistency: the proof is too short")
    if fr != root1:
        raise VerificationFailed("consistency: the proof does not lead to the trusted (older) root")
    if sr != root2:
        raise VerificationFailed("consistency: the proof does not lead to the newer root")


# --------------------------------------------------------------------------- signed tree heads


def key_id(public_key_hex: str) -> str:
    """The first 8 bytes of SHA-256 of the raw public key, in hex."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def head_message(head: dict[str, Any]) -> bytes:
    """The exact bytes the notary signs: one field per line, nothing implicit."""
    return (f"credit-ledger tree head v1\ntopic {head['topic']}\npartition {int(head['partition'])}\n"
            f"tree_size {int(head['tree_size'])}\nroot {head['root']}\ntimestamp_ms {int(head['timestamp_ms'])}\n"
            f"key_id {head['key_id']}\n").encode()


def check_head(head: dict[str, Any], public_key_hex: str, what: str = "tree head") -> None:
    try:
        fields = {k: head[k] for k in ("topic", "partition", "tree_size", "root", "timestamp_ms", "key_id", "signature")}
    except KeyError as e:
        raise VerificationFailed(f"{what}: field {e.args[0]} is missing") from None
    if fields["topic"] != LEDGER_TOPIC:
        raise VerificationFailed(f"{what}: it is a head of {fields['topic']!r}, not of {LEDGER_TOPIC}")
    if fields["key_id"] != key_id(public_key_hex):
        raise VerificationFailed(f"{what}: signed with key {fields['key_id']}, the public key given is "
                                 f"{key_id(public_key_hex)}")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            bytes.fromhex(fields["signature"]), head_message(head))
    except (InvalidSignature, ValueError):
        raise VerificationFailed(f"{what}: the signature does not verify under the notary's public key "
                                 f"(the head was altered or forged)") from None


# --------------------------------------------------------------------------- LedgerEntry records


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise VerificationFailed("record ends inside a number")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos  # zigzag
        shift += 7
        if shift > 63:
            raise VerificationFailed("record has a number longer than 64 bits")


def _bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _varint(data, pos)
    if n < 0 or pos + n > len(data):
        raise VerificationFailed("record has a field longer than the record")
    return data[pos:pos + n], pos + n


def _blocks(data: bytes, pos: int, item: Callable[[int], tuple[Any, int]]) -> tuple[list[Any], int]:
    """An Avro array or map body: blocks of items, each block led by its count, ended by a zero count."""
    items: list[Any] = []
    while True:
        count, pos = _varint(data, pos)
        if count == 0:
            return items, pos
        if count < 0:
            count = -count
            _, pos = _varint(data, pos)  # block size in bytes
        for _ in range(count):
            value, pos = item(pos)
            items.append(value)


def parse_ledger_entry(record: bytes) -> dict[str, Any]:
    """Decode a framed LedgerEntry (magic 0, schema id 1, 4 or 5 for versions 1, 2 and 3, Avro body;
    schemas/avro/LedgerEntry.v1.avsc to v3: version 2 adds the map ``rules_versions`` after
    ``warnings``; version 3 adds ``signer`` (string), ``batch_proof``, ``client_signature`` and
    ``client_body`` (bytes) after ``signature``)."""
    sid = int.from_bytes(record[1:5], "big") if len(record) >= 5 else -1
    if len(record) < 5 or record[0] != 0 or sid not in LEDGER_ENTRY_SCHEMA_IDS:
        raise VerificationFailed("not a LedgerEntry record (magic byte 0, schema id 1, 4 or 5)")
    fields = [("entity_id", "s"), ("entity_version", "l"), ("event_id", "s"), ("event_type", "s"),
              ("category", "s"), ("department", "s"), ("sequenced_at", "l"), ("submission_partition", "l"),
              ("submission_offset", "l"), ("warnings", "a"), ("submission", "b"), ("signature", "b"),
              ("prev_hash", "b"), ("hash", "b")]
    if LEDGER_ENTRY_SCHEMA_IDS[sid] >= 2:
        fields.insert(10, ("rules_versions", "m"))
    if LEDGER_ENTRY_SCHEMA_IDS[sid] >= 3:
        fields[13:13] = [("signer", "s"), ("batch_proof", "b"), ("client_signature", "b"), ("client_body", "b")]

    def text(at: int) -> tuple[str, int]:
        raw, at = _bytes(record, at)
        return raw.decode("utf-8", "replace"), at

    def pair(at: int) -> tuple[tuple[str, int], int]:
        key, at = text(at)
        value, at = _varint(record, at)
        return (key, value), at

    e: dict[str, Any] = {"rules_versions": {}, "signer": "", "batch_proof": b"", "client_signature": b"",
                         "client_body": b""}
    pos = 5
    for name, kind in fields:
        if kind == "l":
            e[name], pos = _varint(record, pos)
        elif kind == "a":
            e[name], pos = _blocks(record, pos, text)
        elif kind == "m":
            pairs, pos = _blocks(record, pos, pair)
            e[name] = dict(pairs)
        else:
            raw, pos = _bytes(record, pos)
            e[name] = raw.decode("utf-8", "replace") if kind == "s" else raw
    if pos != len(record):
        raise VerificationFailed("record has bytes after its last field")
    return e


def chain_hash(record: bytes, prev_hash: bytes) -> bytes:
    """SHA-256(prev_hash || the record with an empty hash field). `hash` is the last field, 32 bytes
    long, written as the length byte 0x40 and the bytes; empty, it is the single byte 0x00."""
    if len(record) < 33 or record[-33] != 0x40:
        raise VerificationFailed("record does not end in a 32-byte hash field")
    return hashlib.sha256(prev_hash + record[:-33] + b"\x00").digest()


# --------------------------------------------------------------------------- the bundle


@dataclass
class Verified:
    entity_id: str
    partition: int
    tree_size: int
    root: str
    events: list[dict[str, Any]]
    head: dict[str, Any]


def _hexes(values: Any, what: str) -> list[bytes]:
    try:
        out = [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError):
        raise VerificationFailed(f"{what}: not a list of hex hashes") from None
    if any(len(x) != 32 for x in out):
        raise VerificationFailed(f"{what}: every hash must be 32 bytes")
    return out


def verify_bundle(bundle: dict[str, Any], public_key_hex: str, trusted_head: dict[str, Any] | None = None,
                  department_keys: dict[str, str] | None = None) -> Verified:
    """Check everything the bundle claims; raise VerificationFailed with the first reason it fails.
    With `department_keys` (department -> Ed25519 public key, hex), also each department's signature
    over the submission it made."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise VerificationFailed(f"not an audit bundle of format {BUNDLE_FORMAT}")
    entity_id, head = bundle.get("entity_id"), bundle.get("tree_head")
    if not isinstance(entity_id, str) or not isinstance(head, dict):
        raise VerificationFailed("the bundle needs an entity_id and a tree_head")
    check_head(head, public_key_hex)
    size, root = int(head["tree_size"]), bytes.fromhex(head["root"])
    if trusted_head is not None:
        _check_fresh(bundle, head, trusted_head, public_key_hex)

    events = bundle.get("events")
    if not isinstance(events, list) or not events:
        raise VerificationFailed("the bundle holds no events")
    out: list[dict[str, Any]] = []
    prev_hash, prev_index = GENESIS, -1
    for n, ev in enumerate(events, 1):
        where = f"event {n} of {len(events)}"
        try:
            record = base64.b64decode(ev["record"], validate=True)
            index = int(ev["leaf_index"])
            path = _hexes(ev["inclusion_proof"], f"{where}: inclusion_proof")
        except (KeyError, ValueError, TypeError) as e:
            raise VerificationFailed(f"{where}: malformed ({type(e).__name__}: {e})") from None
        entry = parse_ledger_entry(record)
        where = f"{where} (version {entry['entity_version']}, leaf {index})"
        if entry["entity_id"] != entity_id:
            raise VerificationFailed(f"{where}: the record belongs to entity {entry['entity_id']}, "
                                     f"not to {entity_id}")
        if index <= prev_index:
            raise VerificationFailed(f"{where}: leaf index {index} does not come after {prev_index} "
                                     "(events out of ledger order)")
        if index >= size:
            raise VerificationFailed(f"{where}: the signed tree head (size {size}) does not cover leaf {index}")
        try:
            proven = root_from_inclusion_proof(index, size, leaf_hash(record), path)
        except VerificationFailed as e:
            raise VerificationFailed(f"{where}: {e}: the proof is not one for this tree head") from None
        if proven != root:
            raise VerificationFailed(f"{where}: the inclusion proof does not lead to the signed root "
                                     "(the record or its proof was altered, or the proof is another leaf's or another tree "
                                     "head's)")
        if entry["entity_version"] != n:
            raise VerificationFailed(f"{where}: version {entry['entity_version']} where {n} was expected "
                                     "(an event is missing or out of order)")
        if entry["prev_hash"] != prev_hash:
            raise VerificationFailed(f"{where}: prev_hash is not the previous entry's hash (chain broken)")
        if chain_hash(record, prev_hash) != entry["hash"]:
            raise VerificationFailed(f"{where}: the entry's hash does not match its content")
        if department_keys is not None:
            _check_department_signature(entry, department_keys, where)
        prev_hash, prev_index = entry["hash"], index
        out.append({"version": entry["entity_version"], "leaf_index": index, "event_id": entry["event_id"],
                    "event_type": entry["event_type"], "department": entry["department"],
                    "sequenced_at_ms": entry["sequenced_at"], "hash": entry["hash"].hex()})
    return Verified(entity_id, int(head["partition"]), size, head["root"], out, head)


BATCH_MESSAGE_PREFIX = b"credit-ledger/batch-signature/v1\n"  # ledger/records/batch.py, message()


def batch_message(signer: str, department: str, size: int, root: bytes) -> bytes:
    """The bytes a batch signature covers (the same text as ledger/records/batch.py's message())."""
    return BATCH_MESSAGE_PREFIX + f"signer={signer}\ndepartment={department}\nsize={size}\nroot={root.hex()}\n".encode()


def _ed25519_holds(key_hex: str, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _check_department_signature(entry: dict[str, Any], keys: dict[str, str], where: str) -> None:
    """The signature on the submission: by the department itself, or by the intake (``signer``) that
    attested it for the department; over the submission bytes (the first scheme) or, with a
    ``batch_proof``, over the root of a signed batch the submission's inclusion proof leads to. With
    a client's detached signature, that one too, by the department over the body it sent."""
    department, signer = entry["department"], entry["signer"] or entry["department"]
    key = keys.get(signer)
    if key is None:
        raise VerificationFailed(f"{where}: no public key given for "
                                 f"{'department' if signer == department else 'intake'} {signer!r}")
    who = (f"department {department!r}" if signer == department
           else f"intake {signer!r} attesting for department {department!r}")
    if not entry["batch_proof"]:
        signed = entry["submission"]
    else:
        proof = entry["batch_proof"]
        if len(proof) < 40 or (len(proof) - 40) % 32:
            raise VerificationFailed(f"{where}: the batch proof is malformed ({len(proof)} bytes)")
        root, size, index = proof[:32], int.from_bytes(proof[32:36], "big"), int.from_bytes(proof[36:40], "big")
        path = [proof[i:i + 32] for i in range(40, len(proof), 32)]
        try:
            proven = root_from_inclusion_proof(index, size, leaf_hash(entry["submission"]), path)
        except VerificationFailed as e:
            raise VerificationFailed(f"{where}: the batch proof does not fit its batch ({e})") from None
        if proven != root:
            raise VerificationFailed(f"{where}: the submission is not in the batch its signature covers "
                                     "(its batch proof does not lead to the signed root)")
        signed = batch_message(signer, department, size, root)
    if not _ed25519_holds(key, entry["signature"], signed):
        raise VerificationFailed(f"{where}: the submission is not signed by {who} "
                                 "(its signature does not verify under that key)")
    if entry["client_signature"]:
        dept_key = keys.get(department)
        if dept_key is None:
            raise VerificationFailed(f"{where}: no public key given for department {department!r}")
        if not _ed25519_holds(dept_key, entry["client_signature"], entry["client_body"]):
            raise VerificationFailed(f"{where}: the client's own signature over the body it sent does not "
                                     f"verify under department {department!r}'s key")


def _check_fresh(bundle: dict[str, Any], head: dict[str, Any], trusted: dict[str, Any], public_key_hex: str) -> None:
    check_head(trusted, public_key_hex, "trusted head")
    if int(trusted["partition"]) != int(head["partition"]):
        raise VerificationFailed(f"trusted head is of partition {trusted['partition']}, the bundle's of "
                                 f"{head['partition']}")
    old, new = int(trusted["tree_size"]), int(head["tree_size"])
    if new < old:
        raise VerificationFailed(f"old tree head replayed: the bundle's head (size {new}) is older than the head "
                                 f"you already trust (size {old})")
    proof = bundle.get("consistency") or {}
    if new > old and int(proof.get("from_size", -1)) != old:
        raise VerificationFailed(f"the bundle has no consistency proof from your trusted head (size {old}) "
                                 f"to its head (size {new})")
    verify_consistency(old, new, bytes.fromhex(trusted["root"]), bytes.fromhex(head["root"]),
                       _hexes(proof.get("proof", []), "consistency proof") if new > old else [])


# --------------------------------------------------------------------------- Avro bodies (submissions)


def _avro_names(schema: Any, ns: str, names: dict[str, Any]) -> None:
    """Every named type of a schema, by full and by short name (defined anywhere, even in a branch)."""
    if isinstance(schema, list):
        for branch in schema:
            _avro_names(branch, ns, names)
    elif isinstance(schema, dict):
        t = schema.get("type")
        if t in ("record", "enum", "fixed"):
            name = schema["name"]
            full = name if "." in name else f"{schema.get('namespace', ns)}.{name}".lstrip(".")
            names[full] = names[full.rsplit(".", 1)[-1]] = schema
            ns = full.rsplit(".", 1)[0] if "." in full else ""
            for f in schema.get("fields", []):
                _avro_names(f["type"], ns, names)
        elif t == "array":
            _avro_names(schema["items"], ns, names)
        elif t == "map":
            _avro_names(schema["values"], ns, names)
        elif isinstance(t, (dict, list)):
            _avro_names(t, ns, names)


def _avro(schema: Any, data: bytes, pos: int, names: dict[str, Any]) -> tuple[Any, int]:
    """One Avro value in its JSON form: bytes and fixed as hex, `date` as YYYY-MM-DD, the rest as is."""
    if isinstance(schema, list):
        branch, pos = _varint(data, pos)
        if not 0 <= branch < len(schema):
            raise VerificationFailed("submission: a union branch outside its schema")
        return _avro(schema[branch], data, pos, names)
    t = schema.get("type") if isinstance(schema, dict) else schema
    if isinstance(t, (dict, list)):
        return _avro(t, data, pos, names)
    if t == "null":
        return None, pos
    if t == "boolean":
        if pos >= len(data):
            raise VerificationFailed("submission ends inside a boolean")
        return data[pos] != 0, pos + 1
    if t in ("int", "long"):
        n, pos = _varint(data, pos)
        if isinstance(schema, dict) and schema.get("logicalType") == "date":
            return (date(1970, 1, 1) + timedelta(days=n)).isoformat(), pos
        return n, pos
    if t in ("float", "double"):
        size = 4 if t == "float" else 8
        if pos + size > len(data):
            raise VerificationFailed("submission ends inside a number")
        return struct.unpack("<f" if t == "float" else "<d", data[pos:pos + size])[0], pos + size
    if t in ("bytes", "string"):
        raw, pos = _bytes(data, pos)
        if t == "bytes":
            return raw.hex(), pos
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError:
            raise VerificationFailed("submission holds a string that is not UTF-8") from None
    if t == "record":
        out = {}
        for f in schema["fields"]:
            out[f["name"]], pos = _avro(f["type"], data, pos, names)
        return out, pos
    if t == "enum":
        i, pos = _varint(data, pos)
        if not 0 <= i < len(schema["symbols"]):
            raise VerificationFailed("submission: an enum symbol outside its schema")
        return schema["symbols"][i], pos
    if t == "fixed":
        end = pos + int(schema["size"])
        if end > len(data):
            raise VerificationFailed("submission ends inside a fixed value")
        return data[pos:end].hex(), end
    if t == "array":
        return _blocks(data, pos, lambda at: _avro(schema["items"], data, at, names))
    if t == "map":
        def pair(at: int) -> tuple[tuple[str, Any], int]:
            key, at = _avro("string", data, at, names)
            value, at = _avro(schema["values"], data, at, names)
            return (key, value), at
        pairs, pos = _blocks(data, pos, pair)
        return dict(pairs), pos
    if isinstance(t, str) and t in names:
        return _avro(names[t], data, pos, names)
    raise VerificationFailed(f"submission: the schema names a type {t!r} it does not define")


def decode_submission(submission: bytes, schemas: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A framed event record (magic 0, 4-byte schema id, Avro body) decoded with the schema of its
    id from `schemas` (id as text -> the full schema text, as the schema registry API serves it):
    (schema id, the record in its JSON form)."""
    if len(submission) < 5 or submission[0] != 0:
        raise VerificationFailed("submission: not a framed Avro record (magic byte 0, schema id)")
    sid = int.from_bytes(submission[1:5], "big")
    text = schemas.get(str(sid))
    if not isinstance(text, str):
        raise VerificationFailed(f"submission: written with schema id {sid}, which the report does not give")
    try:
        schema = json.loads(text)
    except ValueError:
        raise VerificationFailed(f"schema {sid}: not JSON") from None
    names: dict[str, Any] = {}
    _avro_names(schema, "", names)
    value, pos = _avro(schema, submission, 5, names)
    if pos != len(submission):
        raise VerificationFailed(f"submission: bytes after its last field (schema {sid})")
    return sid, value


# --------------------------------------------------------------------------- credit reports

REPORT_FORMAT = "credit-ledger-credit-report/1"
REPORT_NUMBER = re.compile(r"XCCR-([0-9]{8})-([0-9A-F]{16})")
REPORT_KEYS = {"format", "report_number", "body", "issuer_signature"}


def canonical_json(value: Any) -> bytes:
    """The one byte form of a report file and of its body: compact JSON (no spaces), keys sorted,
    non-ASCII characters as they are, UTF-8, one final newline (for these values, of ASCII keys, strings
    and whole numbers, the JSON Canonicalization Scheme of RFC 8785 and a newline). Any other bytes
    are not the report as issued; `python -m json.tool` shows it indented."""
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def body_digest(body: Any) -> bytes:
    return hashlib.sha256(canonical_json(body)).digest()


def report_number(issued_on: str, digest: bytes) -> str:
    """XCCR-<issue date YYYYMMDD>-<the first 16 hex digits of the body's SHA-256, upper case>."""
    return f"XCCR-{issued_on.replace('-', '')}-{digest.hex()[:16].upper()}"


def report_message(number: str, digest: bytes, issuer_key_id: str) -> bytes:
    """The exact bytes the report issuer signs."""
    return (f"credit-ledger credit report v1\nreport_number {number}\nbody_sha256 {digest.hex()}\n"
            f"key_id {issuer_key_id}\n").encode()


@dataclass
class VerifiedReport:
    number: str
    subject: dict[str, Any]
    issued_on: str
    head: dict[str, Any]
    records: int
    withheld: int
    rows: int


def _first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _facts_at(facts: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(facts, dict) or part not in facts:
            return None
        facts = facts[part]
    return facts


def _check_report_record(n: int, rec: Any, body: dict[str, Any], size: int, root: bytes) -> tuple[str, Any]:
    """One record of a report: its proof to the signed root and, with its bytes, what they say.
    Returns (event id, the facts proven by the bytes or None)."""
    where = f"record {n}"
    if not isinstance(rec, dict):
        raise VerificationFailed(f"{where}: not an object")
    try:
        event_id, version, index = str(rec["event_id"]), int(rec["version"]), int(rec["leaf_index"])
        path = _hexes(rec["inclusion_proof"], f"{where}: inclusion_proof")
        raw = base64.b64decode(rec["entry"], validate=True) if "entry" in rec else None
        leaf = leaf_hash(raw) if raw is not None else bytes.fromhex(rec["leaf_hash"])
    except (KeyError, ValueError, TypeError) as e:
        raise VerificationFailed(f"{where}: malformed ({type(e).__name__}: {e})") from None
    where = f"record {n} (event {event_id}, version {version}, leaf {index})"
    if index >= size:
        raise VerificationFailed(f"{where}: the signed tree head (size {size}) does not cover leaf {index}")
    try:
        proven = root_from_inclusion_proof(index, size, leaf, path)
    except VerificationFailed as e:
        raise VerificationFailed(f"{where}: {e}: the proof is not one for this tree head") from None
    if proven != root:
        raise VerificationFailed(f"{where}: the inclusion proof does not lead to the signed root (the record, its "
                                 "leaf hash or its proof was altered)")
    if raw is None:
        if not rec.get("withheld"):
            raise VerificationFailed(f"{where}: neither its ledger entry nor the reason it is withheld")
        return event_id, None
    entry = parse_ledger_entry(raw)
    stated = {"entity_id": body["subject"]["entity_id"], "entity_version": version, "event_id": event_id,
              "event_type": rec.get("event_type"), "department": rec.get("department")}
    for name, value in stated.items():
        if entry[name] != value:
            raise VerificationFailed(f"{where}: the ledger entry's {name} is {entry[name]!r}, the report says {value!r}")
    if chain_hash(raw, entry["prev_hash"]) != entry["hash"]:
        raise VerificationFailed(f"{where}: the entry's hash does not match its content")
    sid, facts = decode_submission(entry["submission"], body["schemas"])
    if sid != rec.get("schema_id") or facts != rec.get("facts"):
        raise VerificationFailed(f"{where}: its facts are not what its submission bytes say (schema {sid})")
    return event_id, facts


def verify_report(raw: bytes, public_key_hex: str, issuer_key_hex: str) -> VerifiedReport:
    """Check a credit report file (its exact bytes) against the notary's and the issuer's public keys;
    raise VerificationFailed with the first thing that fails."""
    try:
        report = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise VerificationFailed(f"the file is not a JSON report ({e})") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise VerificationFailed(f"not a credit report of format {REPORT_FORMAT}")
    canonical = canonical_json(report)
    if canonical != raw:
        raise VerificationFailed(f"the file is not byte for byte the report as issued: it departs from the report's "
                                 f"canonical form at byte {_first_difference(raw, canonical)} (a byte was changed, "
                                 "added or removed)")
    if set(report) != REPORT_KEYS:
        raise VerificationFailed(f"a report has exactly the fields {sorted(REPORT_KEYS)}, this one {sorted(report)}")
    body, signature = report["body"], report["issuer_signature"]
    if not isinstance(body, dict) or not isinstance(signature, dict):
        raise VerificationFailed("body and issuer_signature must be objects")
    digest = body_digest(body)
    number = str(report["report_number"])
    issued_on = str(body.get("issued_on", ""))
    if not REPORT_NUMBER.fullmatch(number) or number != report_number(issued_on, digest):
        raise VerificationFailed(f"the report number {number} does not match the report's content (issued "
                                 f"{issued_on}, body digest {digest.hex()[:16].upper()}...): the content or the number "
                                 "was changed after issue")
    if signature.get("key_id") != key_id(issuer_key_hex):
        raise VerificationFailed(f"issuer signature: made with key {signature.get('key_id')}, the issuer key given is "
                                 f"{key_id(issuer_key_hex)}")
    if signature.get("body_sha256") != digest.hex():
        raise VerificationFailed("issuer signature: it names another body digest than the report's")
    try:
        sig = bytes.fromhex(str(signature.get("signature")))
    except ValueError:
        sig = b""
    if not _ed25519_holds(issuer_key_hex, sig, report_message(number, digest, signature["key_id"])):
        raise VerificationFailed("issuer signature: it does not verify under the issuer's public key (the report "
                                 "was altered or not issued with that key)")
    try:
        head, subject, records, sections = body["tree_head"], body["subject"], body["records"], body["sections"]
        schemas = body["schemas"]
        subject["entity_id"]
    except (KeyError, TypeError) as e:
        raise VerificationFailed(f"the report body lacks {e}") from None
    if not isinstance(records, list) or not isinstance(sections, list) or not isinstance(schemas, dict):
        raise VerificationFailed("records and sections must be lists, schemas an object")
    check_head(head, public_key_hex)
    size, root = int(head["tree_size"]), bytes.fromhex(head["root"])
    proven: dict[str, Any] = {}
    prev = (0, -1)
    for n, rec in enumerate(records, 1):
        event_id, facts = _check_report_record(n, rec, body, size, root)
        at = (int(rec["version"]), int(rec["leaf_index"]))
        if at[0] <= prev[0] or at[1] <= prev[1]:
            raise VerificationFailed(f"record {n} (event {event_id}): versions and leaf indexes must increase")
        prev = at
        proven[event_id] = facts
    rows = 0
    for section in sections:
        title = section.get("title") if isinstance(section, dict) else None
        for i, row in enumerate(section.get("rows", []) if isinstance(section, dict) else [], 1):
            where = f"section {title!r}, row {i}"
            rows += 1
            for event_id in row.get("event_ids", []):
                if event_id not in proven:
                    raise VerificationFailed(f"{where}: names event {event_id}, which is not among the report's "
                                             "proven records")
            for column, (event_id, path) in (row.get("proven") or {}).items():
                facts = proven.get(event_id)
                if event_id not in proven:
                    raise VerificationFailed(f"{where}: its {column} rests on event {event_id}, not among the records")
                if facts is not None and str(_facts_at(facts, path)) != str(row.get("cells", {}).get(column)):
                    raise VerificationFailed(f"{where}: its {column} {row.get('cells', {}).get(column)!r} is not "
                                             f"what event {event_id} says ({path}: {_facts_at(facts, path)!r})")
    return VerifiedReport(number, subject, issued_on, head, len(records),
                          sum(1 for f in proven.values() if f is None), rows)


# --------------------------------------------------------------------------- command line


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the {what} {path}: {e}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"the {what} {path} is not a JSON object")
    return data


def _verify_head(head: dict[str, Any], public_key: str) -> int:
    try:
        check_head(head, public_key)
    except VerificationFailed as e:
        print(f"REJECTED: {e}")
        return 1
    print(f"VERIFIED: tree head of {head['topic']} partition {head['partition']}: {head['tree_size']} records, "
          f"root {head['root']}, timestamp_ms {head['timestamp_ms']}, signed by key {head['key_id']}")
    return 0


def _verify_report(path: str, public_key: str, issuer_key_path: str | None) -> int:
    if issuer_key_path is None:
        raise SystemExit("a report needs --issuer-key FILE: the report issuer's public key (the portal's "
                         "/report-issuer.pub), obtained apart from the report")
    try:
        raw, issuer_key = Path(path).read_bytes(), Path(issuer_key_path).read_text().strip()
    except OSError as e:
        raise SystemExit(f"cannot read {e.filename}: {e.strerror}") from None
    try:
        v = verify_report(raw, public_key, issuer_key)
    except VerificationFailed as e:
        print(f"REJECTED: {e}")
        return 1
    full = v.records - v.withheld
    how = ([f"{full} byte for byte (the values its {v.rows} rows mark as proven recomputed from them)"] if full else []) + (
        [f"{v.withheld} by their leaf hash only (entries holding what a report never carries: a natural person's "
         "clear ID number, a telephone number, an objection's reasons; each record says which)"] if v.withheld else [])
    print(f"VERIFIED: credit report {v.number} of {v.subject.get('name')} ({v.subject['entity_id']}), issued "
          f"{v.issued_on}: unchanged since its issue and signed by its issuer; its {v.records} records are in the "
          f"signed tree of {v.head['topic']} partition {v.head['partition']} (size {v.head['tree_size']}): "
          + ", ".join(how or ["none to show"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ledger.audit.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", nargs="?",
                   help="the audit bundle (JSON) exported by `python -m projections.audit export-bundle`")
    p.add_argument("--head", metavar="FILE",
                   help="instead of a bundle: check one signed tree head (JSON, e.g. from the portal's /tree-head)")
    p.add_argument("--report", metavar="FILE",
                   help="instead of a bundle: check a credit report (JSON, from /entities/{id}/report.json)")
    p.add_argument("--issuer-key", metavar="FILE",
                   help="with --report: the report issuer's Ed25519 public key (64 hex characters)")
    p.add_argument("--public-key", required=True, metavar="FILE",
                   help="the notary's Ed25519 public key (64 hex characters), obtained apart from the bundle")
    p.add_argument("--trusted-head", metavar="FILE",
                   help="a tree head you already trust (JSON); the bundle's head must be consistent with it")
    p.add_argument("--save-head", metavar="FILE", help="after success, save the bundle's head here for next time")
    p.add_argument("--department-keys", metavar="DIR",
                   help="also check each event's department signature with DIR/<department>.pub (hex)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict")
    a = p.parse_args(argv)
    if [a.bundle, a.head, a.report].count(None) != 2:
        p.error("give one of: an audit bundle, --head FILE, --report FILE")
    try:
        public_key = Path(a.public_key).read_text().strip()
    except OSError as e:
        raise SystemExit(f"cannot read the public key {a.public_key}: {e}") from None
    if a.head is not None:
        return _verify_head(_read_json(a.head, "tree head"), public_key)
    if a.report is not None:
        return _verify_report(a.report, public_key, a.issuer_key)
    bundle = _read_json(a.bundle, "bundle")
    trusted = _read_json(a.trusted_head, "trusted head") if a.trusted_head else None
    departments = ({f.stem: f.read_text().strip() for f in Path(a.department_keys).glob("*.pub")}
                   if a.department_keys else None)
    try:
        v = verify_bundle(bundle, public_key, trusted, departments)
    except VerificationFailed as e:
        print(f"REJECTED: {e}")
        return 1
    if not a.quiet:
        print(f"entity {v.entity_id}: {len(v.events)} events, partition {v.partition}, signed tree of "
              f"{v.tree_size} leaves, root {v.root}")
        for e in v.events:
            print(f"  v{e['version']:<4} leaf {e['leaf_index']:<8} {e['event_type']:<32} {e['event_id']} "
                  f"by {e['department']}")
    if a.save_head:
        Path(a.save_head).write_text(json.dumps(v.head, indent=1) + "\n", encoding="utf-8")
    print(f"VERIFIED: {len(v.events)} events of {v.entity_id}, in order, unaltered, in the signed tree "
          f"of partition {v.partition} (size {v.tree_size})" + (", consistent with your trusted head" if trusted else "")
          + (", each signed by its department" if departments is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
