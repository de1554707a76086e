"""Benchmark: entity profile and history reads with 10 million events in the ledger copy.

    PYTHONPATH=. .venv/bin/python -m bench.reads [--entities 1000000] [--samples 5000] [--clients 8]
                                                 [--keep] [--reuse] [--seed 11] [--hot 500]
                                                 [--wait-quiet 900] [--wait-quiet-pass 120]

1. Bulk load (server-side SQL only, nothing goes through Python): a fresh schema `bench_reads`
   (projections.schema.create, so the very tables and indexes of projections/views.sql) is filled
   with about 10 events per entity for --entities entities, versions contiguous from 1:
   98 % of the entities have 1-15 events, 2 % (organisations) have 50-166, so that a history has
   later pages; the mean is 10.0. Rows are inserted version by version over all the entities, so
   an entity's events are spread over the heap as they are when they arrive over time. Per event:
   a ledger_copy row whose record is the bytes of one real penalty record (`penalty_record`: the
   history reads decode it as any), and, as the projector would write them, a publicity row
   for penalties and licences (75 % of the events) and a list_entries row for listings (6 %).
   One entities row per entity. The primary keys and indexes are dropped before the load and
   created again after it with their definitions from views.sql; then VACUUM (ANALYZE), so that
   reads do not pay for the hint bits and the visibility map of a fresh bulk load (autovacuum
   would otherwise do it in the middle of the measurement).
2. Reads: the real functions of projections/queries.py, `entity_profile(conn, id)` (entities row,
   its list entries and its publicity records) and `entity_history(conn, id, page, 50)` (count plus
   one page of the ledger copy), through a psycopg_pool AsyncConnectionPool configured like the
   query API's (autocommit, search_path, no prepared statements, connection check on checkout).
   A latency is one call, pool checkout included. Operations: profile of a random entity, history
   page 1 of a random entity, history at a random later page (2..last) of an entity that has one.
   Each is measured with 1 client and with --clients concurrent clients (asyncio, one process), on
   --samples entities each:
   * cold-ish: entities never read before (first touch; the entities each run reads are kept in
     bench_reads._touched, so that a --reuse run picks others). The OS page cache is NOT dropped, so
     "cold" means "not in PostgreSQL's shared_buffers"; what came from the disk is reported
     (read_bytes of the PostgreSQL processes, /proc/<pid>/io) with the shared-buffer misses.
   * warm: uniform entities again (any), each operation right after its own warm-up pass over
     them. A warm set can be larger than shared_buffers (the later pages of 5,000 entities are);
     the buffer misses say so.
   * hot N: the first N entities of the warm set only (each read samples/N times), a set that
     stays in shared_buffers.
   Before the measurement and before each measured pass it waits for the rest of the machine to
   be nearly idle (at most --wait-quiet / --wait-quiet-pass seconds), and reports per pass the CPU
   used by this client, by PostgreSQL and by everything else.
The schema is dropped at the end unless --keep; --reuse skips the load when `bench_reads` already
holds a complete load (of the same --entities).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool

from bench import fold
from bench.projection import machine_busy_seconds, pg_cpu_seconds, wait_quiet
from ledger.platform import config
from ops import stack
from projections import queries, schema
from schemas import registry

SCHEMA = "bench_reads"
PAGE = 50
GB = 1024**3
MIN_FREE = 20 * GB

# ----------------------------------------------------------------------------- the synthetic ledger
# The same formulas in Python and SQL: entity i's id and its number of events.


def entity_id(i: int) -> str:
    return f"ric:{hashlib.md5(f'p{i}'.encode()).hexdigest()}" if i % 5 == 0 else f"uscc:91411002{i:09d}X"


def n_events(i: int) -> int:
    h = (i * 2654435761) % 4294967296
    return 50 + h % 117 if i % 50 == 1 else 1 + h % 15


SRC_SQL = """
create unlogged table _src as
select i,
  case when i % 5 = 0 then 'ric:' || md5('p' || i) else 'uscc:91411002' || lpad(i::text, 9, '0') || 'X' end
    as entity_id,
  (case when i % 50 = 1 then 50 + ((i::bigint * 2654435761) % 4294967296) % 117
        else 1 + ((i::bigint * 2654435761) % 4294967296) % 15 end)::int as n,
  i % 5 = 0 as person,
  case when i % 5 = 0 then 'individual' when i % 97 = 0 then 'government' when i % 89 = 0 then 'public_institution'
       when i % 83 = 0 then 'social_organisation' else 'enterprise' end as category,
  case when i % 5 = 0 then (array['411002','411024','411025','411081','411082'])[1 + (i / 5) % 5]
                           || '********' || lpad((i % 10000)::text, 4, '0')
       else '91411002' || lpad(i::text, 9, '0') || 'X' end as public_id,
  case when i % 5 = 0 then (string_to_array('王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗', null))[1 + i % 20]
                           || (array['伟','芳','娜','敏','静','强','磊','军','洋','勇','艳','杰','涛','明','超','霞'])[1 + (i / 20) % 16]
                           || (array['伟','芳','娜','敏','静','强','磊','军','洋','勇','艳','杰','涛','明','超','霞'])[1 + (i / 320) % 16]
       else '许昌' || (array['瑞祥','恒通','鑫源','华安','豫发','金穗','宏达','中原','许都','钧瓷','龙腾','德丰'])[1 + i % 12]
            || (array['食品有限公司','建筑工程有限公司','商贸有限公司','机械制造有限公司','物流有限公司','发制品有限公司',
                      '环保科技有限公司','医药连锁有限公司'])[1 + (i / 12) % 8] end as name
