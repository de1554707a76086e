"""Tampered copies of an audit bundle, for watching the offline verifier catch each one.

    python -m ledger.audit.tamper BUNDLE --out-dir DIR [--other OTHER_BUNDLE] [--old-head HEAD.json]

writes into DIR one bundle per attack (each must be REJECTED by `python -m ledger.audit.verify`):

  flipped-byte.json        one byte of an event's record changed (the record is no longer the log's)
  dropped-event.json       an event left out of the middle of the history (or the only one after v1)
  swapped-events.json      two events exchanged (history reordered)
  forged-signature.json    the tree head's root replaced by another and the head signed with a key
                           that is not the notary's (and claiming the notary's key id)
  other-entity-proof.json  with --other: an event's record and proof replaced by those of another
                           entity's event (a real record, with a real proof, of someone else)
  old-head.json            with --old-head: the bundle's head replaced by an older signed head of the
                           partition (genuinely signed; it does not cover the newer events, and an
                           auditor holding a newer trusted head sees it as replayed)
  swapped-in-batch.json    with --notary-key: an operator holding every key of the ledger but no
  altered-batch-proof.json department's: the newest event's submission replaced by another event's
                           bytes (its batch proof and signature kept), or one byte of its batch proof's
                           path changed; the entity's chain sealed again, a new tree of the bundle's
                           records built and its head signed with the notary's key. Everything holds
                           but the department's batch signature: only `--department-keys` rejects it
                           ("not in the batch its signature covers").

Pure JSON manipulation; the bundles come from `python -m projections.audit export-bundle`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.audit import merkle
from ledger.audit.notary import Signer
from ledger.audit.verify import head_message, parse_ledger_entry
from ledger.platform import signing
from ledger.records import chain
from schemas import registry

Bundle = dict[str, Any]


def flipped_byte(b: Bundle) -> Bundle:
    out = copy.deepcopy(b)
    ev = out["events"][len(out["events"]) // 2]
    raw = bytearray(base64.b64decode(ev["record"]))
    raw[len(raw) // 2] ^= 0x01
    ev["record"] = base64.b64encode(bytes(raw)).decode()
    return out


def dropped_event(b: Bundle) -> Bundle:
    if len(b["events"]) < 2:
        raise ValueError("dropping an event needs a history of two events or more")
    out = copy.deepcopy(b)
    del out["events"][max(1, len(out["events"]) // 2 - 1)]
    return out


def swapped_events(b: Bundle) -> Bundle:
    if len(b["events"]) < 2:
        raise ValueError("swapping needs a history of two events or more")
    out = copy.deepcopy(b)
    ev = out["events"]
    ev[0], ev[1] = ev[1], ev[0]
    return out


def forged_signature(b: Bundle) -> Bundle:
    out = copy.deepcopy(b)
    head = out["tree_head"]
    head["root"] = bytes(32).hex()
    forger, _ = signing.new_keypair()
    head["signature"] = signing.sign(forger, head_message(head)).hex()
    return out


def other_entity_proof(b: Bundle, other: Bundle) -> Bundle:
    out = copy.deepcopy(b)
    out["events"][-1] = copy.deepcopy(other["events"][-1])
    return out


def old_head(b: Bundle, head: dict[str, Any]) -> Bundle:
    out = copy.deepcopy(b)
    out["tree_head"] = copy.deepcopy(head)
    return out


def _resealed(b: Bundle, change: Callable[[list[dict[str, Any]]], None], notary_private_key: str) -> Bundle:
    """The bundle's entries changed by `change`, the entity's chain sealed again from its first entry's
    prev_hash, and a tree of just these records whose head is signed with the notary's key."""
    out = copy.deepcopy(b)
    entries = [registry.decode(base64.b64decode(ev["record"]), "LedgerEntry")[1] for ev in out["events"]]
    change(entries)
    prev = entries[0]["prev_hash"]
    records = []
    for e in entries:
        e["prev_hash"] = prev
        records.append(chain.seal(e))
        prev = e["hash"]
    leaves = [merkle.leaf_hash(r) for r in records]

    def subtree(start: int, size: int) -> bytes:
        return merkle.mth(leaves[start:start + size])

    head = out["tree_head"]
    signed = Signer(notary_private_key, out["public_key"]).head(
        head["partition"], len(records), merkle.mth(leaves), head["last_offset"], head["timestamp_ms"])
    out["tree_head"] = signed.to_json()
    out.pop("consistency", None)
    for i, (ev, r) in enumerate(zip(out["events"], records, strict=True)):
        ev.update(record=base64.b64encode(r).decode(), leaf_index=i,
                  inclusion_proof=[h.hex() for h in merkle.inclusion_path(i, len(records), subtree)])
    return out


