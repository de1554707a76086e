"""The demo workload, end to end through the running stack (ops/demo brings the stack up first).

Some twenty source departments (departments.v2) submit administrative penalties for Xuchang
enterprises, individual businesses and natural persons; a few submissions are wrong on purpose (a malformed credit code, a department
emitting an event type it may not, a forged signature, an unsigned one, a resubmission, an event id
reused with other content). It prints every outcome class, then what the PostgreSQL view shows, and
goes through every part that is built: the red list, the query API, the portal, the credit office's
numbered 红黑榜 of last month (drafted, reviewed, approved on the ledger; ops/demo_releases.py) with
key natural persons, coverage and a county's page, the feeds, the audit and a rebuild; the department
supervision: its counts checked against a recount of the topics and this month's assessment of the
departments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from ledger.client import LedgerClient, submit_as_departments
from ledger.domain import identity
from ledger.platform import config, signing
from ledger.records import submissions
from ledger.rules import loader
from ops import (
    demo_access,
    demo_audit,
    demo_cluster,
    demo_faults,
    demo_feeds,
    demo_honours,
    demo_objections,
    demo_releases,
    demo_report,
    demo_supervision,
    workload,
)
from ops.root import CLOCK
from ops.stack import with_brokers
from projections import publicity
from schemas import registry


def _line(text: str = "") -> None:
    print(text, flush=True)


async def run(n_events: int, n_subjects: int, seed: int) -> int:
    s = with_brokers(config.load(), None)  # the cluster's size as the stack directory recorded it
    rng = random.Random(seed)
    subjects = workload.subjects(rng, n_subjects)
    departments = list(workload.ALL_PENALTY_DEPARTMENTS)
    per_department: dict[str, list[dict[str, Any]]] = {d: [] for d in departments}
    for i in range(n_events):
        d = departments[i % len(departments)]
        per_department[d].append(workload.penalty(rng, rng.choice(subjects), d, seq=seed % 100000 * 1000 + i))

    _line(f"== The register feed: {n_subjects} subjects of the workload and {n_subjects // 5} registered entities "
          "without any credit record yet (coverage is measured against it)")
    unrecorded = workload.subjects(rng, n_subjects // 5)
    register = [workload.registered(x, date(2020, 1, 2)) for x in subjects + unrecorded]
    reg = await submit_as_departments(s, register, timeout=120)
    _line(f"   {dict(Counter(o['status'] for o in reg))}")

    _line(f"\n== Submitting {n_events} administrative penalties for {n_subjects} subjects "
          f"from {len(departments)} departments (seed {seed})")
    started = time.monotonic()
    outcomes: list[dict[str, Any]] = []
    clients = {d: LedgerClient.of(s, d) for d in departments}
    for c in clients.values():
        await c.start()
    try:
        results = await asyncio.gather(*(clients[d].submit_many_and_wait(per_department[d]) for d in departments))
        for r in results:
            outcomes.extend(r)
        elapsed = time.monotonic() - started
        counts = Counter(o["status"] for o in outcomes)
        _line(f"   {dict(counts)} in {elapsed:.2f} s ({len(outcomes) / elapsed:.0f} events/s including the wait "
              f"for every outcome)")
        warned = [o for o in outcomes if o["warnings"]]
        if warned:
            _line(f"   {len(warned)} accepted with a warning for review, e.g. {warned[0]['warnings']}")

        _line("\n== Submissions that must be refused or recognised")
        samr = clients["xc-samr"]
        original = per_department["xc-samr"][0]
        cases: list[tuple[str, Any]] = []

        bad_code = copy.deepcopy(original)
        bad_code["envelope"]["event_id"] = str(uuid.uuid4())
        bad_code["envelope"]["subject"]["id"] = "91411000MA4"  # truncated code
        bad_code["envelope"]["subject"]["id_type"] = "USCC"
        cases.append(("a malformed unified social credit code", bad_code))

        broken_id = copy.deepcopy(original)
        broken_id["envelope"]["event_id"] = "许市监罚\n" + str(uuid.uuid4())  # a line break pasted into the id
        cases.append(("an event id with a line break in it", broken_id))

        again = copy.deepcopy(original)
        cases.append(("the same event submitted again", again))

        conflict = copy.deepcopy(original)
        conflict["fine_fen"] = (conflict["fine_fen"] or 0) + 100
        cases.append(("the same event id with another fine", conflict))

        home = original["envelope"]["subject"]
        home_partition = submissions.partition_of(submissions.submission_key(home["id_type"], home["id"]))
        elsewhere = next(sub for sub in workload.subjects(rng, 40, persons_share=0.0)
                         if submissions.partition_of(submissions.submission_key("USCC", sub.id)) != home_partition)
        reused = workload.penalty(rng, elsewhere, "xc-samr", rng.randrange(10**6),
                                  event_id=original["envelope"]["event_id"])
        cases.append(("the same event id for a company judged in another partition", reused))

        for label, rec in cases:
            try:
                out = await samr.submit_and_wait(rec)
            except registry.SchemaError as exc:
                _line(f"   {label}: refused before sending: {exc}")
                continue
            _describe(label, out)

        court = LedgerClient.of(s, "xc-court")
        await court.start()
        try:
            wrong_dept = copy.deepcopy(original)
            wrong_dept["envelope"]["event_id"] = str(uuid.uuid4())
            wrong_dept["envelope"]["source_department"] = "xc-court"
            _describe("the court submitting an administrative penalty", await court.submit_and_wait(wrong_dept))
        finally:
            await court.stop()

        forged = copy.deepcopy(original)
        forged["envelope"]["event_id"] = str(uuid.uuid4())
        key, value, _ = submissions.make(forged, "xc-samr", signing.private_key(s.keys_dir, "xc-tax"))
        await samr.producer.send_and_wait(registry.SUBMISSIONS.name, key=key, value=value, headers=[
            ("department", b"xc-samr"), ("signature", signing.sign(signing.private_key(s.keys_dir, "xc-tax"), value)),
            ("event-id", forged["envelope"]["event_id"].encode())])
        _describe("a penalty in the market regulator's name signed with the tax bureau's key",
                  await samr.outcome(forged["envelope"]["event_id"]))

        unsigned = copy.deepcopy(original)
        unsigned["envelope"]["event_id"] = str(uuid.uuid4())
        key, value, _ = submissions.make(unsigned, "xc-samr", signing.private_key(s.keys_dir, "xc-samr"))
        await samr.producer.send_and_wait(registry.SUBMISSIONS.name, key=key, value=value,
                                          headers=[("event-id", unsigned["envelope"]["event_id"].encode())])
        _describe("an unsigned submission", await samr.outcome(unsigned["envelope"]["event_id"]))
    finally:
        for c in clients.values():
            await c.stop()

    _line("\n== Every event family: the lives of 20 organisations (licences, penalties, court, tax, wage-arrears"
          " and procurement lists, repairs, expiries, feedback) and 10 red-list organisations")
    lives = [workload.life(rng, subject, seed % 100000 * 100 + i)
             for i, subject in enumerate(workload.subjects(rng, 20, persons_share=0.0))]
    phases = [[e for life in lives for e in life[0]] +
              [e for subject in workload.subjects(rng, 10, persons_share=0.0) for e in workload.honoured_life(subject)],
              [e for life in lives for e in life[1]]]
    family_outcomes = []
    for phase in phases:
        family_outcomes += await submit_as_departments(s, phase)
    counts = Counter(o["status"] for o in family_outcomes)
    _line(f"   {dict(counts)} for {len({o['entity_id'] for o in family_outcomes})} entities")
    for o in family_outcomes:
        if o["status"] != "ACCEPTED":
            _describe("unexpected", o)

    gateway_outcomes = await _show_gateway_and_csv(s, rng)
    await _show_id_number_in_code_column(s, rng)

    accepted = [o for o in reg + outcomes + family_outcomes + gateway_outcomes if o["status"] == "ACCEPTED"]
    await _wait_projected(s, accepted)
    _show_views(s)
    await _show_expiry_trigger_feedback(s, rng)
    await demo_honours.show(s, rng, _line, lambda outs: _wait_projected(s, outs))
    objector = await demo_objections.show(s, rng, _line, lambda outs: _wait_projected(s, outs))
    await demo_releases.show(s, rng, _line, lambda outs: _wait_projected(s, outs))
    await _show_query_api(s, family_outcomes[-1], rng)
    await _show_portal(s, rng)
    await demo_feeds.show(s, family_outcomes, _line)
    await demo_supervision.show(s, loader.load(), _line)
    await demo_audit.show_audit(s, family_outcomes[0]["entity_id"], family_outcomes[len(family_outcomes) // 3]["entity_id"])
    person = next((o["entity_id"] for o in outcomes if o["status"] == "ACCEPTED" and o["entity_id"].startswith("ric:")), None)
    await demo_report.show(s, rng, objector, person, _line)
    await demo_access.show(s, _line)
    await demo_cluster.show(s, rng, _line)
    await demo_faults.show(s, _line)
    return await _show_rebuild(s)


async def _show_rebuild(s: config.Settings) -> int:
    """Rebuild every view from the ledger as a bulk load with two worker processes and switch over
    (docs/architecture.md)."""
    _line("\n== Rebuild of every view from offset 0 (python -m consumers.projector.rebuild --workers 2): a bulk load "
          "by two worker processes, digests compared with the live views, atomic switch")
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "consumers.projector.rebuild", "--workers", "2"],
                                  env={**os.environ, "PYTHONPATH": str(config.ROOT)}, capture_output=True,
                                  text=True, timeout=900)
    for text in run.stderr.splitlines():
        if text.startswith(("rebuilding", "loaded", "applied", "switched", "the rebuilt views differ", "nothing was")):
            _line(f"   {text}")
    if run.returncode != 0:
        _line(f"   the rebuild exited with status {run.returncode}")
    return run.returncode


def _describe(label: str, out: dict[str, Any]) -> None:
    if out["status"] in ("ACCEPTED", "DUPLICATE"):
        _line(f"   {label}: {out['status']} (entity version {out['entity_version']}, ledger position "
              f"{out['ledger_partition']}:{out['ledger_offset']})")
    else:
        for r in out["reasons"]:
            _line(f"   {label}: {out['status']} [{r['code']}] field {r['field']}: {r['message']}")


async def _wait_projected(s: config.Settings, accepted: list[dict[str, Any]], timeout: float = 60) -> None:
    """Wait until the views hold every accepted entry; give up only when the projector has made no
    progress for `timeout` seconds (a stack whose views start empty catches up first, with progress)."""
    need: dict[int, int] = {}
    for o in accepted:
        need[o["ledger_partition"]] = max(need.get(o["ledger_partition"], 0), o["ledger_offset"] + 1)
    deadline, last, said = time.monotonic() + timeout, None, time.monotonic()
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            have = dict(conn.execute("select partition, next_offset from views.positions where topic = %s",
                                     (registry.EVENTS.name,)).fetchall())
            behind = sum(max(0, o - have.get(p, 0)) for p, o in need.items())
            if behind == 0:
                return
            if have != last:
                deadline, last = time.monotonic() + timeout, have
            if time.monotonic() - said > 5:
                _line(f"   (the views are catching up: {behind:,} ledger entries to go)")
                said = time.monotonic()
            await asyncio.sleep(0.2)
    raise SystemExit(f"the projector made no progress for {timeout:.0f} s; see ops/stack logs")


def _show_views(s: config.Settings) -> None:
    with psycopg.connect(s.pg_dsn, autocommit=True, options="-c search_path=views") as conn:
        total, entities = conn.execute("select count(*), count(distinct entity_id) from ledger_copy").fetchone()
        _line(f"\n== PostgreSQL views: {total} ledger entries for {entities} entities")
        _line("   the five credit databases (entities, mean score, grades):")
        for row in conn.execute("select category, count(*), round(avg(score)), "
                                "string_agg(distinct grade, '') from entities group by 1 order by 1"):
            _line("     {:<20} {:>6} entities, mean score {:>3}, grades {}".format(*row))
        _line("   black and red lists (active / ended):")
        for kind, active, ended in conn.execute(
                "select list_kind, count(*) filter (where status = 'active'), count(*) filter (where status <> "
                "'active') from list_entries group by 1 order by 1"):
            _line(f"     {kind:<22} {active:>5} active {ended:>5} ended")
        _line("   double publicity: penalties and licences by status, and records past the 7-working-day deadline:")
        for kind, status, n, late in conn.execute(
                "select kind, status, count(*), count(*) filter (where late) from publicity group by 1, 2 "
                "order by 1, 2"):
            _line(f"     {kind:<8} {status:<10} {n:>6} ({late} late)")
        _line("   lowest credit scores, with their reasons (natural persons' ID numbers masked):")
        for name, public_id, score, grade, reasons in conn.execute(
                "select name, public_id, score, grade, grade_reasons from entities order by score, entity_id limit 3"):
            why = "; ".join(f"{r['text']} {r['points']:+d}" for r in reasons[:3])
            _line(f"     {name} {public_id}: {score} ({grade}) - {why}")


async def _show_gateway_and_csv(s: config.Settings, rng: random.Random) -> list[dict[str, Any]]:
    """A department over HTTP (the gateway), and a national CSV file through the importer."""
    base = f"http://127.0.0.1:{s.gateway_port}"
    token = (s.keys_dir / "xc-eco-env.token").read_text().strip()
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    rec = workload.penalty(rng, subject, "xc-eco-env", seq=rng.randrange(10**6))
    body = json.dumps(rec, ensure_ascii=False, default=lambda o: o.isoformat())
    _line(f"\n== The HTTP gateway ({base}; OpenAPI from the Avro schemas at {base}/docs)")
    got: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/events?timeout=10", data=body.encode(),
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"}) as r:
            answer = await r.json()
            _line(f"   POST /v1/events as xc-eco-env: {r.status} {answer.get('status')} at "
                  f"{answer.get('ledger_partition')}:{answer.get('ledger_offset')}")
            if r.status == 200:
                got.append(answer)
        async with http.post(f"{base}/v1/events", data=body.encode(),
                             headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"}) as r:
            _line(f"   the same with an unknown token: {r.status} {(await r.json()).get('error')}")
        # the gateway attests with its own key; a department may add its own signature over the body
        signed = workload.penalty(rng, subject, "xc-eco-env", seq=rng.randrange(10**6))
        signed_body = json.dumps(signed, ensure_ascii=False, default=lambda o: o.isoformat()).encode()
        key = signing.private_key(s.keys_dir, "xc-eco-env")
        own, other = (base64.b64encode(signing.sign(key, b)).decode() for b in (signed_body, signed_body + b" "))
        for label, signature in (("with its own signature over the body", own),
                                 ("with a signature over another body", other)):
            async with http.post(f"{base}/v1/events?timeout=10", data=signed_body,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                          "X-Content-Signature": signature}) as r:
                answer = await r.json()
                what = answer.get("status") if r.status == 200 else (answer.get("reasons") or [{}])[0].get("code")
                _line(f"   POST /v1/events as xc-eco-env {label}: {r.status} {what}")
                if r.status == 200:
                    got.append(answer)
        _line("   (the ledger entry keeps the gateway's attestation and the department's own signature with the "
              "body; python -m ledger.audit.verify --department-keys checks both)")
    csv_file = config.ROOT / "tests" / "fixtures" / "penalties_gb18030.csv"
    _line(f"\n== A national double-publicity file (GB18030, Chinese headers): {csv_file.name}")
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ledger.intake.importer", "--department",
                                                   "xc-samr", "--no-progress", "--report",
                                                   str(s.stack_dir / "demo-import-report.csv"), str(csv_file)],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(config.ROOT)})
    for line in run.stdout.strip().splitlines()[-6:]:
        _line("   " + line)
    _line(f"   per-row report: {s.stack_dir / 'demo-import-report.csv'} (importing the file again appends nothing)")
    return got


async def _show_id_number_in_code_column(s: config.Settings, rng: random.Random) -> None:
    """A resident ID number typed into the credit-code field (docs/domain-notes.md §1.8): refused over
    HTTP with the field named; in a CSV row of an individual business, filed under the operator as a
    natural person and shown masked. This number also passes the credit code's check character."""
    number = "411023199003150016"  # 许昌县 (411023, 1986-2016), born 1990-03-15: an ID number, never a company
    shown = identity.mask_ric(number)
    _line(f"\n== An ID number ({shown}) typed into the credit-code field")
    subject = workload.Subject(number, "USCC", "许昌瑞祥商贸有限公司")
    rec = workload.penalty(rng, subject, "xc-transport", seq=rng.randrange(10**6))
    token = (s.keys_dir / "xc-transport.token").read_text().strip()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{s.gateway_port}/v1/events",
                             data=json.dumps(rec, ensure_ascii=False, default=lambda o: o.isoformat()).encode(),
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
            reason = (await r.json())["reasons"][0]
            _line(f"   POST /v1/events as xc-transport (a company): {r.status} {reason['field']} {reason['code']}: "
                  f"{reason['message']}")
        authority, code = workload.ALL_PENALTY_DEPARTMENTS["xc-housing"]
        row = {"CF_XDR_MC": "许昌市建安区宏达五金商行", "CF_XDR_LB": "个体工商户", "CF_XDR_SHXYM": number,
               "CF_WSH": f"许建罚〔{CLOCK.today().year}〕{rng.randrange(10**5, 10**6)}号", "CF_WFXW": "未取得施工许可证擅自施工",
               "CF_SY": "经查，事实清楚。", "CF_YJ": "《中华人民共和国建筑法》第六十四条", "CF_CFLB": "罚款",
               "CF_NR": "罚款5000元", "CF_NR_FK": "0.5", "CF_JDRQ": CLOCK.today().isoformat(), "CF_CFJG": authority,
               "CF_CFJGDM": code, "CF_SJLY": authority, "CF_SJLYDM": code}
        path = s.stack_dir / "demo-operator-id.csv"
        path.write_text(",".join(row) + "\r\n" + ",".join(row.values()) + "\r\n", encoding="utf-8")
        run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ledger.intake.importer", "--department",
                                                       "xc-housing", "--no-progress", str(path)],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(config.ROOT)})
        _line(f"   the same number in an individual business's CSV row (xc-housing): {run.stdout.strip().splitlines()[-1]}")
        for _ in range(60):
            async with http.get(f"http://127.0.0.1:{s.api_port}/lookup", params={"id": number}) as r:
                if r.status == 200:
                    p = await r.json()
                    _line(f"   filed under the operator as a natural person: {p['entity_id']} {p['id_type']} "
                          f"{p['public_id']} {p['name']} (the number itself is shown nowhere)")
                    break
            await asyncio.sleep(0.5)