from generate_series(1, {entities}) i
"""

# One version v of every entity that has it: its ledger_copy row, and the publicity / list row the
# projector would write for it. t (0..99) picks the event type: 70 % penalties, 5 % licences, ...
ROUND_SQL = """
with r as materialized (
  select s.i, s.entity_id, s.person, s.category, s.public_id, s.name, t, h,
    (h::uuid)::text as event_id,
    case when t < 70 then 'AdministrativePenaltyImposed' when t < 75 then 'AdministrativeLicenceGranted'
         when t < 78 then 'AdministrativeLicenceChanged' when t < 82 then 'TaxCreditRated'
         when t < 85 then 'CreditCommitmentMade' when t < 87 then 'DishonestDebtorListed'
         when t < 88 then 'WageArrearsListed' when t < 89 then 'MajorTaxViolationListed'
         when t < 90 then 'ProcurementBanImposed' when t < 93 then 'ListingExpired'
         when t < 95 then 'CreditRepaired' when t < 97 then 'PunishmentFeedbackReported'
         when t < 98 then 'AdministrativePenaltyRevoked' when t < 99 then 'DishonestDebtorDelisted'
         else 'HonourAwarded' end as event_type,
    case when t < 70 then (array['xc-samr','xc-eco-env','xc-tax'])[1 + s.i %% 3] when t < 78 then 'xc-samr'
         when t < 82 then 'xc-tax' when t < 85 then 'xc-credit-office' when t < 87 then 'xc-court'
         when t < 88 then 'xc-hrss' when t < 89 then 'xc-tax' when t < 90 then 'xc-finance'
         when t < 93 then 'ledger-scheduler' when t < 95 then 'xc-credit-office'
         when t < 97 then 'sector-procurement' when t < 98 then 'xc-samr' when t < 99 then 'xc-court'
         else 'xc-credit-office' end as department,
    date '2020-01-06' + (%(v)s * 9 + s.i %% 7) as decided,
    timestamptz '2020-01-08 00:00:00+00' + make_interval(days => %(v)s * 9 + s.i %% 7, secs => s.i %% 86400)
      as sequenced_at,
    '许市监罚〔' || (2020 + (%(v)s * 9) / 366) || '〕' || s.i || '-' || %(v)s || '号' as decision_no
  from (select s.*, (abs(hashint8(s.i::bigint * 1000 + %(v)s)) %% 100)::int as t,
               md5(s.i || ':' || %(v)s) as h
        from _src s where s.n >= %(v)s) s
), lc as (
  insert into ledger_copy (entity_id, entity_version, event_id, event_type, category, department,
                           kafka_partition, kafka_offset, hash, sequenced_at, valid_from, record)
  select entity_id, %(v)s, event_id, event_type, category, department, i %% 4, nextval('_offsets'),
         decode(h || md5(h), 'hex'), sequenced_at, decided,
         %(record)s
  from r
), pub as (
  insert into publicity (event_id, entity_id, kind, ref, national, department, decision_date, ledger_date, deadline,
                         working_days, late, window_start, earliest_repair, automatic_end, status, ended_on,
                         subject_name, public_id, category)
  select event_id, entity_id, case when t < 70 then 'penalty' else 'licence' end, decision_no,
         %(national)s::jsonb || jsonb_build_object('CF_WSH', decision_no, 'CF_JDRQ', decided, 'CF_XDR_MC', name,
                                                    'CF_XDR_ZJHM', public_id),
         department, decided, (sequenced_at at time zone 'Asia/Shanghai')::date, decided + 9, 2 + t %% 7,
         t %% 7 = 6, decided, case when t < 70 then decided + 90 end, decided + 1095,
         case when t < 70 then (case when t %% 13 = 0 then 'repaired' else 'published' end) else 'valid' end,
         null, name, public_id, category
  from r where t < 75
)
insert into list_entries (entity_id, list_kind, ref, colour, reason, department, listed_on, legal_end, status,
                          ended_on, event_id, subject_name, public_id, category)
