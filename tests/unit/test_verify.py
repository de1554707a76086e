"""The notary's core and the offline verifier on bundles built in memory from real LedgerEntry
records (sealed into the hash chain as the sequencer seals them): an honest bundle verifies; every
tampering of ledger/audit/tamper.py is rejected with its reason."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.audit import merkle, notary, tamper
from ledger.audit.verify import VerificationFailed, key_id, parse_ledger_entry, verify_bundle
from ledger.platform import signing
from ledger.records import batch, chain

PRIV, PUB = signing.new_keypair()
DEPT_PRIV, DEPT_PUB = signing.new_keypair()
SIGNER = notary.Signer(PRIV, PUB)


def entry(entity: str, version: int, prev: bytes) -> tuple[bytes, bytes]:
    e = {"entity_id": entity, "entity_version": version, "event_id": f"{entity}-{version}",
         "event_type": "AdministrativePenaltyImposed", "category": "enterprise", "department": "xc-samr",
         "sequenced_at": datetime(2026, 3, 2, 8, 0, version, tzinfo=UTC), "submission_partition": 1,
         "submission_offset": version, "warnings": ["uscc.check_character"] if version == 2 else [],
         "submission": b"\x00\x00\x00\x00\x65" + entity.encode(),
         "signature": signing.sign(DEPT_PRIV, b"\x00\x00\x00\x00\x65" + entity.encode()),
         "prev_hash": prev, "hash": b""}
    record = chain.seal(e)
    return record, e["hash"]


class Ledger:
    """One partition: records at offsets with gaps (transaction markers), two entities among fillers."""

    def __init__(self, n_fillers: int = 40) -> None:
        self.records: list[tuple[int, bytes, str]] = []  # (offset, record, entity)
        prev: dict[str, bytes] = {}
        versions: dict[str, int] = {}
        offset = 0
        for i in range(n_fillers):
            entity = "uscc:A" if i % 9 == 2 else "uscc:B" if i % 11 == 5 else f"uscc:F{i}"
            versions[entity] = versions.get(entity, 0) + 1
            record, h = entry(entity, versions[entity], prev.get(entity, chain.GENESIS))
            prev[entity] = h
            self.records.append((offset, record, entity))
            offset += 2  # a commit marker after each record
        self.tree = notary.PartitionTree(0, merkle.Frontier(), 0, 0, 0)
        self.stored: dict[tuple[int, int], bytes] = {}
        self.heads: list[notary.Head] = []

    def notarise(self, upto: int) -> None:
        out = self.tree.append([(o, r) for o, r, _ in self.records[:upto]], SIGNER, every=8, interval_s=3600,
                               now_ms=lambda: 1_795_000_000_000)
        self.stored.update({(0, i): h for i, _, h in out.leaves})
        self.stored.update({(lv, i): h for lv, i, h in out.nodes})
        self.heads += out.heads

    def bundle(self, entity: str, head: notary.Head) -> dict[str, Any]:
        sub = merkle.subtree_from(notary.complete_from(self.stored))
        events = []
        for index, (offset, record, e) in enumerate(self.records):
            if e == entity and index < head.tree_size:
                events.append({"version": parse_ledger_entry(record)["entity_version"], "kafka_offset": offset,
                               "leaf_index": index, "record": base64.b64encode(record).decode(),
                               "inclusion_proof": [h.hex() for h in merkle.inclusion_path(index, head.tree_size, sub)]})
        return {"format": "credit-ledger-audit-bundle/1", "entity_id": entity, "partition": 0,
                "tree_head": head.to_json(), "public_key": PUB, "events": events}


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    led = Ledger()
    led.notarise(20)
    led.notarise(40)  # the same records again and more: the first 20 are not added twice
    return led


def test_the_tree_gets_every_record_once_heads_at_multiples_and_stored_nodes(ledger: Ledger) -> None:
    assert ledger.tree.frontier.size == 40
    assert ledger.tree.next_offset == 79
    assert [h.tree_size for h in ledger.heads] == [8, 16, 24, 32, 40]
    leaves = [merkle.leaf_hash(r) for _, r, _ in ledger.records]
    assert ledger.heads[-1].root == merkle.mth(leaves)
    assert ledger.heads[1].root == merkle.mth(leaves[:16])
    assert {k for k in ledger.stored if k[0] > 0} == {(4, 0), (4, 1)}  # levels 4, 8 ... only
    sub = merkle.subtree_from(notary.complete_from(ledger.stored))
    for m in range(40):
        assert merkle.inclusion_path(m, 37, sub) == merkle.inclusion_path(
            m, 37, lambda s, n: merkle.mth(leaves[s:s + n])) if m < 37 else True
    wanted = notary.plan(lambda c: merkle.consistency_proof(13, 40, merkle.subtree_from(c)))
    assert all((lv, i) for lv, i in wanted)
    assert len(notary.stored_ranges(wanted)) == len(wanted)


def test_the_signed_head_verifies_and_binds_its_fields(ledger: Ledger) -> None:
    h = ledger.heads[-1]
    assert h.key_id == key_id(PUB)
    v = verify_bundle(ledger.bundle("uscc:A", h), PUB)
    assert [e["version"] for e in v.events] == [1, 2, 3, 4, 5]
    assert v.tree_size == 40


def test_the_parser_reads_what_the_avro_library_wrote() -> None:
    record, h = entry("ric:" + "ab" * 16, 2, b"\x01" * 32)
    e = parse_ledger_entry(record)
    assert (e["entity_id"], e["entity_version"], e["warnings"], e["hash"]) == ("ric:" + "ab" * 16, 2,
                                                                               ["uscc.check_character"], h)
    assert e["sequenced_at"] == 1772438402000


REASONS = {
    "flipped-byte": "inclusion proof does not lead to the signed root",
    "dropped-event": "where 2 was expected",
    "swapped-events": "out of (ledger )?order",
    "forged-signature": "signature does not verify",
}


@pytest.mark.parametrize("attack", sorted(REASONS))
def test_each_tampering_is_rejected_with_its_reason(ledger: Ledger, attack: str) -> None:
    bundle = ledger.bundle("uscc:A", ledger.heads[-1])
    with pytest.raises(VerificationFailed, match=REASONS[attack]):
        verify_bundle(tamper.ATTACKS[attack](bundle), PUB)


def test_a_proof_for_another_entity_is_rejected(ledger: Ledger) -> None:
    a, b = ledger.bundle("uscc:A", ledger.heads[-1]), ledger.bundle("uscc:B", ledger.heads[-1])
    with pytest.raises(VerificationFailed, match="belongs to entity uscc:B, not to uscc:A"):
        verify_bundle(tamper.other_entity_proof(a, b), PUB)
    mixed = copy.deepcopy(a)  # A's record with the proof of B's event at another leaf
    mixed["events"][-1]["inclusion_proof"] = b["events"][-1]["inclusion_proof"]
    mixed["events"][-1]["leaf_index"] = b["events"][-1]["leaf_index"]
    with pytest.raises(VerificationFailed):
        verify_bundle(mixed, PUB)


def test_an_old_head_is_caught_as_not_covering_or_replayed(ledger: Ledger) -> None:
    new, old = ledger.heads[-1], ledger.heads[1]  # sizes 40 and 16
    bundle = ledger.bundle("uscc:A", new)
    with pytest.raises(VerificationFailed, match="not one for this tree head|does not cover leaf"):
        verify_bundle(tamper.old_head(bundle, old.to_json()), PUB)
    with pytest.raises(VerificationFailed, match="does not cover leaf 20"):  # A's event at leaf 20
        verify_bundle(tamper.old_head({**bundle, "events": bundle["events"][2:]}, old.to_json()), PUB)
    # an old bundle, honest in itself, shown to an auditor who already trusts the newer head
    old_bundle = ledger.bundle("uscc:A", old)
    assert verify_bundle(old_bundle, PUB).tree_size == 16
    with pytest.raises(VerificationFailed, match="old tree head replayed"):
        verify_bundle(old_bundle, PUB, trusted_head=new.to_json())


def test_a_newer_head_needs_a_consistency_proof_from_the_trusted_one(ledger: Ledger) -> None:
    old, new = ledger.heads[1], ledger.heads[-1]
    bundle = ledger.bundle("uscc:A", new)
    with pytest.raises(VerificationFailed, match="no consistency proof"):
        verify_bundle(bundle, PUB, trusted_head=old.to_json())
    sub = merkle.subtree_from(notary.complete_from(ledger.stored))
    bundle["consistency"] = {"from_size": 16, "proof": [h.hex() for h in merkle.consistency_proof(16, 40, sub)]}
    assert verify_bundle(bundle, PUB, trusted_head=old.to_json()).tree_size == 40
    forked = {**old.to_json(), "root": new.root.hex()}  # a trusted head of another history
    forked["signature"] = SIGNER.head(0, 16, new.root, old.last_offset, old.timestamp_ms).signature.hex()
    with pytest.raises(VerificationFailed, match="consistency: the proof does not lead"):
        verify_bundle(bundle, PUB, trusted_head=forked)


def test_a_head_signed_by_another_key_or_edited_is_rejected(ledger: Ledger) -> None:
    bundle = ledger.bundle("uscc:A", ledger.heads[-1])
    _, other_pub = signing.new_keypair()
    with pytest.raises(VerificationFailed, match="signed with key"):
        verify_bundle(bundle, other_pub)
    edited = copy.deepcopy(bundle)
    edited["tree_head"]["tree_size"] = 41
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verify_bundle(edited, PUB)


def test_department_signatures_are_checked_when_their_keys_are_given(ledger: Ledger) -> None:
    bundle = ledger.bundle("uscc:A", ledger.heads[-1])
    assert len(verify_bundle(bundle, PUB, department_keys={"xc-samr": DEPT_PUB}).events) == 5
    with pytest.raises(VerificationFailed, match="no public key given for department 'xc-samr'"):
        verify_bundle(bundle, PUB, department_keys={})
    _, other = signing.new_keypair()
    with pytest.raises(VerificationFailed, match="not signed by department 'xc-samr'"):
        verify_bundle(bundle, PUB, department_keys={"xc-samr": other})


def test_a_head_alone_is_checked_from_the_command_line(ledger: Ledger, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from ledger.audit.verify import main

    head = ledger.heads[-1].to_json()
    (tmp_path / "notary.pub").write_text(PUB + "\n")
    (tmp_path / "head.json").write_text(json.dumps(head))
    (tmp_path / "edited.json").write_text(json.dumps({**head, "root": "00" * 32}))
    args = ["--public-key", str(tmp_path / "notary.pub"), "--head"]
    assert main([*args, str(tmp_path / "head.json")]) == 0
    assert f"VERIFIED: tree head of credit.events partition {head['partition']}: 40 records" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "edited.json")]) == 1
    assert "REJECTED: tree head: the signature does not verify" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # a bundle and --head at once: usage error
        main([*args, str(tmp_path / "head.json"), str(tmp_path / "head.json")])
    assert e.value.code == 2


# ---------------------------------------------------------------------------- batch signatures

GW_PRIV, GW_PUB = signing.new_keypair()
KEYS = {"xc-samr": DEPT_PUB, "ledger-gateway": GW_PUB}


def batch_bundle(signer: str = "", key: str = DEPT_PRIV, signed_for: str = "xc-samr",
                 tweak: Any = lambda e, i: None) -> dict[str, Any]:
    """Entity uscc:Z's three events, each from one batch of five submissions (the other two are other
    entities'), signed by `key` as `signer` (empty: the department) for department `signed_for`;
    then notarised alone in a tree of three. `tweak(entry, i)` changes an entry before it is sealed."""
    values = [b"\x00\x00\x00\x00\x65" + f"submission {i}".encode() for i in range(5)]
    sig, proofs = batch.sign(values, signer or signed_for, signed_for, key)
    records, prev = [], chain.GENESIS
    for v, i in enumerate((0, 2, 4), 1):
        e = {"entity_id": "uscc:Z", "entity_version": v, "event_id": f"z-{v}", "event_type": "AdministrativePenaltyImposed",
             "category": "enterprise", "department": "xc-samr", "sequenced_at": datetime(2026, 3, 2, 8, 0, v, tzinfo=UTC),
             "submission_partition": 0, "submission_offset": i, "warnings": [], "rules_versions": {},
             "submission": values[i], "signature": sig, "signer": signer, "batch_proof": proofs[i].encode(),
             "client_signature": b"", "client_body": b"", "prev_hash": prev, "hash": b""}
        tweak(e, i)
        records.append(chain.seal(e))
        prev = e["hash"]
    leaves = [merkle.leaf_hash(r) for r in records]
    head = SIGNER.head(0, 3, merkle.mth(leaves), 5, 1_795_000_000_000)
    return {"format": "credit-ledger-audit-bundle/1", "entity_id": "uscc:Z", "partition": 0,
            "tree_head": head.to_json(), "public_key": PUB, "events": [
                {"version": n + 1, "kafka_offset": n, "leaf_index": n, "record": base64.b64encode(r).decode(),
                 "inclusion_proof": [h.hex() for h in merkle.inclusion_path(
                     n, 3, lambda s, k: merkle.mth(leaves[s:s + k]))]} for n, r in enumerate(records)]}


def test_a_batch_signed_history_verifies_by_department_or_by_the_attesting_intake() -> None:
    assert parse_ledger_entry(base64.b64decode(batch_bundle()["events"][0]["record"]))["batch_proof"]
    assert len(verify_bundle(batch_bundle(), PUB, department_keys=KEYS).events) == 3
    attested = batch_bundle(signer="ledger-gateway", key=GW_PRIV)
    assert len(verify_bundle(attested, PUB, department_keys=KEYS).events) == 3
    with pytest.raises(VerificationFailed, match="no public key given for intake 'ledger-gateway'"):
        verify_bundle(attested, PUB, department_keys={"xc-samr": DEPT_PUB})


def _flip(field: str, at: int) -> Any:
    def tweak(e: dict[str, Any], i: int) -> None:
        if i == 2:
            raw = bytearray(e[field])
            raw[at] ^= 1
            e[field] = bytes(raw)
    return tweak


@pytest.mark.parametrize(("bundle", "reason"), [
    # a path step changed: the submission's path no longer leads to the signed root
    (lambda: batch_bundle(tweak=_flip("batch_proof", 40)), "not in the batch its signature covers"),
    # the root changed: the path leads to the signed root, not to this one
    (lambda: batch_bundle(tweak=_flip("batch_proof", 0)), "not in the batch its signature covers"),
    # the index changed: the path is for another leaf
    (lambda: batch_bundle(tweak=_flip("batch_proof", 39)), "not in the batch its signature covers"),
    # the batch size changed: the path no longer fits the tree
    (lambda: batch_bundle(tweak=_flip("batch_proof", 35)), "does not fit its batch|not in the batch"),
    # signed by another key than the department's
    (lambda: batch_bundle(key=signing.new_keypair()[0]), "not signed by department 'xc-samr'"),
    # the department's own key, but the entry says an intake attested it
    (lambda: batch_bundle(tweak=lambda e, i: e.update(signer="ledger-gateway")),
     "not signed by intake 'ledger-gateway' attesting for department 'xc-samr'"),
    # a batch signed for another department
    (lambda: batch_bundle(signed_for="xc-tax"), "not signed by department 'xc-samr'"),
])
def test_a_wrong_path_root_signer_or_department_fails_with_its_reason(bundle: Any, reason: str) -> None:
    b = bundle()
    assert verify_bundle(b, PUB).tree_size == 3  # the ledger's own proofs hold: only the signature check sees it
    with pytest.raises(VerificationFailed, match=reason):
        verify_bundle(b, PUB, department_keys=KEYS)


def test_a_clients_detached_signature_is_checked_under_its_departments_key() -> None:
    body = b'{"envelope": {"event_id": "z-1"}}'

    def detached(body_sent: bytes) -> Any:
        return lambda e, i: e.update(client_signature=signing.sign(DEPT_PRIV, body), client_body=body_sent)

    assert len(verify_bundle(batch_bundle("ledger-gateway", GW_PRIV, tweak=detached(body)), PUB,
                             department_keys=KEYS).events) == 3
    with pytest.raises(VerificationFailed, match="client's own signature over the body it sent does not verify "
                                                 "under department 'xc-samr'"):
        verify_bundle(batch_bundle("ledger-gateway", GW_PRIV, tweak=detached(body + b" ")), PUB, department_keys=KEYS)


@pytest.mark.parametrize("attack", sorted(tamper.NOTARY_ATTACKS))
def test_a_submission_swapped_inside_its_batch_is_caught_by_the_department_keys_only(attack: str) -> None:
    forged = tamper.NOTARY_ATTACKS[attack](batch_bundle(), PRIV)
    assert verify_bundle(forged, PUB).tree_size == 3  # chain, tree and head hold: the operator signed them
    with pytest.raises(VerificationFailed, match="event 3.*not in the batch its signature covers"):
        verify_bundle(forged, PUB, department_keys=KEYS)
