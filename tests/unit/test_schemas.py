"""Avro schemas (docs/design-notes.md §4): one per event family, catalogued, documented, and never broken.

* The catalogue (schemas/avro/catalogue.json) and ledger.domain.rules.EVENT_TYPES name the same families.
* Every schema parses, has a unique id and documents every field; the conventions hold (money in fen,
  dates as logical dates, optional = ["null", T] with default null, enum names unique across files).
* Sample records (tests/unit/schema_samples/<Name>.v<N>.jsonl, JSON converted by registry.from_json)
  round-trip, and data written with every version kept in the repository decodes with the newest one.
* Schema evolution works and can fail: shown on a v2 built in a temporary directory.
* A published schema is never edited in place (schemas/avro/published.sha256).

In the sample files a bytes value is written {"$bytes_hex": "<hex>"} (JSON has no bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.read import SchemaResolutionError

from ledger.domain.rules import EVENT_TYPES, LIST_KINDS, SEVERITIES
from schemas import registry

AVRO = registry.AVRO_DIR
SAMPLES = Path(__file__).resolve().parent / "schema_samples"
PUBLISHED = AVRO / "published.sha256"
FILE_NAME = re.compile(r"([A-Z][A-Za-z0-9]*)\.v([1-9][0-9]*)\.avsc")
DATE = {"type": "int", "logicalType": "date"}

# Fields published without a doc (none: every field of every schema is documented).
KNOWN_UNDOCUMENTED: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- helpers


def _meta() -> dict[str, Any]:
    return json.loads((AVRO / "catalogue.json").read_text(encoding="utf-8"))


def _raw(file: str, directory: Path = AVRO) -> dict[str, Any]:
    return json.loads((directory / file).read_text(encoding="utf-8"))


def _entries() -> list[dict[str, Any]]:
    return list(_meta()["schemas"])


def _all_files() -> list[str]:
    meta = _meta()
    return [*meta["named_types"], *(e["file"] for e in meta["schemas"])]


def _name_version(file: str) -> tuple[str, int]:
    m = FILE_NAME.fullmatch(file)
    assert m, f"{file}: schema files are named <RecordName>.v<N>.avsc"
    return m[1], int(m[2])


def _is_family(raw: dict[str, Any]) -> bool:
    return any(f["name"] == "envelope" for f in raw["fields"])


def _family_files() -> list[str]:
    return [e["file"] for e in _entries() if _is_family(_raw(e["file"]))]


def _canonical_sha256(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _fields(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every record field, nested ones too, as (dotted path, field)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _fields(branch, path)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            for f in schema["fields"]:
                yield f"{path}{f['name']}", f
                yield from _fields(f["type"], f"{path}{f['name']}.")
        elif kind == "array":
            yield from _fields(schema["items"], path)
        elif kind == "map":
            yield from _fields(schema["values"], path)
        elif isinstance(kind, (dict, list)):
            yield from _fields(kind, path)


def _named_types(schema: Any, namespace: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type (record, enum, fixed) a schema defines, as (full name, definition)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            ns = schema.get("namespace", namespace)
            full = schema["name"] if "." in schema["name"] else f"{ns}.{schema['name']}"
            yield full, schema
            for f in schema.get("fields", []):
                yield from _named_types(f["type"], ns)
        elif kind == "array":
            yield from _named_types(schema["items"], namespace)
        elif kind == "map":
            yield from _named_types(schema["values"], namespace)
        elif isinstance(kind, (dict, list)):
            yield from _named_types(kind, namespace)


def _enum(file: str, name: str) -> list[str]:
    return next(t["symbols"] for full, t in _named_types(_raw(file)) if full == f"credit.{name}")


def _unhex(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"$bytes_hex"}:
            return bytes.fromhex(obj["$bytes_hex"])
        return {k: _unhex(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unhex(v) for v in obj]
    return obj


def _samples(file: str) -> list[dict[str, Any]]:
    """The sample records of one schema file, converted for the Avro writer."""
    name, _ = _name_version(file)
    path = SAMPLES / file.replace(".avsc", ".jsonl")
    assert path.exists(), f"no samples for {file}: write {path.relative_to(SAMPLES.parent.parent.parent)}"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines, f"{path.name} is empty"
    return [registry.from_json(name, _unhex(json.loads(line))) for line in lines]


def _assert_contains(expected: Any, actual: Any, where: str) -> None:
    """Every value given in the sample comes back (fields left out come back as their defaults)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for k, v in expected.items():
            assert k in actual, f"{where}.{k} missing after decoding"
            _assert_contains(v, actual[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_contains(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: wrote {expected!r}, read {actual!r}"


def _encode(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def _parse(raw: dict[str, Any]) -> Any:
    named: dict[str, Any] = {}
    fastavro.parse_schema(_raw("Envelope.v1.avsc"), named_schemas=named)
    return fastavro.parse_schema(raw, named_schemas=named)


# --------------------------------------------------------------------------- catalogue


def test_event_types_and_family_schemas_are_the_same_set() -> None:
    families = {_name_version(f)[0] for f in _family_files()}
    assert families - EVENT_TYPES == set(), "schemas for event types unknown to ledger.domain.rules.EVENT_TYPES"
    assert EVENT_TYPES - families == set(), "event types without a schema in schemas/avro/catalogue.json"
    assert set(registry.catalogue().latest) >= EVENT_TYPES


def test_catalogue_entries_exist_parse_and_have_unique_ids() -> None:
    entries = _entries()
    ids = [e["id"] for e in entries]
    assert all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
    assert len(ids) == len(set(ids)), "a schema id is used twice"
    files = _all_files()
    assert len(files) == len(set(files)), "a file is catalogued twice"
    for file in files:
        assert (AVRO / file).is_file(), f"{file} is catalogued but does not exist"
        name, _ = _name_version(file)
        raw = _raw(file)
        assert raw["type"] == "record" and raw["namespace"] == "credit", file
        if file not in _meta()["named_types"]:
            assert raw["name"] == name, f"{file}: record name {raw['name']} does not match the file name"
    assert len({_name_version(e["file"]) for e in entries}) == len(entries), "a name and version twice"
    on_disk = {p.name for p in AVRO.glob("*.avsc")}
    assert on_disk - set(files) == set(), "schema files not in catalogue.json"
    cat = registry.catalogue()  # parses every entry the way the services do
    assert {s.id for s in cat.by_id.values()} == set(ids)


def test_family_schemas_start_with_the_envelope() -> None:
    for file in _family_files():
        first = _raw(file)["fields"][0]
        assert first == {"name": "envelope", "type": "credit.EnvelopeV1"}, file


def _newest_files() -> list[str]:
    """Every file but the ones a newer version of the same record replaces."""
    newest: dict[str, tuple[int, str]] = {}
    for file in _all_files():
        name, version = _name_version(file)
        if name not in newest or newest[name][0] < version:
            newest[name] = (version, file)
    return [f for f in _all_files() if newest[_name_version(f)[0]][1] == f]


def test_all_schemas_parse_together_with_unique_named_types() -> None:
    """A named type is defined by one record family (a newer version of the record defines its own
    types again: the registry reads each version on its own and resolves old data by name)."""
    seen: dict[str, str] = {}
    for file in _all_files():
        for full, _ in _named_types(_raw(file)):
            assert full not in seen or _name_version(seen[full])[0] == _name_version(file)[0], \
                f"{full} is defined in {seen[full]} and again in {file}"
            seen[full] = file
    named: dict[str, Any] = {}
    for file in _newest_files():  # named_types first, so one parse sees every file
        fastavro.parse_schema(_raw(file), named_schemas=named)
    for file in _all_files():
        fastavro.parse_schema(_raw(file), named_schemas=dict(named))


def test_every_field_has_a_doc() -> None:
    missing = set()
    for file in _all_files():
        raw = _raw(file)
        if not raw.get("doc", "").strip():
            missing.add(f"{file}:(record)")
        for path, f in _fields(raw):
            if path == "envelope":  # documented by the EnvelopeV1 record itself
                continue
            if not str(f.get("doc", "")).strip():
                missing.add(f"{file}:{path}")
    assert missing - KNOWN_UNDOCUMENTED == set(), "fields without a doc"
    assert KNOWN_UNDOCUMENTED - missing == set(), "KNOWN_UNDOCUMENTED lists fields that now have a doc"


def test_family_conventions() -> None:
    """Money in fen as long, never float; dates as logical dates; optional = ["null", T] default null."""
    for file in _family_files():
        for path, f in _fields(_raw(file)):
            t, where = f["type"], f"{file}:{path}"
            assert "float" not in json.dumps(t) and "double" not in json.dumps(t), f"{where}: no floats"
            if path.endswith("_fen"):
                assert t in ("long", ["null", "long"]), f"{where}: money is a long number of fen"
            if path.endswith(("_on", "_date", "_until")) or path == "valid_from" or path == "valid_to":
                assert t in (DATE, ["null", DATE]), f"{where}: dates are int/date"
            if isinstance(t, list):
                assert t[0] == "null" and len(t) == 2, f"{where}: optional fields are [\"null\", T]"
                assert "default" in f and f["default"] is None, f"{where}: optional fields default to null"


def test_enums_agree_with_the_rules() -> None:
    assert set(_enum("CreditRepaired.v1.avsc", "CreditRepairTargetKind")) == LIST_KINDS | {"administrative_penalty"}
    assert set(_enum("ListingExpired.v1.avsc", "ExpiredListKind")) == LIST_KINDS | {"administrative_penalty_publication"}
    assert tuple(_enum("AdministrativePenaltyImposed.v1.avsc", "PenaltySeverity")) == SEVERITIES
    assert _enum("TaxCreditRated.v1.avsc", "TaxCreditLevel") == ["A", "B", "M", "C", "D"]


# --------------------------------------------------------------------------- samples and compatibility


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["file"])
def test_samples_round_trip(entry: dict[str, Any]) -> None:
    name, version = _name_version(entry["file"])
    for i, rec in enumerate(_samples(entry["file"])):
        if "envelope" in rec:
            assert rec["envelope"]["event_type"] == name
            assert rec["envelope"]["schema_version"] == version
        data = registry.encode(name, rec, version=version)
        assert registry.schema_id_of(data) == entry["id"]
        got_name, got = registry.decode(data, expect=name)
        assert got_name == name
        _assert_contains(rec, got, f"{entry['file']} sample {i}")
        assert registry.encode(name, got, version=version) == data, "re-encoding the decoded record changed it"


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["file"])
def test_every_kept_version_decodes_with_the_newest(entry: dict[str, Any]) -> None:
    """BACKWARD: data written with any version in the repository is readable by the newest one."""
    name, version = _name_version(entry["file"])
    newest = registry.schema_for(name)
    for rec in _samples(entry["file"]):
        data = registry.encode(name, rec, version=version)
        got_name, got = registry.decode(data)  # writer's schema by id, resolved to the newest
        assert got_name == name
        assert set(got) == {f["name"] for f in newest.parsed["fields"]}


def test_a_missing_required_field_is_refused() -> None:
    rec = _samples("TaxCreditRated.v1.avsc")[0]
    del rec["level"]
    with pytest.raises(registry.SchemaError):
        registry.encode("TaxCreditRated", rec)


@pytest.fixture()
def scratch_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, Any]], int]]:
    """A copy of schemas/avro in tmp_path that the registry reads; yields add(v2 schema) -> new id."""
    avro = tmp_path / "avro"
    shutil.copytree(AVRO, avro)
    monkeypatch.setattr(registry, "AVRO_DIR", avro)
    registry.catalogue.cache_clear()

    def add(raw: dict[str, Any]) -> int:
        meta = json.loads((avro / "catalogue.json").read_text(encoding="utf-8"))
        new_id = max(e["id"] for e in meta["schemas"]) + 1
        file = f"{raw['name']}.v2.avsc"
        (avro / file).write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        meta["schemas"].append({"id": new_id, "file": file})
        (avro / "catalogue.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        registry.catalogue.cache_clear()
        return new_id

    yield add
    monkeypatch.undo()
    registry.catalogue.cache_clear()


def _v2_of_tax_credit_rated(new_field: dict[str, Any]) -> dict[str, Any]:
    raw = _raw("TaxCreditRated.v1.avsc")
    raw["fields"] = [*raw["fields"], new_field]
    return raw


def test_v1_data_reads_with_a_v2_that_adds_a_field_with_a_default(
        scratch_registry: Callable[[dict[str, Any]], int]) -> None:
    v1_data = registry.encode("TaxCreditRated", _samples("TaxCreditRated.v1.avsc")[0])  # before v2 exists
    v2_id = scratch_registry(_v2_of_tax_credit_rated(
        {"name": "review_round", "type": "int", "default": 1, "doc": "复评轮次 (1 = first assessment)"}))
    assert registry.schema_for("TaxCreditRated").version == 2
    assert registry.schema_id_of(v1_data) == 110  # still names its writer, v1
    name, rec = registry.decode(v1_data)
    assert name == "TaxCreditRated"
    assert rec["review_round"] == 1 and rec["level"] == "A" and rec["rated_on"] == date(2026, 4, 15)
    # and the newest version is what encode() writes from now on
    assert registry.schema_id_of(registry.encode("TaxCreditRated", {**rec, "review_round": 2})) == v2_id
    # the same data written explicitly "with version 1" decodes the same way
    assert registry.decode(registry.encode("TaxCreditRated", _samples("TaxCreditRated.v1.avsc")[0], version=1)) \
        == (name, rec)


def test_a_v2_that_adds_a_field_without_default_cannot_read_v1_data(
        scratch_registry: Callable[[dict[str, Any]], int]) -> None:
    v1_raw = _raw("TaxCreditRated.v1.avsc")
    v2_raw = _v2_of_tax_credit_rated({"name": "review_round", "type": "int", "doc": "复评轮次, no default"})
    v1_data = _encode(_parse(v1_raw), _samples("TaxCreditRated.v1.avsc")[0])
    # fastavro's resolution itself refuses: the reader field has no value in v1 data and no default
    with pytest.raises(SchemaResolutionError):
        fastavro.schemaless_reader(io.BytesIO(v1_data), _parse(v1_raw), _parse(v2_raw))
    # and so does the registry once such a v2 is the newest schema of the name
    framed = registry.encode("TaxCreditRated", _samples("TaxCreditRated.v1.avsc")[0])
    scratch_registry(v2_raw)
    with pytest.raises(registry.SchemaError, match="TaxCreditRated v1"):
        registry.decode(framed)


# --------------------------------------------------------------------------- published schemas are frozen


def _published() -> dict[str, str]:
    recorded: dict[str, str] = {}
    for n, line in enumerate(PUBLISHED.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"([0-9a-f]{64})  (\S+\.avsc)", line)
        assert m, f"published.sha256 line {n}: expected '<sha256>  <file>', got {line!r}"
        assert m[2] not in recorded, f"published.sha256 lists {m[2]} twice"
        recorded[m[2]] = m[1]
    return recorded


def test_published_schemas_are_not_edited_in_place() -> None:
    changed = [file for file, digest in _published().items()
               if not (AVRO / file).is_file() or _canonical_sha256(_raw(file)) != digest]
    assert changed == [], (
        f"published schema(s) changed or removed: {changed}. Never edit a published schema: add "
        "<Name>.v<N+1>.avsc with a new catalogue id (and a line in published.sha256) instead")


def test_every_catalogued_schema_is_in_the_published_list() -> None:
    missing = [file for file in _all_files() if file not in _published()]
    assert missing == [], (
        "add to schemas/avro/published.sha256: " + "; ".join(
            f"{_canonical_sha256(_raw(f))}  {f}" for f in missing))


def test_the_published_guard_sees_a_doc_only_edit() -> None:
    raw = _raw("AdministrativePenaltyImposed.v1.avsc")
    assert _canonical_sha256(raw) == _published()["AdministrativePenaltyImposed.v1.avsc"]
    raw["fields"][1]["doc"] += " "
    assert _canonical_sha256(raw) != _published()["AdministrativePenaltyImposed.v1.avsc"]