select entity_id,
       case event_type when 'DishonestDebtorListed' then 'dishonest_debtor' when 'WageArrearsListed' then 'wage_arrears'
            when 'MajorTaxViolationListed' then 'major_tax_violation' when 'ProcurementBanImposed' then 'procurement_ban'
            else 'red' end,
       decision_no, case when event_type = 'HonourAwarded' then 'red' else 'black' end,
       case when event_type = 'HonourAwarded' then '守合同重信用企业' else '有履行能力而拒不履行生效法律文书确定义务' end,
       department, decided, decided + 730, case when t %% 3 = 0 then 'delisted' else 'active' end,
       case when t %% 3 = 0 then decided + 200 end, event_id, name, public_id, category
from r where t between 85 and 89 or t = 99
"""

ENTITIES_SQL = """
insert into entities (entity_id, category, id_type, public_id, name, version, first_seen, last_change, last_event_type,
                      counts, black_lists, red_listed, registered_on, score, grade, grade_reasons)
select entity_id, category, case when person then 'RIC' else 'USCC' end, public_id, name, n,
       timestamptz '2020-01-17 00:00:00+00' + make_interval(secs => i % 86400),
       timestamptz '2020-01-08 00:00:00+00' + make_interval(days => n * 9 + i % 7, secs => i % 86400),
       'AdministrativePenaltyImposed',
       jsonb_build_object('AdministrativePenaltyImposed', greatest(1, n * 7 / 10), 'AdministrativeLicenceGranted',
                          n / 20, 'TaxCreditRated', n / 25, 'CreditCommitmentMade', n / 30, 'ListingExpired', n / 33,
                          'DishonestDebtorListed', n / 50, 'CreditRepaired', n / 50),
       case when i % 17 = 0 then array['dishonest_debtor'] when i % 41 = 0 then array['procurement_ban', 'wage_arrears']
            else array[]::text[] end,
       i % 101 = 0, case when person then null else date '2015-01-01' + i % 3000 end,
       case when i % 17 = 0 then 60 else 100 - least(n, 20) end,
       case when i % 17 = 0 then 'C' when n > 10 then 'B' else 'A' end,
       case when i % 17 = 0 then jsonb_build_array(jsonb_build_object(
              'ref', '（2024）豫10执' || i || '号', 'code', 'list.dishonest_debtor',
              'text', '列入失信被执行人名单（（2024）豫10执' || i || '号）', 'points', -40))
            else jsonb_build_array(jsonb_build_object(
              'ref', '许市监罚〔2025〕' || i || '号', 'code', 'penalty.general',
              'text', '受到一般行政处罚（许市监罚〔2025〕' || i || '号）', 'points', -5)) end
