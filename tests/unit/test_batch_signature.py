"""Batch signatures (ledger/records/batch.py): the level-by-level tree is RFC 9162's, every path leads
to the root, the offline verifier's algorithm accepts the same proofs, and anything altered fails."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.audit import merkle, verify
from ledger.platform import signing
from ledger.records import batch, submissions
from ops import workload


def values(n: int) -> list[bytes]:
    return [f"submission {i}".encode() * (i % 3 + 1) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000])
def test_the_tree_is_rfc_9162s(n: int) -> None:
    vs = values(n)
    leaves = [merkle.leaf_hash(v) for v in vs]
    root, paths = batch.tree(vs)
    assert root == merkle.mth(leaves)
    subtree = lambda start, size: merkle.mth(leaves[start:start + size])  # noqa: E731
    for i in range(n):
        assert list(paths[i]) == merkle.inclusion_path(i, n, subtree)
        proof = batch.Proof(root, n, i, paths[i])
        assert batch.root_of(vs[i], proof) == root
        assert verify.root_from_inclusion_proof(i, n, leaves[i], paths[i]) == root
        assert batch.Proof.decode(proof.encode()) == proof


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70), st.data())
def test_a_changed_value_index_or_path_does_not_lead_to_the_root(vs: list[bytes], data: st.DataObject) -> None:
    priv, _ = signing.new_keypair()
    _, proofs = batch.sign(vs, "xc-samr", "xc-samr", priv)
    i = data.draw(st.integers(0, len(vs) - 1))
    p = proofs[i]
    assert batch.included(vs[i], p)
    assert not batch.included(vs[i] + b"x", p)
    if len(vs) > 1 and vs[i] != vs[(i + 1) % len(vs)]:
        assert not batch.included(vs[i], batch.Proof(p.root, p.size, (i + 1) % len(vs), p.path))
    if p.path:
        assert not batch.included(vs[i], batch.Proof(p.root, p.size, p.index, p.path[:-1]))
        assert not batch.included(vs[i], batch.Proof(p.root, p.size, p.index, p.path + (p.root,)))


def test_the_signature_covers_signer_department_size_and_root() -> None:
    priv, pub = signing.new_keypair()
    vs = values(5)
    sig, proofs = batch.sign(vs, "ledger-gateway", "xc-samr", priv)
    root = proofs[0].root
    assert signing.verify(pub, batch.message("ledger-gateway", "xc-samr", 5, root), sig)
    assert not signing.verify(pub, batch.message("xc-samr", "xc-samr", 5, root), sig)
    assert not signing.verify(pub, batch.message("ledger-gateway", "xc-tax", 5, root), sig)
    assert not signing.verify(pub, batch.message("ledger-gateway", "xc-samr", 4, root), sig)


def test_a_single_submission_is_a_batch_of_one() -> None:
    root, paths = batch.tree([b"only"])
    assert root == batch.leaf_hash(b"only") and paths == [()]
    assert batch.included(b"only", batch.Proof(root, 1, 0, ()))


@pytest.mark.parametrize("data", [b"", bytes(39), bytes(41), bytes(32) + (0).to_bytes(4, "big") * 2,
                                  bytes(32) + (3).to_bytes(4, "big") + (3).to_bytes(4, "big")])
def test_a_malformed_proof_is_refused_by_name(data: bytes) -> None:
    with pytest.raises(batch.BadProof):
        batch.Proof.decode(data)


def test_the_offline_verifier_signs_off_the_same_message() -> None:
    assert verify.batch_message("ledger-gateway", "xc-samr", 7, bytes(range(32))) == \
        batch.message("ledger-gateway", "xc-samr", 7, bytes(range(32)))


def _records(n: int, department: str = "xc-samr") -> list[dict[str, Any]]:
    rng = random.Random(n)
    subjects = workload.subjects(rng, 5)
    return [workload.penalty(rng, rng.choice(subjects), department, seq=i) for i in range(n)]


def _items(subs: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> list[tuple[bytes, dict[str, bytes]]]:
    return [(v, dict(h)) for _, v, h in subs]


def test_a_poll_verifies_each_distinct_batch_once_and_remembers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    priv, pub = signing.new_keypair()
    keys = {"xc-samr": pub}
    recs = _records(12)
    first, second = submissions.make_batch(recs[:7], "xc-samr", priv), submissions.make_batch(recs[7:], "xc-samr", priv)
    verified: list[submissions.SignedBatch] = []
    real = submissions.batch_signed
    monkeypatch.setattr(submissions, "batch_signed", lambda c, k: verified.append(c) or real(c, k))
    memory = submissions.VerifiedBatches(capacity=1)
    # a poll holding part of the first batch and all of the second, interleaved
    poll = _items([first[0], second[0], first[3], second[1], second[2], second[3], second[4]])
    assert memory.check(poll, keys) == [True] * 7
    assert len(verified) == 2 and len(memory) == 1  # one check per batch; the oldest forgotten
    # the rest of the second batch in a later poll: only paths walked
    assert memory.check(_items(second[:2]), keys) == [True, True] and len(verified) == 2
    # a first-scheme submission beside them is verified on its own
    key, value, headers = submissions.make(recs[0], "xc-samr", priv)
    old = (value, {"department": b"xc-samr", "signature": signing.sign(priv, value)})
    assert memory.check([old, *_items(first[4:5])], keys) == [True, True] and len(verified) == 3


def test_a_poll_refuses_a_swapped_submission_and_a_batch_signed_by_another_key() -> None:
    priv, pub = signing.new_keypair()
    other, _ = signing.new_keypair()
    keys = {"xc-samr": pub}
    good = _items(submissions.make_batch(_records(4), "xc-samr", priv))
    forged = _items(submissions.make_batch(_records(3), "xc-samr", other))
    swapped = (good[2][0], good[1][1])  # another submission's bytes with this one's proof
    memory = submissions.VerifiedBatches()
    assert memory.check([good[0], swapped, forged[0], forged[1], good[3]], keys) == [True, False, False, False, True]
    assert memory.check([(b"", {"department": b"xc-samr", "signature": b"x", "batch": b"short"})], keys) == [False]
    assert memory.check([(b"v", {"department": b"xc-tax", "signature": b"x", "batch": b""})], keys) == [None]
    # forged batches are not remembered: the next poll checks them again
    assert memory.check(forged[2:], keys) == [False]


def test_an_older_entry_reads_with_empty_bytes_and_seals_again_unchanged() -> None:
    """A LedgerEntry v2 resolved to v3 gets b"" (not the JSON default "") for the new bytes fields, so it
    re-encodes in its own version with the same bytes (the projector's NUL path re-encodes entries)."""
    from ledger.records import chain
    from schemas import registry
    entry = {"entity_id": "uscc:X", "entity_version": 1, "event_id": "e-1", "event_type": "AdministrativePenaltyImposed",
             "category": "enterprise", "department": "xc-samr", "sequenced_at": 0, "submission_partition": 0,
             "submission_offset": 0, "warnings": [], "rules_versions": {"departments": 2}, "submission": b"\x00",
             "signature": b"s" * 64, "prev_hash": bytes(32), "hash": b""}
    sealed = chain.seal(dict(entry))
    assert sealed[1:5] == (4).to_bytes(4, "big")  # written as v2
    _, back = registry.decode(sealed, "LedgerEntry")
    assert back["batch_proof"] == b"" and back["client_signature"] == b"" and back["client_body"] == b""
    assert chain.seal({**back, "hash": b""}) == sealed
