"""Merkle trees in the style of RFC 9162 (Certificate Transparency 2.0), section 2.1: building side.

The hashes (leaf SHA-256(0x00 || leaf), node SHA-256(0x01 || left || right)) and the verification
algorithms live in ledger/audit/verify.py, the auditor's self-contained module; this module imports them,
so both sides hash the same way. Pure: nothing here reads Kafka or PostgreSQL.

* `Frontier`: the compact form of a growing tree (the roots of the complete subtrees that make up
  the first n leaves, one per bit of n). Appending a leaf and computing the root are O(log n); it is
  what the notary keeps in memory and persists with its position.
* `inclusion_path`, `consistency_proof`: RFC 9162 PATH(m, D[n]) and PROOF(m, D[n]) (2.1.3.1 and
  2.1.4.1), computed from a function `subtree(start, size)` giving MTH(D[start:start+size]); the
  algorithms only ever ask for ranges whose left part is a complete, aligned power-of-two
  subtree, so a store of such subtrees answers them in O(log n) look-ups (`subtree_from`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.audit.verify import leaf_hash, node_hash

__all__ = ["EMPTY_ROOT", "Frontier", "consistency_proof", "inclusion_path", "leaf_hash", "mth", "node_hash",
           "split", "subtree_from"]

EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")  # SHA-256("")

Subtree = Callable[[int, int], bytes]  # (start, size) -> MTH(D[start:start+size])


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf HASHES (the reference definition, recursive; for tests and small trees)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = split(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def subtree_from(complete: Callable[[int, int], bytes]) -> Subtree:
    """A subtree(start, size) function from `complete(level, index)`: the root of the complete subtree
    of 2**level leaves starting at leaf index * 2**level."""

    def subtree(start: int, size: int) -> bytes:
        if size & (size - 1) == 0 and start % size == 0:
            return complete(size.bit_length() - 1, start // size)
        k = split(size)
        return node_hash(subtree(start, k), subtree(start + k, size - k))

    return subtree


def inclusion_path(m: int, n: int, subtree: Subtree) -> list[bytes]:
    """RFC 9162 PATH(m, D[n]): the audit path of leaf m in the tree of the first n leaves."""
    if not 0 <= m < n:
        raise ValueError(f"leaf {m} is not in a tree of {n} leaves")
    path: list[bytes] = []
    start, size = 0, n
    while size > 1:
        k = split(size)
        if m - start < k:
            path.append(subtree(start + k, size - k))
            size = k
        else:
            path.append(subtree(start, k))
            start, size = start + k, size - k
    path.reverse()
    return path


def consistency_proof(m: int, n: int, subtree: Subtree) -> list[bytes]:
    """RFC 9162 PROOF(m, D[n]): shows the tree of n leaves extends the tree of its first m leaves."""
    if not 0 <= m <= n:
        raise ValueError(f"no consistency proof from {m} to {n} leaves")
    if m == 0 or m == n:
        return []
    proof: list[bytes] = []
    start, size, complete = 0, n, True
    while m != size:
        k = split(size)
        if m <= k:
            proof.append(subtree(start + k, size - k))
            size = k
        else:
            proof.append(subtree(start, k))
            start, m, size, complete = start + k, m - k, size - k, False
    if not complete:
        proof.append(subtree(start, m))
    proof.reverse()
    return proof


class Frontier:
    """The right edge of a growing tree: roots of its complete subtrees, largest first."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError(f"a frontier of {size} leaves has {bin(size).count('1')} subtrees, got {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def levels(self) -> list[int]:
        return [b for b in range(self.size.bit_length() - 1, -1, -1) if self.size >> b & 1]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf HASH; returns the complete subtrees it closed: (level, index, hash), leaf first."""
        closed = [(0, self.size, leaf)]
        h, level = leaf, 0
        while self.size >> level & 1:  # a complete subtree of this level is waiting on the left
            h = node_hash(self.hashes.pop(), h)
            level += 1
            closed.append((level, self.size >> level, h))
        self.hashes.append(h)
        self.size += 1
        return closed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        return cls(size, [data[i:i + 32] for i in range(0, len(data), 32)])