from _src
"""

# Every ledger_copy row's record: the bytes of one real penalty record of the projection benchmark's
# workload (as the projector copies them: a company's, so as the ledger entry holds them), which the reads
# decode as they decode any; and the constant part of a penalty's national (CF_) fields (the varying
# keys are added per row).
def penalty_record() -> bytes:
    entries = (registry.decode(value, "LedgerEntry")[1] for _, _, value in fold.fixed_entries(40, 11, life_share=0.0))
    return next(e["submission"] for e in entries if e["event_type"] == "AdministrativePenaltyImposed")


NATIONAL = ('{"BZ": null, "CF_NR": "警告、罚款，罚款人民币10000元", '
            '"CF_SY": "经查，当事人销售不符合食品安全标准的食品，事实清楚，证据确凿。", '
            '"CF_YJ": "《中华人民共和国食品安全法》第一百二十四条", "CF_YXQ": null, "CF_CFJG": "许昌市市场监督管理局", '
            '"CF_CFLB": "警告;罚款", "CF_FRDB": "王强", "CF_SJLY": "许昌市市场监督管理局", '
            '"CF_WFXW": "销售不符合食品安全标准的食品", "CF_GSJZQ": null, "CF_NR_FK": "1", '
            '"CF_CFJGDM": "11411000MB1796338F", "CF_SJLYDM": "11411000MB1796338F", "CF_XDR_LB": "法人及非法人组织", '
            '"CF_NR_WFFF": null, "CF_NR_ZKDX": null, "CF_XDR_ZJLX": "统一社会信用代码", "CF_XDR_SHXYM": null}')

# Keys and indexes of the loaded tables, dropped for the load and created again from these
# definitions (the same as projections/views.sql).
DROP_KEYS = [
    "alter table ledger_copy drop constraint ledger_copy_pkey", "drop index ledger_copy_position",
    "alter table entities drop constraint entities_pkey", "drop index entities_category", "drop index entities_name",
    "alter table list_entries drop constraint list_entries_pkey", "drop index list_entries_kind",
    "drop index list_entries_department",
    "alter table publicity drop constraint publicity_pkey", "drop index publicity_entity",
    "drop index publicity_department",
]
CREATE_KEYS = [
    "alter table ledger_copy add constraint ledger_copy_pkey primary key (entity_id, entity_version)",
    "create unique index ledger_copy_position on ledger_copy (kafka_partition, kafka_offset)",
    "alter table entities add constraint entities_pkey primary key (entity_id)",
    "create index entities_category on entities (category)",
    "create index entities_name on entities (name text_pattern_ops)",
    "alter table list_entries add constraint list_entries_pkey primary key (entity_id, list_kind, ref)",
    "create index list_entries_kind on list_entries (list_kind, status, listed_on)",
    "create index list_entries_department on list_entries (department)",
    "alter table publicity add constraint publicity_pkey primary key (event_id)",
    "create index publicity_entity on publicity (entity_id)",
    "create index publicity_department on publicity (department, late)",
]
TABLES = ("ledger_copy", "entities", "publicity", "list_entries")


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _connect(s: config.Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(s.pg_dsn, autocommit=True, options=f"-c search_path={SCHEMA}")


def check_definitions() -> None:
    """The keys rebuilt after the load must be those of views.sql (fail loudly if views.sql changed)."""
    ddl = " ".join(schema.DDL.read_text(encoding="utf-8").split())
    for stmt in CREATE_KEYS:
        if stmt.startswith("create"):
            if stmt not in ddl:
                raise SystemExit(f"views.sql no longer has: {stmt}; update bench/reads.py")
    for table, key in (("ledger_copy", "primary key (entity_id, entity_version)"),
                       ("list_entries", "primary key (entity_id, list_kind, ref)")):
        if key not in ddl:
            raise SystemExit(f"views.sql no longer declares {table} {key}; update bench/reads.py")


def loaded_entities(s: config.Settings) -> int | None:
    """The --entities of a complete earlier load in bench_reads, or None."""
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        if not schema.exists(conn, SCHEMA):
            return None
        row = conn.execute("select obj_description(%s::regnamespace, 'pg_namespace')", (SCHEMA,)).fetchone()
        text = row[0] if row else None
        return int(text.split("=")[1]) if text and text.startswith("complete entities=") else None


def load(s: config.Settings, entities: int) -> dict[str, float]:
    steps: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        steps[name] = time.perf_counter() - t0
        _say(f"  {name}: {steps[name]:.1f} s")
        return out

    with psycopg.connect(s.pg_dsn, autocommit=True) as conn, conn.transaction():
        schema.drop(conn, SCHEMA)
        schema.create(conn, SCHEMA)
    with _connect(s) as conn:
        conn.execute("set maintenance_work_mem = '1GB'")
        conn.execute("set synchronous_commit = off")
        for stmt in DROP_KEYS:
            conn.execute(stmt)
        conn.execute("create sequence _offsets")
        conn.execute("set work_mem = '256MB'")
        src = SRC_SQL.replace("{entities}", str(int(entities)))
        step("source of the entities (_src)", lambda: conn.execute(src))
        max_v = conn.execute("select max(n) from _src").fetchone()[0]  # type: ignore[index]

        record = penalty_record()

        def rounds() -> None:
            t0 = time.perf_counter()
            for v in range(1, max_v + 1):
                conn.execute(ROUND_SQL, {"v": v, "record": record, "national": NATIONAL})
                if v <= 15 or v % 25 == 0:
                    rows = conn.execute("select last_value from _offsets").fetchone()[0]  # type: ignore[index]
                    _say(f"    version {v}/{max_v}: {rows:,} ledger_copy rows, {time.perf_counter() - t0:.0f} s")

        step("ledger_copy + publicity + list_entries rows (one INSERT per version)", rounds)
        step("entities rows", lambda: conn.execute(ENTITIES_SQL))
        step("drop _src", lambda: conn.execute("drop table _src"))

        def keys() -> None:
            for stmt in CREATE_KEYS:
                t0 = time.perf_counter()
                conn.execute(stmt)
                _say(f"    {stmt[:80]}: {time.perf_counter() - t0:.1f} s")

        step("primary keys and indexes", keys)
        step("VACUUM (ANALYZE)", lambda: [conn.execute(f"vacuum (analyze) {t}") for t in TABLES])
        conn.execute(f"comment on schema {SCHEMA} is 'complete entities={entities}'")
    return steps


def sizes(s: config.Settings) -> list[tuple[str, int, int, int]]:
    with _connect(s) as conn:
        return [(t, *conn.execute(  # type: ignore[misc]
            "select (select count(*) from " + t + "), pg_relation_size(%s), pg_total_relation_size(%s)",
            (f"{SCHEMA}.{t}", f"{SCHEMA}.{t}")).fetchone()) for t in TABLES]


# ----------------------------------------------------------------------------- measuring


def _pg_children(postmaster: int | None) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(Path(d, "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _read_bytes(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("read_bytes:"):
                    out[pid] = int(line.split()[1])
        except OSError:
            pass
    return out


def _statio(s: config.Settings) -> tuple[int, int]:
    """Shared-buffer misses (read from the OS) and hits on the schema's tables and indexes."""
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "select sum(coalesce(heap_blks_read,0) + coalesce(idx_blks_read,0) + coalesce(toast_blks_read,0)), "
            "sum(coalesce(heap_blks_hit,0) + coalesce(idx_blks_hit,0) + coalesce(toast_blks_hit,0)) "
            "from pg_statio_user_tables where schemaname = %s", (SCHEMA,)).fetchone()
        return int(row[0] or 0), int(row[1] or 0)  # type: ignore[index]