async def _show_query_api(s: config.Settings, last: dict[str, Any], rng: random.Random) -> None:
    base = f"http://127.0.0.1:{s.api_port}"
    async with aiohttp.ClientSession() as http:
        async def get(path: str) -> Any:
            async with http.get(base + path) as r:
                return r.status, await r.json()

        _line(f"\n== The query API ({base}; routes: docs/query-api.md)")
        status, cov = await get("/coverage")
        for db in cov["databases"]:
            share = "-" if db["share"] is None else f"{db['share']:.0%}"
            _line(f"   coverage {db['category']:<20} {db['with_records']:>5} of {db['registered']:>5} registered "
                  f"have credit records: {share} (target {'-' if db['target'] is None else format(db['target'], '.0%')})")
        status, late = await get("/publicity/lateness")
        for row in late["departments"]:
            _line(f"   double publicity {row['department']:<11} {row['records']:>5} records, {row['late']:>4} later "
                  f"than 7 working days ({row['share_late'] or 0:.0%})")
        status, lists = await get("/lists?kind=dishonest_debtor&size=1")
        _line(f"   GET /lists?kind=dishonest_debtor: {lists['total']} entries, e.g. "
              + (f"{lists['items'][0]['subject_name']} {lists['items'][0]['status']}" if lists["items"] else "none"))
        # read your writes: a new event, then its entity's profile at that ledger position
        out = (await submit_as_departments(s, [workload.tax_rated(
            workload.Subject(last["entity_id"].split(":", 1)[1], "USCC", "—"), CLOCK.today().year - 1, "A",
            CLOCK.today())]))[0]
        if out["status"] == "ACCEPTED":
            status, profile = await get(f"/entities/{out['entity_id']}?after={out['ledger_partition']}:"
                                        f"{out['ledger_offset']}")
            reasons = "; ".join(f"{r['text']} {r['points']:+d}" for r in profile["grade_reasons"][:4])
            _line(f"   read-your-writes: TaxCreditRated accepted at {out['ledger_partition']}:{out['ledger_offset']}; "
                  f"GET /entities/{out['entity_id']}?after=... answered {status}: version {profile['version']}, "
                  f"score {profile['score']} ({profile['grade']}): {reasons}")
        else:
            _describe("read-your-writes", out)
    _line("\nMetrics: " + ", ".join(f"http://127.0.0.1:{s.metrics_port(n)}/metrics ({n})"
                                    for n in ("sequencer", "projector", "query-api", "scheduler", "portal"))
          + f". Query API: {base}. Rebuild the views: PYTHONPATH=. .venv/bin/python -m consumers.projector.rebuild. "
          "Stop: ops/stack down")


