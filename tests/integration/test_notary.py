"""The notary and the auditor's tools against the real stack (Kafka, PostgreSQL, every service).

Given a stream of submissions, when the notary is killed with SIGKILL in mid-stream and restarted,
then every committed record of credit.events is a leaf exactly once, in offset order, with the hash
of the record's bytes; every head signed before the kill is unchanged, every head's root is the
MTH recomputed from the log itself, the heads on credit.checkpoints verify, and a consistency
proof from a head before the kill to the newest head verifies.

Given an entity's history, an auditor gets it from the CLI and the API checked against the log,
its state as of dates equal to a fold of the log's own events, a bundle that verifies offline,
and each tampered bundle rejected with its reason."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger.audit import merkle
from ledger.audit.verify import check_head, parse_ledger_entry, verify_consistency
from ledger.domain.model import EntityState, evolve
from ledger.platform import config
from ops import stack as ops_stack
from ops import workload
from projections.rows import ledger_event as _event
from schemas import registry
from tests import helpers

N = 4000
CHUNK = 250
EVERY = 64


def notary_env() -> dict[str, str]:
    return {"LEDGER_NOTARY_EVERY": str(EVERY), "LEDGER_NOTARY_INTERVAL": "1"}


def start_notary(n) -> None:  # type: ignore[no-untyped-def]
    """Start the notary with small head intervals, once the stopped one has let go of its /metrics port
    (a process whose main thread has exited still holds its sockets until its last thread ends)."""
    port = n.s.metrics_port("notary")
    deadline = time.monotonic() + 30
    while not ops_stack.port_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    n.start(extra_env=notary_env())


@pytest.fixture(scope="module")
def notary(services):  # type: ignore[no-untyped-def]
    n = services["notary"]
    n.stop()
    start_notary(n)
    return n


def api(settings: config.Settings, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.api_port}{path}", timeout=30) as r:
        return json.loads(r.read())


def api_status(settings: config.Settings, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.api_port}{path}", timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def heads(settings: config.Settings) -> dict[tuple[int, int], tuple[bytes, int, bytes]]:
    return {(p, s): (bytes(r), ts, bytes(sig)) for p, s, r, ts, sig in helpers.pg_rows(
        settings, "select partition, tree_size, root, timestamp_ms, signature from notary.heads")}


async def committed(settings: config.Settings) -> dict[int, list[tuple[int, bytes]]]:
    per: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for p, o, _k, v in await helpers.read_topic(settings, registry.EVENTS):
        per[p].append((o, v))
    return {p: sorted(x) for p, x in per.items()}


async def notarised(settings: config.Settings, timeout: float = 120) -> dict[int, list[tuple[int, bytes]]]:
    """Wait until the notary's trees hold every committed record and a published head covers each."""
    log = await committed(settings)

    def done() -> bool:
        sizes = dict(helpers.pg_rows(settings, "select partition, tree_size from notary.trees"))
        covered = dict(helpers.pg_rows(settings, "select partition, max(tree_size) from notary.heads "
                                                 "where published group by partition"))
        return all(sizes.get(p) == len(x) and covered.get(p) == len(x) for p, x in log.items())

    await helpers.wait_until(done, timeout=timeout, what="the notary to cover the log")
    return log


def assert_leaves_are_the_log(settings: config.Settings, log: dict[int, list[tuple[int, bytes]]]) -> None:
    for p, recs in log.items():
        leaves = helpers.pg_rows(settings, "select leaf_index, kafka_offset, leaf_hash from notary.leaves "
                                           "where partition = %s order by leaf_index", (p,))
        assert [i for i, _, _ in leaves] == list(range(len(recs))), f"partition {p}: leaf indexes without gap"
        assert [o for _, o, _ in leaves] == [o for o, _ in recs], f"partition {p}: every committed record once"
        assert [bytes(h) for _, _, h in leaves] == [merkle.leaf_hash(v) for _, v in recs]


def public_key(settings: config.Settings) -> str:
    return (settings.keys_dir / "notary" / "notary.pub").read_text().strip()