Job = tuple[str, int]  # (entity id, page; 0 = profile)


async def _pass(s: config.Settings, jobs: list[Job], clients: int, postmaster: int | None) -> dict[str, Any]:
    pool = psycopg_pool.AsyncConnectionPool(
        s.pg_dsn, min_size=clients, max_size=clients, open=False, timeout=30, name="bench-reads",
        kwargs={"autocommit": True, "options": f"-c search_path={SCHEMA}", "prepare_threshold": None},
        check=psycopg_pool.AsyncConnectionPool.check_connection)
    await pool.open(wait=True, timeout=30)
    async with pool.connection() as conn:  # the connections are up (and their catalogue caches too)
        await conn.execute("select 1 from entities limit 0")
    pids = _pg_children(postmaster)
    statio0, io0 = _statio(s), _read_bytes(pids)
    cpu0 = (sum(os.times()[:2]), pg_cpu_seconds(postmaster), machine_busy_seconds())
    latencies: list[float] = []
    rows: list[int] = []
    it = iter(jobs)

    async def client() -> None:
        for eid, page in it:
            t0 = time.perf_counter()
            async with pool.connection() as conn:
                if page == 0:
                    r = await queries.entity_profile(conn, eid)
                    n = 0 if r is None else 1 + len(r["lists"]) + len(r["publicity"])
                else:
                    r = await queries.entity_history(conn, eid, page, PAGE)
                    n = len(r["items"])
            latencies.append(time.perf_counter() - t0)
            if not n:
                raise RuntimeError(f"no rows for {eid} page {page}: the load is incomplete")
            rows.append(n)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    io1 = _read_bytes(pids)
    disk = sum(io1[p] - io0[p] for p in io1 if p in io0)  # processes alive at both ends
    client_cpu, pg_cpu = sum(os.times()[:2]) - cpu0[0], pg_cpu_seconds(postmaster) - cpu0[1]
    other_cpu = max(0.0, machine_busy_seconds() - cpu0[2] - client_cpu - pg_cpu)
    await pool.close()  # the backends exit and flush their statistics
    await asyncio.sleep(1.0)
    statio1 = _statio(s)
    lat = sorted(x * 1000 for x in latencies)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, math.ceil(p * len(lat)) - 1)]

    return {"n": len(lat), "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": lat[-1],
            "mean": sum(lat) / len(lat), "per_s": len(lat) / wall, "rows": sum(rows) / len(rows),
            "misses": statio1[0] - statio0[0], "hits": statio1[1] - statio0[1], "disk_mib": disk / 2**20,
            "client_cores": client_cpu / wall, "pg_cores": pg_cpu / wall, "other_cores": other_cpu / wall}