async def _show_expiry_trigger_feedback(s: config.Settings, rng: random.Random) -> None:
    """The scheduler ending an old listing; a sector system asking "may X do Y", reporting what it
    did, and the report of measures per department."""
    base = f"http://127.0.0.1:{s.api_port}"
    old_firm, firm = workload.subjects(rng, 2, persons_share=0.0)
    tag = rng.randrange(10**5, 10**6)
    old = workload.wage_listed(old_firm, f"许人社欠薪〔2021〕{tag}号", date(2021, 3, 1))
    listing = workload.debtor_listed(firm, f"（{CLOCK.today().year}）豫10执{tag}号", CLOCK.today() - timedelta(days=20))
    outs = await submit_as_departments(s, [old, listing])
    await _wait_projected(s, outs)
    _line("\n== The expiry scheduler (consumers/scheduler/service.py; the stack's process passes every 60 s)")
    _line(f"   a wage-arrears listing of {old_firm.name} from 2021-03-01 (36 months) is still active; one pass now:")
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ops.run", "scheduler", "--once"],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(config.ROOT)})
    _line(f"   python -m ops.run scheduler --once -> {run.stdout.strip()}")
    async with aiohttp.ClientSession() as http:
        async def get(path: str, **params: str) -> Any:
            async with http.get(base + path, params=params) as r:
                return await r.json()

        async def wait_expired() -> dict[str, Any]:
            for _ in range(50):
                items = (await get("/lists", entity=f"uscc:{old_firm.id}"))["items"]
                if items and items[0]["status"] == "expired":
                    return items[0]
                await asyncio.sleep(0.2)
            return items[0] if items else {}

        entry = await wait_expired()
        _line(f"   GET /lists?entity=uscc:{old_firm.id}: {entry.get('status')} on {entry.get('ended_on')} "
              f"(legal end {entry.get('legal_end')}); a second pass would submit the same event id: DUPLICATE")

        _line(f"\n== Trigger: may {firm.name} (listed as a dishonest debtor) bid in government procurement?")
        at = f"{outs[1]['ledger_partition']}:{outs[1]['ledger_offset']}"
        answer = await get("/trigger", entity=f"uscc:{firm.id}", action="bid-government-procurement", after=at)
        _line(f"   GET /trigger?entity=uscc:{firm.id}&action=bid-government-procurement: {answer['decision']}")
        for m in answer["measures"]:
            _line(f"     {m['name']} ({m['id']}), by {', '.join(m['departments'])}; basis: {m['legal_basis']}")
        _line(f"     rests on {[(x['list_kind'], x['ref'], x['listed_on']) for x in answer['listings']]} at ledger "
              f"partition {answer['as_of']['entity_partition']}, entity version {answer['as_of']['entity_version']}")
        plane = await get("/trigger", entity=f"uscc:{firm.id}", action="buy-plane-ticket")
        _line(f"   ... buy a plane ticket: {plane['decision']} ({', '.join(m['id'] for m in plane['measures'])})")
        listed = (await get("/lists", entity=f"uscc:{firm.id}"))["items"]
        if listed and listed[0].get("legal_end"):
            _show_provisional(s, listed[0], await get("/publicity/lateness"))

        trigger_id = listing[1]["envelope"]["event_id"]
        reports = [_feedback(firm, "sector-procurement", "bar-government-procurement", trigger_id, "applied"),
                   _feedback(firm, "sector-transport", "restrict-high-consumption", trigger_id, "applied"),
                   _feedback(firm, "sector-transport", "bar-government-procurement", trigger_id, "applied")]
        _line("\n== Feedback: sector systems report what they did (PunishmentFeedbackReported, through the sequencer)")
        fb = await submit_as_departments(s, reports)
        for (dept, rec), out in zip(reports, fb, strict=True):
            _describe(f"{dept} reports {rec['measure_code']} {rec['action']}", out)
        lifted = await submit_as_departments(s, [
            # a fixed-term listing (ground 4) is not shortened by performance; a performed settlement
            # ends it early (法释〔2017〕7号 art. 10(2))
            workload.debtor_delisted(firm, listing[1]["case_no"], CLOCK.today(), reason="settlement_performed"),
            _feedback(firm, "sector-procurement", "bar-government-procurement", trigger_id, "lifted")])
        at = f"{lifted[-1]['ledger_partition']}:{lifted[-1]['ledger_offset']}"
        again = await get("/trigger", entity=f"uscc:{firm.id}", action="bid-government-procurement", after=at)
        _line(f"   after the court delisted it (settlement performed) and sector-procurement reported the measure "
              f"lifted: {again['decision']}")
        report = await get("/reports/measures")
        _line("   GET /reports/measures (measures per implementing department; format=csv for a spreadsheet):")
        for d in report["departments"]:
            for m in d["measures"]:
                _line(f"     {d['department']:<19} {m['measure_code']:<28} applied {m['applied']:>4}  lifted "
                      f"{m['lifted']:>4}  not applicable {m['not_applicable']:>3}")