def _newest_batch_signed(b: Bundle) -> int:
    for i in range(len(b["events"]) - 1, -1, -1):
        if parse_ledger_entry(base64.b64decode(b["events"][i]["record"]))["batch_proof"]:
            return i
    raise ValueError("no event of the bundle is batch-signed")


def swapped_in_batch(b: Bundle, notary_private_key: str) -> Bundle:
    """The newest batch-signed event's submission replaced by another event's bytes (or, alone, by its
    own with one byte changed); its batch proof and signature kept."""
    k = _newest_batch_signed(b)

    def change(entries: list[dict[str, Any]]) -> None:
        others = [e["submission"] for e in entries if e["submission"] != entries[k]["submission"]]
        entries[k]["submission"] = others[0] if others else entries[k]["submission"][:-1] + bytes(
            [entries[k]["submission"][-1] ^ 1])

    return _resealed(b, change, notary_private_key)


def altered_batch_proof(b: Bundle, notary_private_key: str) -> Bundle:
    """One byte of the newest batch-signed event's batch proof changed: its first path step, or its
    root for a batch of one."""
    k = _newest_batch_signed(b)

    def change(entries: list[dict[str, Any]]) -> None:
        proof = bytearray(entries[k]["batch_proof"])
        proof[40 if len(proof) > 40 else 0] ^= 1
        entries[k]["batch_proof"] = bytes(proof)

    return _resealed(b, change, notary_private_key)


NOTARY_ATTACKS: dict[str, Callable[[Bundle, str], Bundle]] = {
    "swapped-in-batch": swapped_in_batch, "altered-batch-proof": altered_batch_proof,
}


ATTACKS: dict[str, Callable[[Bundle], Bundle]] = {
    "flipped-byte": flipped_byte, "dropped-event": dropped_event, "swapped-events": swapped_events,
    "forged-signature": forged_signature,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ledger.audit.tamper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--other", help="a bundle of another entity (for other-entity-proof)")
    p.add_argument("--old-head", help="an older signed head of the same partition (for old-head)")
    p.add_argument("--notary-key", help="the notary's private key file, hex (for swapped-in-batch and "
                   "altered-batch-proof: what only the department signatures catch)")
    a = p.parse_args(argv)
    bundle = json.loads(Path(a.bundle).read_text(encoding="utf-8"))
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Bundle] = {}
    for name, attack in ATTACKS.items():
        try:
            made[name] = attack(bundle)
        except ValueError as e:
            print(f"skipped {name}: {e}")
    if a.other:
        made["other-entity-proof"] = other_entity_proof(bundle, json.loads(Path(a.other).read_text(encoding="utf-8")))
    if a.old_head:
        made["old-head"] = old_head(bundle, json.loads(Path(a.old_head).read_text(encoding="utf-8")))
    if a.notary_key:
        key = Path(a.notary_key).read_text(encoding="utf-8").strip()
        for name, notary_attack in NOTARY_ATTACKS.items():
            try:
                made[name] = notary_attack(bundle, key)
            except ValueError as e:
                print(f"skipped {name}: {e}")
    for name, b in made.items():
        (out / f"{name}.json").write_text(json.dumps(b, indent=1) + "\n", encoding="utf-8")
        print(out / f"{name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
