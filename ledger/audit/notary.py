"""The notary's pure core: one RFC 9162 tree per partition of credit.events, signed tree heads, and
the plan of which stored subtree hashes a proof needs. No Kafka, no PostgreSQL (consumers/notary/service.py
does the I/O; projections/audit/reads.py reads the stored trees).

What is stored per partition (schema `notary`, projections/migrations/007_notary.sql):
* every leaf hash with its leaf index and Kafka offset (leaf index = position among the committed
  records of the partition; offsets have gaps where transaction markers are);
* the root of every complete, aligned subtree whose level is a multiple of STRIDE (16, 256, 4096
  ... leaves), so that any complete subtree is the hash of at most 2**(STRIDE-1) stored ones;
* the frontier (ledger/audit/merkle.py) with the consumer position, and every signed head.

A head is made when the tree reaches a multiple of `every` leaves (so the same ledger always gives
heads at the same sizes with the same roots) and, between those, when `interval` seconds passed
since the last head and the tree grew.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.audit.merkle import Frontier, leaf_hash, mth
from ledger.audit.verify import head_message, key_id
from ledger.platform import signing
from ledger.platform.clock import SYSTEM

STRIDE = 4
LEDGER_TOPIC = "credit.events"


def notary_keys_dir(keys_dir: Path) -> Path:
    """Where the notary's key pair lives (notary.key, notary.pub): apart from the departments' keys."""
    return keys_dir / "notary"


@dataclass(frozen=True)
class Head:
    partition: int
    tree_size: int
    root: bytes
    timestamp_ms: int
    last_offset: int
    key_id: str
    signature: bytes
    topic: str = LEDGER_TOPIC

    def signed_fields(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "tree_size": self.tree_size,
                "root": self.root.hex(), "timestamp_ms": self.timestamp_ms, "key_id": self.key_id}

    def to_json(self) -> dict[str, Any]:
        """The form auditors handle (bundles, --trusted-head files, the query API)."""
        return {**self.signed_fields(), "last_offset": self.last_offset, "signature": self.signature.hex()}

    def to_record(self) -> dict[str, Any]:
        """The TreeHead Avro record published on credit.checkpoints."""
        return {"topic": self.topic, "partition": self.partition, "tree_size": self.tree_size,
                "root_hash": self.root, "timestamp_ms": self.timestamp_ms, "last_offset": self.last_offset,
                "key_id": self.key_id, "signature": self.signature}


class Signer:
    def __init__(self, private_key_hex: str, public_key_hex: str) -> None:
        self.private_key_hex = private_key_hex
        self.public_key_hex = public_key_hex
        self.key_id = key_id(public_key_hex)

    def head(self, partition: int, size: int, root: bytes, last_offset: int, timestamp_ms: int) -> Head:
        unsigned = {"topic": LEDGER_TOPIC, "partition": partition, "tree_size": size, "root": root.hex(),
                    "timestamp_ms": timestamp_ms, "key_id": self.key_id}
        sig = signing.sign(self.private_key_hex, head_message(unsigned))
        return Head(partition, size, root, timestamp_ms, last_offset, self.key_id, sig)


@dataclass
class Appended:
    """What one batch adds to a partition's tree: rows to store and heads to publish."""

    leaves: list[tuple[int, int, bytes]] = field(default_factory=list)  # (leaf index, offset, leaf hash)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # (level, node index, hash)
    heads: list[Head] = field(default_factory=list)


class PartitionTree:
    """A partition's growing tree, as the notary keeps it between batches."""

    def __init__(self, partition: int, frontier: Frontier, next_offset: int, last_head_size: int,
                 last_head_ms: int) -> None:
        self.partition = partition
        self.frontier = frontier
        self.next_offset = next_offset
        self.last_offset = next_offset - 1
        self.last_head_size = last_head_size
        self.last_head_ms = last_head_ms

    def append(self, records: Iterable[tuple[int, bytes]], signer: Signer, every: int, interval_s: float,
               now_ms: Callable[[], int] = SYSTEM.now_ms) -> Appended:
        """Add (offset, record bytes) in offset order; return the rows and heads of this batch."""
        out = Appended()
        for offset, value in records:
            if offset < self.next_offset:
                continue  # delivered again after a seek: already a leaf
            h = leaf_hash(value)
            out.leaves.append((self.frontier.size, offset, h))
            out.nodes.extend(c for c in self.frontier.append(h)[1:] if c[0] % STRIDE == 0)
            self.next_offset, self.last_offset = offset + 1, offset
            if self.frontier.size % every == 0:
                out.heads.append(self._head(signer, now_ms()))
        if (self.frontier.size > self.last_head_size
                and now_ms() - self.last_head_ms >= interval_s * 1000):
            out.heads.append(self._head(signer, now_ms()))
        return out

    def _head(self, signer: Signer, ts: int) -> Head:
        head = signer.head(self.partition, self.frontier.size, self.frontier.root(), self.last_offset, ts)
        self.last_head_size, self.last_head_ms = head.tree_size, ts
        return head


# --------------------------------------------------------------------------- reading stored trees


def plan(complete_calls: Callable[[Callable[[int, int], bytes]], Any]) -> set[tuple[int, int]]:
    """The complete subtrees (level, index) a proof computation asks for (run it once with a recorder)."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    complete_calls(record)
    return wanted


def stored_ranges(wanted: Iterable[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """For each wanted complete subtree: (stored level, first index, end index) of the stored hashes
    (leaves at level 0, nodes at multiples of STRIDE) it is made of."""
    out = []
    for level, index in wanted:
        base = level - level % STRIDE
        span = 1 << (level - base)
        out.append((base, index * span, (index + 1) * span))
    return out


def complete_from(stored: dict[tuple[int, int], bytes]) -> Callable[[int, int], bytes]:
    """complete(level, index) from stored hashes {(stored level, index): hash}."""

    def complete(level: int, index: int) -> bytes:
        base = level - level % STRIDE
        span = 1 << (level - base)
        try:
            parts = [stored[(base, i)] for i in range(index * span, (index + 1) * span)]
        except KeyError as e:
            raise LookupError(f"the notary has not stored subtree {e.args[0]} (tree not that large yet?)") from None
        return parts[0] if span == 1 else mth(parts)

    return complete