def _show_provisional(s: config.Settings, entry: dict[str, Any], lateness: dict[str, Any]) -> None:
    """A deadline that falls in a year whose State Council holiday notice is not in the calendar file:
    the court's deletion at the end of the fixed term of the listing just made (2 years, ground 4),
    and the 7-working-day deadline of a decision taken today; the dashboard's provisional count."""
    calendar = loader.load().calendar
    rule = calendar.deadlines["court_deletion"]
    last_day = date.fromisoformat(entry["legal_end"]) - timedelta(days=1)
    due = calendar.add_working_days(last_day, rule.working_days)
    today = CLOCK.today()
    publish_by = calendar.add_working_days(today, publicity.DEADLINE_WORKING_DAYS)

    def mark(start: date, end: date) -> str:
        return (f"暂定 PROVISIONAL: the {end.year} holiday notice is not in {Path(calendar.file).name}; weekends, "
                "statutory holidays and make-up days only, recomputed when it is added"
                if calendar.provisional_after(start, end) else "official (the State Council notice is in the file)")

    _line(f"\n== Deadlines on the working-day calendar (official {calendar.official_years.start}-"
          f"{calendar.official_years.stop - 1}, provisional after)")
    _line(f"   the fixed term of {entry['ref']} ends on {last_day}; the court deletes within {rule.working_days} "
          f"working days (法释〔2017〕7号 art. 10): by {due}, {mark(last_day, due)}")
    _line(f"   a licence or penalty decided today ({today}) is published by {publish_by}, {mark(today, publish_by)}")
    _line(f"   dashboard http://127.0.0.1:{s.portal_port}/dashboard: {lateness['total']['provisional']} "
          f"double-publicity deadline(s) provisional (GET /publicity/lateness: total.provisional)")