def samples(entities: int, k: int, rng: random.Random, touched: set[int]) -> dict[str, list[int]]:
    """Disjoint sets of entity numbers: uniform over all entities (light or heavy), and entities with
    a later page (drawn after, from the heavy ones left). The cold sets hold only entities never read
    by an earlier run on this load; the warm ones may hold any."""
    n = min(2 * k + len(touched), entities)
    cold = [i for i in rng.sample(range(1, entities + 1), n) if i not in touched][:2 * k]
    cold_set = set(cold)
    n = min(k + len(cold_set), entities)
    warm = [i for i in rng.sample(range(1, entities + 1), n) if i not in cold_set][:k]
    taken = cold_set | set(warm)
    heavy = [i for i in range(1, entities + 1) if i % 50 == 1 and n_events(i) > PAGE and i not in taken]
    fresh = [i for i in heavy if i not in touched]
    rng.shuffle(fresh)
    kh = min(k, len(fresh) // 3 if not touched else len(fresh) // 2)
    cold_heavy = set(fresh[:2 * kh])
    warm_heavy = rng.sample([i for i in heavy if i not in cold_heavy], min(k, len(heavy) - 2 * kh))
    ka = len(cold) // 2
    return {"cold1": cold[:ka], "cold8": cold[ka:2 * ka], "warm": warm,
            "cold1_heavy": fresh[:kh], "cold8_heavy": fresh[kh:2 * kh], "warm_heavy": warm_heavy}


def jobs_for(op: str, numbers: list[int], rng: random.Random) -> list[Job]:
    if op == "profile":
        return [(entity_id(i), 0) for i in numbers]
    if op == "history page 1":
        return [(entity_id(i), 1) for i in numbers]
    return [(entity_id(i), rng.randint(2, math.ceil(n_events(i) / PAGE))) for i in numbers]


OPS = ("profile", "history page 1", "history later page")


async def measure(s: config.Settings, entities: int, k: int, clients: int, seed: int,
                  postmaster: int | None, hot: int, quiet_wait: float,
                  quiet_cores: float) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    with _connect(s) as conn:
        conn.execute("create table if not exists _touched (i int primary key)")
        touched = {i for (i,) in conn.execute("select i from _touched").fetchall()}
    sets = samples(entities, k, rng, touched)
    with _connect(s) as conn, conn.cursor().copy("copy _touched (i) from stdin") as copy:
        for i in set().union(*sets.values()) - touched:  # remembered now, so that a --reuse run reads others
            copy.write_row((i,))
    results = []

    def jobs(op: str, phase: str) -> list[Job]:
        return jobs_for(op, sets[phase + ("_heavy" if op == "history later page" else "")], rng)

    async def measured(state: str, op: str, todo: list[Job], n_clients: int) -> None:
        if not todo:
            _say(f"  {state}, {n_clients} client(s): {op}: no entity left that no earlier run read; skipped")
            return
        if quiet_wait > 0:  # others share this machine: start each pass when it is idle (if it gets so)
            await asyncio.to_thread(wait_quiet, quiet_wait, quiet_cores, 5.0)
        _say(f"  {state}, {n_clients} client(s): {op} ({len(todo)} calls)")
        r = await _pass(s, todo, n_clients, postmaster)
        results.append({"state": state, "clients": n_clients, "op": op, **r})

    for phase, n_clients in (("cold1", 1), ("cold8", clients)):  # first touch: before anything warms them
        for op in OPS:
            await measured("cold-ish", op, jobs(op, phase), n_clients)
    for op in OPS:  # warm: each operation right after its own warm-up pass over the same entities
        warm = jobs(op, "warm")
        _say(f"  warm-up pass: {op}")
        await _pass(s, warm, clients, postmaster)
        for n_clients in (1, clients):
            await measured("warm", op, warm, n_clients)
        if 0 < hot < len(warm):  # a set small enough to stay in shared_buffers
            await _pass(s, warm[:hot], clients, postmaster)
            for n_clients in (1, clients):
                await measured(f"hot {hot}", op, warm[:hot] * max(1, len(warm) // hot), n_clients)
    return results



def explain(s: config.Settings, entities: int) -> list[str]:
    heavy = next(i for i in range(1, entities + 1) if i % 50 == 1 and n_events(i) > 3 * PAGE)
    eid = entity_id(heavy)
    out = []
    with _connect(s) as conn:
        # page 3: what entity_history read before (OFFSET), and what it reads now (a version range)
        for how, where in (("order by ... limit 50 offset 100 (before)", "order by entity_version limit 50 offset 100"),
                           ("version range (100, 150] (projections.queries now)",
                            "and entity_version > 100 and entity_version <= 150 order by entity_version")):
            q = f"select entity_version, event_id, record from ledger_copy where entity_id = %s {where}"
            plan = conn.execute("explain (analyze, buffers, timing off, summary off) " + q, (eid,)).fetchall()
            out += [f"EXPLAIN (ANALYZE, BUFFERS) of a history page 3 by {how} ({eid}, {n_events(heavy)} events):"]
            out += ["    " + r[0] for r in plan]
    return out


def pg_settings(s: config.Settings) -> dict[str, str]:
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        return {k: conn.execute(f"show {k}").fetchone()[0]  # type: ignore[index]
                for k in ("shared_buffers", "effective_cache_size", "work_mem", "server_version")}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entities", type=int, default=1_000_000, help="entities (about 10 events each)")
    p.add_argument("--samples", type=int, default=5000, help="entities per measured pass")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients of the concurrent passes")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--wait-quiet", type=float, default=900, metavar="S",
                   help="wait up to S seconds for the rest of the machine to be idle before measuring (0: no)")
    p.add_argument("--wait-quiet-pass", type=float, default=120, metavar="S",
                   help="and up to S seconds before each measured pass (0: no)")
    p.add_argument("--quiet-cores", type=float, default=0.5,
                   help="'quiet': the machine busy with less than this many cores (the idle demo stack "
                        "itself uses 0.1-0.4)")
    p.add_argument("--hot", type=int, default=500,
                   help="also measure each operation over this many entities only (the warm set's first ones, "
                        "each read len(warm)/hot times), small enough to stay in shared_buffers (0: no)")
    p.add_argument("--keep", action="store_true", help=f"keep the schema {SCHEMA} at the end")
    p.add_argument("--reuse", action="store_true", help=f"reuse a complete earlier load in {SCHEMA}")
    a = p.parse_args()

    check_definitions()
    s = config.load()
    pg = stack.Postgres(s)
    if not pg.running():
        _say("PostgreSQL is not running: starting the infrastructure (ops.stack.up, services=False)")
        stack.up(s, services=False)
    free = shutil.disk_usage(s.stack_dir).free
    entities = a.entities
    scaled = ""
    if free < MIN_FREE:
        entities = max(10_000, entities // 10)
        scaled = (f"free disk {free / GB:.1f} GB < {MIN_FREE / GB:.0f} GB: scaled DOWN to {entities:,} entities "
                  f"(about {entities * 10:,} events); the figures are NOT for 10 million events")
        _say(scaled)
    started_at = datetime.now(UTC)
    steps: dict[str, float] = {}
    if a.reuse and loaded_entities(s) == entities:
        _say(f"reusing the complete load in schema {SCHEMA}")
    else:
        _say(f"bulk-loading schema {SCHEMA}: {entities:,} entities, about {entities * 10:,} events "
             f"(free disk {free / GB:.0f} GB) ...")
        steps = load(s, entities)
    try:
        size = sizes(s)
        quiet = wait_quiet(a.wait_quiet, a.quiet_cores) if a.wait_quiet > 0 else "did not wait for a quiet machine"
        _say(f"measuring ({quiet}) ...")
        results = asyncio.run(measure(s, entities, a.samples, a.clients, a.seed, pg.pid(), a.hot,
                                      a.wait_quiet_pass, a.quiet_cores))
        plan = explain(s, entities)
        settings = pg_settings(s)
    finally:
        if not a.keep:
            with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
                schema.drop(conn, SCHEMA)
            _say(f"dropped schema {SCHEMA}")
    free_after = shutil.disk_usage(s.stack_dir).free

    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), platform.processor())
    print()
    print(f"Read benchmark, started {started_at:%a %d %b %Y %H:%M:%S} UTC")
    print(f"machine     {cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
          f"PostgreSQL {settings['server_version']} (shared_buffers {settings['shared_buffers']}, "
          f"effective_cache_size {settings['effective_cache_size']})")
    if scaled:
        print(f"SCALED      {scaled}")
    if steps:
        print(f"bulk load   {sum(steps.values()):,.0f} s in all (" +
              "; ".join(f"{k} {v:,.0f} s" for k, v in steps.items()) + ")")
    for t, rows, heap, total in size:
        print(f"  {t:<13} {rows:>12,} rows   heap {heap / GB:6.2f} GiB   total with indexes and TOAST "
              f"{total / GB:6.2f} GiB")
    print(f"  free disk after the measurement: {free_after / GB:.0f} GB; the OS page cache was not dropped")
    print(f"{'state':<9} {'clients':>7} {'operation':<20} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'calls/s':>8} {'rows':>6} {'buf miss':>9} {'disk MiB':>9} {'cores py/pg/other':>17}")
    for r in results:
        print(f"{r['state']:<9} {r['clients']:>7} {r['op']:<20} {r['n']:>5} {r['p50']:>8.2f} {r['p95']:>8.2f} "
              f"{r['p99']:>8.2f} {r['max']:>8.1f} {r['per_s']:>8,.0f} {r['rows']:>6.1f} {r['misses']:>9,} "
              f"{r['disk_mib']:>9.1f} {r['client_cores']:>5.2f}/{r['pg_cores']:.2f}/{r['other_cores']:.2f}")
    warm99 = max(r["p99"] for r in results if r["state"] == "warm")
    print(f"target      p99 <= 10 ms warm: {'met' if warm99 <= 10 else 'NOT met'} (worst warm p99 {warm99:.2f} ms)")
    print("notes       rows = rows returned per call (profile: 1 + list entries + publicity records); buf miss = "
          "blocks not in shared_buffers (read from the OS: page cache or disk); disk MiB = read_bytes of the "
          "PostgreSQL processes during the pass (what really came from the disk); cores py/pg/other = CPU of this "
          "Python client process / of PostgreSQL / of everything else during the pass (2 cores in all)")
    print(f"            {quiet}")
    for line in plan:
        print(line)


if __name__ == "__main__":
    main()
