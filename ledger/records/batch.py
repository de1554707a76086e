"""Batch signatures: one Ed25519 signature over the Merkle root of a batch of submissions.

A signer (a department with its own key, or an intake such as the HTTP gateway attesting what a
department's token sent) signs a batch of submission values at once:

    leaf  = SHA-256(0x00 || value)                 (RFC 9162 section 2.1.1)
    node  = SHA-256(0x01 || left || right)
    root  = the Merkle tree hash of the batch's leaves, in order (RFC 9162's MTH)
    signed message = message(signer, department, size, root)

and each submission carries its inclusion proof (`Proof`: root, batch size, its index, the audit
path) in the `batch` header. Checking one submission is then a few hashes up to the root plus, once
per distinct root, one Ed25519 verification. A single submission is a batch of one (its root is its
leaf hash, its path empty).

The tree is built level by level: leaves paired left to right, an unpaired last node carried up
unchanged. That is the same tree as RFC 9162's recursive definition (the left subtree always holds
the largest power of two of leaves), so the path of a leaf is its sibling on each level where it has
one. The offline verifier (ledger/audit/verify.py) checks the same proofs with its own code.

The message names the signer and the department, so an intake's attestation ("this intake received
these submissions from this department, authenticated by its token") can never pass for the
department's own signature, nor one department's signature for another's.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ledger.platform import signing

MESSAGE_PREFIX = b"credit-ledger/batch-signature/v1\n"
_SIZES = struct.Struct(">II")
MAX_BATCH = 1 << 20  # submissions per signed batch


class BadProof(ValueError):
    """The batch header cannot be read; the message says why."""


def leaf_hash(value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + value).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True)
class Proof:
    root: bytes
    size: int
    index: int
    path: tuple[bytes, ...]

    def encode(self) -> bytes:
        """root (32) | size, index (4 bytes each, big-endian) | the path (32 bytes per level)."""
        return self.root + _SIZES.pack(self.size, self.index) + b"".join(self.path)

    @staticmethod
    def decode(data: bytes) -> Proof:
        if len(data) < 40 or (len(data) - 40) % 32:
            raise BadProof(f"a batch proof is 40 + 32*k bytes long, this one has {len(data)}")
        size, index = _SIZES.unpack_from(data, 32)
        if not 0 <= index < size <= MAX_BATCH:
            raise BadProof(f"index {index} is not inside a batch of {size}")
        path = tuple(data[i:i + 32] for i in range(40, len(data), 32))
        return Proof(data[:32], size, index, path)


def message(signer: str, department: str, size: int, root: bytes) -> bytes:
    """The bytes a batch signature covers."""
    return MESSAGE_PREFIX + (f"signer={signer}\ndepartment={department}\nsize={size}\nroot={root.hex()}\n").encode()


def tree(values: list[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root of a batch and each value's audit path, in 2n hashes."""
    if not 1 <= len(values) <= MAX_BATCH:
        raise ValueError(f"a signed batch holds 1 to {MAX_BATCH} submissions, not {len(values)}")
    level = [leaf_hash(v) for v in values]
    paths: list[list[bytes]] = [[] for _ in values]
    # which node of the current level each leaf's path climbs through
    position = list(range(len(values)))
    while len(level) > 1:
        for leaf, at in enumerate(position):
            sibling = at ^ 1
            if sibling < len(level):
                paths[leaf].append(level[sibling])
            position[leaf] = at >> 1
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0], [tuple(p) for p in paths]


def root_of(value: bytes, proof: Proof) -> bytes:
    """The root that `value` at `proof.index` with `proof.path` leads to (BadProof if the path does
    not fit the batch size)."""
    h, index, size, used = leaf_hash(value), proof.index, proof.size, 0
    while size > 1:
        if index & 1:
            if used >= len(proof.path):
                raise BadProof("the audit path is shorter than the batch is deep")
            h, used = node_hash(proof.path[used], h), used + 1
        elif index + 1 < size:
            if used >= len(proof.path):
                raise BadProof("the audit path is shorter than the batch is deep")
            h, used = node_hash(h, proof.path[used]), used + 1
        index, size = index >> 1, (size + 1) >> 1
    if used != len(proof.path):
        raise BadProof("the audit path is longer than the batch is deep")
    return h


def sign(values: list[bytes], signer: str, department: str, private_key_hex: str) -> tuple[bytes, list[Proof]]:
    """Sign a batch: (the signature, each value's proof)."""
    root, paths = tree(values)
    signature = signing.sign(private_key_hex, message(signer, department, len(values), root))
    return signature, [Proof(root, len(values), i, p) for i, p in enumerate(paths)]


def included(value: bytes, proof: Proof) -> bool:
    """True when `value` is the leaf `proof.index` of the batch whose root `proof` names."""
    try:
        return root_of(value, proof) == proof.root
    except BadProof:
        return False