def _feedback(subject: workload.Subject, department: str, measure: str, trigger: str,
              action: str) -> tuple[str, dict[str, Any]]:
    _, rec = workload.feedback(subject, trigger, CLOCK.today())
    rec["envelope"]["source_department"] = department
    return department, {**rec, "measure_code": measure, "action": action}


async def _show_portal(s: config.Settings, rng: random.Random) -> None:
    """This month's listings (so the month's publication has them), then the public portal: its
    URL, one listed entity's page, and the month's publication downloaded as CSV."""
    today = CLOCK.today()
    listed = workload.subjects(rng, 3, persons_share=0.0)
    events = [workload.debtor_listed(x, f"（{today.year}）豫10执{rng.randrange(10**4, 10**5)}号", today, ground=2)
              for x in listed]
    outcomes = await submit_as_departments(s, events)
    await _wait_projected(s, [o for o in outcomes if o["status"] == "ACCEPTED"])
    base = f"http://127.0.0.1:{s.portal_port}"
    month = f"{today.year:04d}-{today.month:02d}"
    _line(f"\n== The public portal: {base}/ (search, entity pages, red and black lists, publication; "
          f"operators: {base}/dashboard)")
    _line(f"   this month the court listed {len(listed)} dishonest debtors, e.g. {listed[0].name}: "
          f"{base}/entity/uscc:{listed[0].id}")
    _line(f"   search by part of its name: {base}/search?q={listed[0].name[2:6]}")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/publication.csv", params={"period": month}) as r:
            body = await r.read()
    target = s.stack_dir / f"demo-publication-{month}.csv"
    target.write_bytes(body)
    rows = body.decode("utf-8-sig").splitlines()
    _line(f"   GET /publication.csv?period={month}: {r.status}, {max(len(rows) - 1, 0)} entries listed this month, "
          f"saved to {target} (page: {base}/publication?period={month})")


def main() -> None:
    p = argparse.ArgumentParser(prog="ops/demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=600, help="penalties to submit (default 600)")
    p.add_argument("--subjects", type=int, default=150, help="distinct entities (default 150)")
    p.add_argument("--seed", type=int, default=None, help="workload seed (default: a new one each run)")
    p.add_argument("--brokers", type=int, choices=(1, 3), default=None,
                   help="Kafka nodes of a new stack (ops/demo passes it to `ops/stack up`); on three, the demo "
                        "kills one in the middle of submissions")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    _line(f"demo workload seed {seed} (replay this world with --seed {seed})")
    sys.exit(asyncio.run(run(args.events, args.subjects, seed)))


if __name__ == "__main__":
    main()
