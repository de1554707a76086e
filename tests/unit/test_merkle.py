"""RFC 9162 Merkle trees: the builder (ledger/audit/merkle.py) against the RFC's recursive definitions,
the Certificate Transparency test vectors, and the verifier (ledger/audit/verify.py), which must accept
every honest proof and reject every altered one."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit import merkle
from ledger.audit.verify import VerificationFailed, root_from_inclusion_proof, verify_consistency

# The leaves and roots of the RFC 6962 / 9162 reference test data (certificate-transparency
# merkle tree tests): the root of the first n leaves for n = 1..8.
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             b"\x50\x51\x52\x53\x54\x55\x56\x57", bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


# The RFC's definitions, written as literally as possible (the reference).
def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = merkle.split(n)
    if m < k:
        return ref_path(m, d[:k]) + [merkle.mth(d[k:])]
    return ref_path(m - k, d[k:]) + [merkle.mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [merkle.mth(d)]
    k = merkle.split(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [merkle.mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [merkle.mth(d[:k])]


def over(d: list[bytes]) -> merkle.Subtree:
    return lambda start, size: merkle.mth(d[start:start + size])


def test_roots_of_the_rfc_test_vectors() -> None:
    hashed = [merkle.leaf_hash(x) for x in CT_LEAVES]
    assert merkle.mth([]) == hashlib.sha256(b"").digest()
    f = merkle.Frontier()
    for n in range(1, 9):
        assert merkle.mth(hashed[:n]).hex() == CT_ROOTS[n - 1]
        f.append(hashed[n - 1])
        assert f.root().hex() == CT_ROOTS[n - 1]


def test_the_rfc_example_proofs() -> None:
    # RFC 9162 2.1.5: the tree of 7 leaves d0..d6. The audit path of d0 is [b, h, l] and of d3 [c, g, l];
    # the consistency proof between the 3-leaf and the 7-leaf tree is [c, d, g, l].
    d = [merkle.leaf_hash(x) for x in CT_LEAVES[:7]]
    b, c = d[1], d[2]
    g = merkle.node_hash(d[0], d[1])
    h = merkle.node_hash(d[2], d[3])
    l_ = merkle.mth(d[4:7])
    assert merkle.inclusion_path(0, 7, over(d)) == [b, h, l_]
    assert merkle.inclusion_path(3, 7, over(d)) == [c, g, l_]
    assert merkle.consistency_proof(3, 7, over(d)) == [c, d[3], g, l_]
    assert merkle.consistency_proof(4, 7, over(d)) == [l_]
    assert merkle.consistency_proof(6, 7, over(d)) == [merkle.node_hash(d[4], d[5]), d[6], merkle.mth(d[:4])]


@pytest.mark.parametrize("n", range(1, 34))
def test_every_path_and_proof_of_small_trees_equals_the_reference_and_verifies(n: int) -> None:
    d = leaves(n)
    root = merkle.mth(d)
    stored = merkle.subtree_from(lambda level, i: merkle.mth(d[i << level:(i + 1) << level]))
    for m in range(n):
        path = merkle.inclusion_path(m, n, stored)
        assert path == ref_path(m, d) == merkle.inclusion_path(m, n, over(d))
        assert root_from_inclusion_proof(m, n, d[m], path) == root
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, n, stored)
        assert proof == (ref_subproof(m, d, True) if m < n else [])
        verify_consistency(m, n, merkle.mth(d[:m]), root, proof)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_any_altered_proof_fails(n: int, data: st.DataObject) -> None:
    d = leaves(n)
    root = merkle.mth(d)
    m = data.draw(st.integers(0, n - 1))
    path = merkle.inclusion_path(m, n, over(d))
    assert root_from_inclusion_proof(m, n, d[m], path) == root
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != m))
        assert _root_or_none(other, n, d[m], path) != root  # the proof is for leaf m only
        assert _root_or_none(m, n, d[other], path) != root
        i = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:i], bytes([path[i][0] ^ 1]) + path[i][1:], *path[i + 1:]]
        assert _root_or_none(m, n, d[m], bad) != root
        assert _root_or_none(m, n, d[m], path[:-1]) != root
    m2 = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m2, n, over(d))
    verify_consistency(m2, n, merkle.mth(d[:m2]), root, proof)
    if proof:
        with pytest.raises(VerificationFailed):
            verify_consistency(m2, n, merkle.mth(d[:m2]), root, proof[:-1])
        with pytest.raises(VerificationFailed):
            verify_consistency(m2, n, merkle.leaf_hash(b"other history"), root, proof)


def _root_or_none(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    try:
        return root_from_inclusion_proof(m, n, leaf, path)
    except VerificationFailed:
        return None


def test_frontier_closes_subtrees_and_round_trips() -> None:
    d = leaves(1000)
    f = merkle.Frontier()
    closed: dict[tuple[int, int], bytes] = {}
    for i, x in enumerate(d):
        for level, index, h in f.append(x):
            closed[(level, index)] = h
        if i % 97 == 0:
            f = merkle.Frontier.from_bytes(f.size, f.to_bytes())  # what the notary persists
        assert f.root() == merkle.mth(d[:i + 1])
    assert closed[(0, 999)] == d[999]
    assert closed[(9, 0)] == merkle.mth(d[:512])
    assert closed[(3, 5)] == merkle.mth(d[40:48])
    assert len(closed) == sum(1000 >> lv for lv in range(10))
    with pytest.raises(ValueError):
        merkle.Frontier(3, [d[0]])