async def test_sigkill_of_the_notary_leaves_no_gap_no_double_and_the_same_heads(settings, services, notary) -> None:
    rng = helpers.rng("notary-kill")
    subjects = workload.subjects(rng, 50)
    records = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(N)]
    await notarised(settings)
    start = dict(helpers.pg_rows(settings, "select partition, tree_size from notary.trees"))
    async with helpers.client(settings) as c:
        for i in range(0, N // 2, CHUNK):
            await c.submit_many(records[i:i + CHUNK])
        await helpers.wait_until(lambda: helpers.metric(settings, "notary", "ledger_notary_leaves_total") >= 500,
                                 timeout=60, interval=0.05, what="the notary in mid-stream")
        notary.kill()
        before = heads(settings)
        assert before, "heads were signed before the kill"
        for i in range(N // 2, N, CHUNK):
            await c.submit_many(records[i:i + CHUNK])
        start_notary(notary)
        await asyncio.gather(*(c.outcome(r["envelope"]["event_id"], timeout=120) for r in records))

    log = await notarised(settings)
    assert_leaves_are_the_log(settings, log)
    after = heads(settings)
    assert {k: v for k, v in after.items() if k in before} == before, "heads signed before the kill are unchanged"
    pub = public_key(settings)
    for (p, size), (root, _ts, _sig) in after.items():
        assert root == merkle.mth([merkle.leaf_hash(v) for _, v in log[p][:size]]), f"head {p}:{size}"
    # every multiple of EVERY (since this notary's start) has its head, whatever the kill interrupted
    for p, recs in log.items():
        first = (start.get(p, 0) // EVERY + 1) * EVERY
        assert {s for q, s in after if q == p} >= set(range(first, len(recs) + 1, EVERY))

    published: dict[tuple[int, int], dict[str, Any]] = {}
    for _p, _o, _k, value in await helpers.read_topic(settings, registry.CHECKPOINTS):
        _, h = registry.decode(value, "TreeHead")
        head = {**h, "root": h["root_hash"].hex(), "signature": h["signature"].hex()}
        check_head(head, pub)
        assert published.setdefault((h["partition"], h["tree_size"]), head) == head  # a repeat is the same head
    assert set(published) == set(after)

    # consistency from a head signed before the kill to the newest, through the query API
    p, old = max(before)
    newest = max(s for q, s in after if q == p)
    got = api(settings, f"/audit/consistency?partition={p}&from={old}&to={newest}")
    verify_consistency(old, newest, before[(p, old)][0], after[(p, newest)][0], [bytes.fromhex(x) for x in got["proof"]])
    assert got["from_head"]["tree_size"] == old and got["to_head"]["tree_size"] == newest


async def test_postgresql_stopped_immediately_mid_stream_and_restarted(settings, services, notary) -> None:
    rng = helpers.rng("notary-pg")
    subjects = workload.subjects(rng, 40)
    records = [workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i) for i in range(3000)]
    await notarised(settings)
    pg = ops_stack.Postgres(settings)
    retries = helpers.metric(settings, "notary", "ledger_notary_db_retries_total")
    leaves = helpers.metric(settings, "notary", "ledger_notary_leaves_total")
    async with helpers.client(settings) as c:
        for i in range(0, len(records), CHUNK):
            await c.submit_many(records[i:i + CHUNK])
        await helpers.wait_until(lambda: helpers.metric(settings, "notary", "ledger_notary_leaves_total") >= leaves + 300,
                                 timeout=60, interval=0.02, what="the notary in mid-stream")
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.sleep(2)
        await asyncio.to_thread(pg.start)
        await asyncio.gather(*(c.outcome(r["envelope"]["event_id"], timeout=120) for r in records))
    log = await notarised(settings)
    assert notary.pid() is not None, "the notary survives a database restart"
    assert helpers.metric(settings, "notary", "ledger_notary_db_retries_total") > retries
    assert_leaves_are_the_log(settings, log)
    for (p, size), (root, _ts, _sig) in heads(settings).items():
        assert root == merkle.mth([merkle.leaf_hash(v) for _, v in log[p][:size]]), f"head {p}:{size}"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=180,
                          cwd=config.ROOT)


async def submit(settings: config.Settings, phase: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    from ledger.client import submit_as_departments

    outcomes = await submit_as_departments(settings, phase)
    assert [o["status"] for o in outcomes] == ["ACCEPTED"] * len(phase), outcomes
    return outcomes


async def test_an_auditor_checks_history_as_of_and_a_bundle_and_sees_each_tampering_caught(
        settings, services, notary, tmp_path: Path) -> None:
    rng = helpers.rng("auditor")
    org, other = workload.subjects(rng, 2, persons_share=0.0)
    phases = workload.life(rng, org, 1)
    entity = (await submit(settings, phases[0]))[0]["entity_id"]
    other_entity = (await submit(settings, workload.honoured_life(other)))[0]["entity_id"]
    await helpers.projected(settings)
    await notarised(settings)
    pub_file = tmp_path / "notary.pub"
    assert run("projections.audit.auditor", "public-key", "--out", str(pub_file)).returncode == 0
    assert pub_file.read_text().strip() == public_key(settings)

    # an early bundle, and its head saved as trusted by a first verification
    early = tmp_path / "early.json"
    r = run("projections.audit.auditor", "export-bundle", entity, "--out", str(early))
    assert r.returncode == 0, r.stderr
    r = run("ledger.audit.verify", str(early), "--public-key", str(pub_file), "--save-head", str(tmp_path / "early-head.json"))
    assert r.returncode == 0 and "VERIFIED" in r.stdout, r.stdout

    await submit(settings, phases[1])  # the endings: repairs, revocations, delistings
    await helpers.projected(settings)
    await notarised(settings)

    # history: CLI and API, checked against the log
    r = run("projections.audit.auditor", "history", entity)
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout + r.stderr
    hist = api(settings, f"/audit/entities/{entity}/history")
    n = len(phases[0]) + len(phases[1])
    assert [e["version"] for e in hist["events"]] == list(range(1, n + 1))
    assert hist["divergences"] == [] and hist["checked_against_log"] == n
    assert all(e["valid_from"] and e["sequenced_at"] for e in hist["events"])

    # as-of through the API equals a fold of the log's own events
    entries = (await helpers.ledger_entries(settings, {entity}))[entity]
    events = [(e["sequenced_at"], _event(e, registry.decode(e["submission"])[1])) for e in entries]
    known_at = entries[len(phases[0]) - 1]["sequenced_at"]
    for valid_on in (date(2024, 1, 1), date(2025, 3, 1), date(2025, 9, 30), date(2026, 6, 1), None):
        for moment in (known_at, None):
            q = "&".join(x for x in (f"valid_on={valid_on}" if valid_on else "",
                                     f"known_at={moment.isoformat().replace('+00:00', 'Z')}" if moment else "") if x)
            got = api(settings, f"/audit/entities/{entity}/as-of?{q}")
            state = EntityState()
            for t, ev in events:
                if (valid_on is None or ev.valid_from <= valid_on) and (moment is None or t <= moment):
                    state = evolve(state, ev)
            assert got["state"] == json.loads(state.to_json()), (valid_on, moment)
            assert got["not_applicable"] == []
    r = run("projections.audit.auditor", "as-of", entity, "--valid-on", "2025-03-01")
    assert r.returncode == 0 and json.loads(r.stdout)["state"]["listings"], r.stderr

    # the fresh bundle, with a consistency proof from the early head the auditor trusts
    bundle = tmp_path / "bundle.json"
    r = run("projections.audit.auditor", "export-bundle", entity, "--out", str(bundle), "--trusted-head",
            str(tmp_path / "early-head.json"))
    assert r.returncode == 0, r.stderr
    r = run("ledger.audit.verify", str(bundle), "--public-key", str(pub_file), "--trusted-head",
            str(tmp_path / "early-head.json"), "--save-head", str(tmp_path / "trusted.json"))
    assert r.returncode == 0 and f"VERIFIED: {n} events" in r.stdout, r.stdout
    r = run("ledger.audit.verify", str(bundle), "--public-key", str(pub_file), "--department-keys", str(settings.keys_dir))
    assert r.returncode == 0 and "each signed by its department" in r.stdout, r.stdout
    # the events were submitted in batches: each entry keeps its batch proof, some from batches of several
    proofs_kept = [parse_ledger_entry(base64.b64decode(e["record"]))["batch_proof"]
                   for e in json.loads(bundle.read_text())["events"]]
    assert all(proofs_kept) and max(int.from_bytes(p[32:36], "big") for p in proofs_kept) > 1
    proofs = api(settings, f"/audit/entities/{entity}/proofs")
    assert [e["leaf_index"] for e in proofs["events"]] == [e["leaf_index"] for e in json.loads(bundle.read_text())["events"]]

    # each tampering is caught
    other_bundle = tmp_path / "other.json"
    assert run("projections.audit.auditor", "export-bundle", other_entity, "--out", str(other_bundle)).returncode == 0
    early_head = json.loads(early.read_text())["tree_head"]
    (tmp_path / "old-head.json").write_text(json.dumps(early_head))
    r = run("ledger.audit.tamper", str(bundle), "--out-dir", str(tmp_path / "t"), "--other", str(other_bundle),
            "--old-head", str(tmp_path / "old-head.json"))
    assert r.returncode == 0, r.stderr
    reasons = {
        "flipped-byte": "inclusion proof does not lead to the signed root",
        "dropped-event": "an event is missing or out of order",
        "swapped-events": "out of order",
        "forged-signature": "signature does not verify",
        "other-entity-proof": f"belongs to entity {other_entity}",
        "old-head": "another tree head's|not one for this tree head|does not cover leaf",
    }
    for attack, reason in reasons.items():
        r = run("ledger.audit.verify", str(tmp_path / "t" / f"{attack}.json"), "--public-key", str(pub_file))
        assert r.returncode == 1 and r.stdout.startswith("REJECTED"), (attack, r.stdout)
        assert any(x in r.stdout for x in reason.split("|")), (attack, r.stdout)
    # an operator holding the notary's key swaps a submission inside its signed batch (or alters its
    # proof), seals the chain and signs a head again: only the department keys catch it
    r = run("ledger.audit.tamper", str(bundle), "--out-dir", str(tmp_path / "n"), "--notary-key",
            str(settings.keys_dir / "notary" / "notary.key"))
    assert r.returncode == 0, r.stderr
    for attack in ("swapped-in-batch", "altered-batch-proof"):
        forged = str(tmp_path / "n" / f"{attack}.json")
        r = run("ledger.audit.verify", forged, "--public-key", str(pub_file))
        assert r.returncode == 0 and "VERIFIED" in r.stdout, (attack, r.stdout)
        r = run("ledger.audit.verify", forged, "--public-key", str(pub_file), "--department-keys", str(settings.keys_dir))
        assert r.returncode == 1 and "not in the batch its signature covers" in r.stdout, (attack, r.stdout)
    # the early bundle, honest but old, shown to an auditor who trusts the newer head: replayed
    r = run("ledger.audit.verify", str(early), "--public-key", str(pub_file), "--trusted-head", str(tmp_path / "trusted.json"))
    assert r.returncode == 1 and "old tree head replayed" in r.stdout, r.stdout


async def test_a_ledger_copy_that_differs_from_the_log_is_reported(settings, services, notary) -> None:
    rng = helpers.rng("divergence")
    (subject,) = workload.subjects(rng, 1, persons_share=0.0)
    outcomes = await submit(settings, [("xc-samr", workload.penalty(rng, subject, "xc-samr", i)) for i in range(3)])
    entity = outcomes[0]["entity_id"]
    await helpers.projected(settings)
    (orig,) = helpers.pg_rows(settings, "select hash from views.ledger_copy where entity_id = %s and entity_version = 2",
                              (entity,))
    helpers.pg_rows(settings, "update views.ledger_copy set hash = %s where entity_id = %s and entity_version = 2 "
                              "returning 1", (b"\x11" * 32, entity))
    try:
        r = run("projections.audit.auditor", "history", entity)
        assert r.returncode == 1 and "DIVERGENCE version 2" in r.stdout and "differs from the log" in r.stdout, r.stdout
        assert len(api(settings, f"/audit/entities/{entity}/history")["divergences"]) == 1
        r = run("projections.audit.auditor", "export-bundle", entity, "--out", "/dev/null")
        assert r.returncode == 1 and "disagree" in r.stderr
    finally:
        helpers.pg_rows(settings, "update views.ledger_copy set hash = %s where entity_id = %s and entity_version = 2 "
                                  "returning 1", (orig[0], entity))
    assert run("projections.audit.auditor", "history", entity).returncode == 0


def test_bad_audit_requests_are_answered_400_or_404_naming_the_reason(settings, services) -> None:
    for path, status, words in (
        ("/audit/entities/not-an-id/history", 400, "entity_id"),
        ("/audit/entities/uscc:91411002MA0000000X/history", 404, "unknown entity"),
        ("/audit/entities/uscc:91411002MA0000000X/as-of?valid_on=2025-13-01", 400, "valid_on"),
        ("/audit/heads?partition=9", 400, "partition"),
        ("/audit/consistency?partition=0&from=5&to=2", 400, "from"),
        ("/audit/consistency?partition=0&from=1&to=999999999", 400, "no head of size"),
    ):
        got, body = api_status(settings, path)
        assert got == status and words in json.dumps(body), (path, got, body)
