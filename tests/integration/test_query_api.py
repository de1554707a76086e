"""Given the running stack (sequencer, projector, query API), when departments submit realistic
credit events (the life of a company, an honoured company, penalties against a natural person),
then the query API answers with the projected data: profiles, history, lists (JSON and CSV),
double-publicity records, the lateness report and the coverage; it waits for a submission's
ledger position when asked (read-your-writes) or answers 409; and no response, nor its log, ever
holds a natural person's clear ID number."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ledger.client import submit_as_departments
from ledger.domain import identity
from ledger.domain.divisions import county_of
from ledger.rules import loader
from ops import workload
from projections import publicity
from tests import helpers

DIVISIONS = loader.load().divisions
COUNTIES = {c.id: c.name for c in DIVISIONS.counties}
BODIES: list[str] = []  # every response body of this module, searched for clear ID numbers at the end
CSV_HEADER = ["主体名称", "统一社会信用代码/身份证号码（脱敏）", "信用主体类别", "县（市、区）", "名单类型", "红黑名单", "案号/文号",
              "列入事由", "认定部门", "列入日期", "法定移出日期", "状态", "移出日期", "主体标识", "事件编号"]


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def raw(self, path: str, **params: Any) -> tuple[int, str, Any]:
        query = {k: str(v) for k, v in params.items()} or None
        async with self.session.get(self.base + path, params=query) as r:
            body = await r.text(encoding="utf-8")
            BODIES.append(body)
            return r.status, body, r.headers

    async def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        async with self.session.get(self.base + path, params={k: str(v) for k, v in params.items()}) as r:
            body = await r.text(encoding="utf-8")
            BODIES.append(body)
            assert r.status == expect, (path, params, r.status, body[:500])
            assert r.headers["Content-Type"].startswith("application/json")
            return await r.json(content_type=None)


def _pos(outcome: dict[str, Any]) -> str:
    return f"{outcome['ledger_partition']}:{outcome['ledger_offset']}"


@pytest.fixture(scope="module")
async def api(settings, services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Api(session, f"http://127.0.0.1:{settings.api_port}")


@pytest.fixture(scope="module")
async def world(settings, api):  # type: ignore[no-untyped-def]
    """A company with a whole life, an honoured company and a natural person with two penalties of
    the environment bureau (one decided long ago: late; one today: on time), all projected."""
    rng = helpers.rng("query-api")
    company, honoured = workload.subjects(rng, 2, persons_share=0.0)
    person = workload.subjects(rng, 1, persons_share=1.0)[0]
    tag = rng.randrange(10_000, 99_999)
    life = workload.life(rng, company, tag)
    late = workload.penalty(rng, person, "xc-eco-env", rng.randrange(10**6, 10**7),
                            decided=helpers.today() - timedelta(days=helpers.LATE_DECISION_DAYS))
    on_time = workload.penalty(rng, person, "xc-eco-env", rng.randrange(10**6, 10**7),
                               decided=helpers.today())
    phases = [life[0] + workload.honoured_life(honoured) + [("xc-eco-env", late), ("xc-eco-env", on_time)],
              life[1]]
    outcomes: list[dict[str, Any]] = []
    for phase in phases:
        outcomes += await submit_as_departments(settings, phase)
    assert [(o["event_id"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"] == []
    # wait until the views hold every one of these records (read-your-writes per partition)
    last: dict[int, int] = {}
    for o in outcomes:
        last[o["ledger_partition"]] = max(last.get(o["ledger_partition"], -1), o["ledger_offset"])
    for partition, offset in last.items():
        await api.get("/positions", after=f"{partition}:{offset}", wait=30)
    records = [r for phase in phases for _, r in phase]
    by_event = {r["envelope"]["event_id"]: r for r in records}
    return {
        "company": company, "honoured": honoured, "person": person, "life": life, "tag": tag,
        "late": late, "on_time": on_time, "outcomes": outcomes, "records": by_event,
        "company_id": "uscc:" + company.id, "honoured_id": "uscc:" + honoured.id,
        "person_id": identity.entity_key(identity.check_ric(person.id), settings.id_pepper),
    }


# ----------------------------------------------------------------------------- profiles


async def test_entity_profile_with_grade_lists_and_publicity(api, world) -> None:
    company, life = world["company"], world["life"]
    p = await api.get(f"/entities/{world['company_id']}")
    assert (p["entity_id"], p["category"], p["id_type"], p["public_id"], p["name"]) == (
        world["company_id"], "enterprise", "USCC", company.id, company.name)
    n_events = len(life[0]) + len(life[1])
    assert p["version"] == n_events == 22
    assert p["registered_on"] == "2019-04-01"
    assert p["counts"]["AdministrativePenaltyImposed"] == 3 and p["counts"]["DishonestDebtorListed"] == 2
    assert sum(p["counts"].values()) == n_events
    assert p["black_lists"] == ["procurement_ban"] and p["red_listed"] is False
    ban_no = next(r["decision_no"] for _, r in life[0] if r["envelope"]["event_type"] == "ProcurementBanImposed")
    assert isinstance(p["score"], int) and p["grade"] in ("A", "B", "C", "D")
    assert {"code": "list.procurement_ban", "ref": ban_no} in [{"code": r["code"], "ref": r["ref"]}
                                                              for r in p["grade_reasons"]]
    assert all(r["text"] and isinstance(r["points"], int) for r in p["grade_reasons"])
    # its list entries: every status, newest listing first
    assert [(x["list_kind"], x["status"]) for x in p["lists"]] == [
        ("procurement_ban", "active"), ("dishonest_debtor", "delisted"), ("major_tax_violation", "delisted"),
        ("wage_arrears", "delisted"), ("dishonest_debtor", "expired")]
    assert {(x["kind"], x["status"]) for x in p["publicity"]} == {
        ("penalty", "expired"), ("penalty", "repaired"), ("penalty", "revoked"), ("licence", "revoked")}

    h = await api.get(f"/entities/{world['honoured_id']}")
    assert h["red_listed"] is True and h["black_lists"] == [] and h["grade"] == "A"
    assert {"tax.level_A", "honour.red_list"} <= {r["code"] for r in h["grade_reasons"]}
    # the honour and the A-level rating of 2025, a red-list entry until the next rating (domain-notes §4.4)
    assert sorted((x["list_kind"], x["colour"], x["ref"]) for x in h["lists"]) == [
        ("red", "red", "纳税信用A级-2025"), ("red", "red", "许政〔2026〕18号")]


async def test_lookup_by_credit_code_and_by_id_number(api, world) -> None:
    company, person = world["company"], world["person"]
    by_code = await api.get("/lookup", id=f" {company.id.lower()} ")  # normalised: case and spaces
    assert by_code["entity_id"] == world["company_id"] and by_code["version"] == 22

    spaced = f"{person.id[:6]} {person.id[6:14]}-{person.id[14:]}"
    p = await api.get("/lookup", id=spaced)
    assert (p["entity_id"], p["id_type"], p["category"], p["public_id"]) == (
        world["person_id"], "RIC", "individual", identity.mask_ric(person.id))
    assert p["counts"] == {"AdministrativePenaltyImposed": 2}
    assert p == await api.get(f"/entities/{world['person_id']}")

    bad = await api.get("/lookup", expect=400, id="91411002MA")
    assert bad["parameter"] == "id" and bad["code"] == "uscc.length" and "18" in bad["error"]
    wrong_check = person.id[:17] + ("0" if person.id[17] != "0" else "1")
    typo = await api.get("/lookup", expect=400, id=wrong_check, type="RIC")
    assert (typo["parameter"], typo["code"]) == ("id", "ric.checksum") and wrong_check not in str(typo)
    unknown = await api.get("/lookup", expect=404, id=identity.normalise(workload.make_uscc(helpers.rng("none"))))
    assert unknown["checked_as"] == ["USCC"]


async def test_history_is_the_ledger_by_version_with_hashes(settings, api, world) -> None:
    company_id = world["company_id"]
    mine = {o["event_id"]: o for o in world["outcomes"] if o["entity_id"] == company_id}
    h = await api.get(f"/entities/{company_id}/history", size=500)
    assert (h["entity_id"], h["total"], h["page"], h["size"]) == (company_id, 22, 1, 500)
    assert [i["version"] for i in h["items"]] == list(range(1, 23))
    for item in h["items"]:
        o = mine[item["event_id"]]
        assert (item["version"], item["partition"], item["offset"]) == (
            o["entity_version"], o["ledger_partition"], o["ledger_offset"])
        rec = world["records"][item["event_id"]]
        assert item["event_type"] == rec["envelope"]["event_type"]
        assert item["department"] == rec["envelope"]["source_department"]
        assert item["valid_from"] == rec["envelope"]["valid_from"].isoformat()
        assert item["payload"]["envelope"]["subject"]["id"] == world["company"].id
        datetime.fromisoformat(item["sequenced_at"])
    entries = (await helpers.ledger_entries(settings, {company_id}))[company_id]
    assert [i["hash"] for i in h["items"]] == [e["hash"].hex() for e in entries]
    assert all(len(i["hash"]) == 64 for i in h["items"])

    page2 = await api.get(f"/entities/{company_id}/history", page=2, size=5)
    assert [i["version"] for i in page2["items"]] == [6, 7, 8, 9, 10] and page2["total"] == 22
    beyond = await api.get(f"/entities/{company_id}/history", page=9, size=5)
    assert beyond["items"] == [] and beyond["total"] == 22

    person = await api.get(f"/entities/{world['person_id']}/history")
    assert [i["version"] for i in person["items"]] == [1, 2]
    assert {i["payload"]["envelope"]["subject"]["id"] for i in person["items"]} == {
        identity.mask_ric(world["person"].id)}


# ----------------------------------------------------------------------------- lists


async def test_lists_filter_by_kind_department_dates_category_and_page(api, world) -> None:
    company_id, tag = world["company_id"], world["tag"]
    everything = await api.get("/lists", entity=company_id)
    assert everything["total"] == 5 and (everything["page"], everything["size"]) == (1, 50)
    assert [(i["list_kind"], i["listed_on"], i["status"]) for i in everything["items"]] == [
        ("procurement_ban", "2026-02-02", "active"), ("dishonest_debtor", "2025-02-10", "delisted"),
        ("major_tax_violation", "2025-01-15", "delisted"), ("wage_arrears", "2024-12-02", "delisted"),
        ("dishonest_debtor", "2024-05-10", "expired")]
    first = everything["items"][0]
    assert (first["subject_name"], first["public_id"], first["category"], first["colour"], first["department"],
            first["ref"]) == (world["company"].name, world["company"].id, "enterprise", "black", "xc-finance",
                              f"许财采罚〔2026〕{tag:05d}号")
    assert first["legal_end"] is not None and first["ended_on"] is None

    debtor = await api.get("/lists", entity=company_id, kind="dishonest_debtor")
    assert [(i["ref"], i["status"]) for i in debtor["items"]] == [
        (f"（2025）豫10执{tag:05d}号", "delisted"), (f"（2024）豫10执{tag:05d}号", "expired")]
    delisted = [i for i in debtor["items"] if i["status"] == "delisted"][0]
    assert delisted["ended_on"] == "2025-09-01"
    court = await api.get("/lists", entity=company_id, department="xc-court")
    assert court["total"] == 2 and {i["department"] for i in court["items"]} == {"xc-court"}
    in_2025 = await api.get("/lists", entity=company_id, **{"from": "2025-01-01", "to": "2025-12-31"})
    assert [i["listed_on"] for i in in_2025["items"]] == ["2025-02-10", "2025-01-15"]
    active = await api.get("/lists", entity=company_id, status="active")
    assert [i["list_kind"] for i in active["items"]] == ["procurement_ban"]
    assert (await api.get("/lists", entity=company_id, category="individual"))["total"] == 0

    # without the entity filter: every item satisfies the filters, ours among them
    red = await api.get("/lists", kind="red", category="enterprise", department="xc-credit-office",
                        **{"from": "2026-05-20", "to": "2026-05-20"}, size=500)
    assert world["honoured_id"] in {i["entity_id"] for i in red["items"]}
    assert all((i["list_kind"], i["colour"], i["category"], i["department"], i["listed_on"]) ==
               ("red", "red", "enterprise", "xc-credit-office", "2026-05-20") for i in red["items"])
    black = await api.get("/lists", colour="black", size=500)
    assert all(i["colour"] == "black" for i in black["items"])

    pages = [await api.get("/lists", entity=company_id, size=2, page=n) for n in (1, 2, 3)]
    assert [i for pg in pages for i in pg["items"]] == everything["items"]
    assert [len(pg["items"]) for pg in pages] == [2, 2, 1] and {pg["total"] for pg in pages} == {5}


async def test_lists_csv_export(api, world) -> None:
    status, body, headers = await api.raw("/lists", entity=world["company_id"], format="csv")
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in headers["Content-Disposition"]
    assert body.startswith("\ufeff")  # the byte-order mark, for Excel
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0] == CSV_HEADER
    json_rows = (await api.get("/lists", entity=world["company_id"]))["items"]
    assert len(rows) == 1 + len(json_rows) == 6
    company = world["company"]
    county = COUNTIES[county_of("USCC", company.id, DIVISIONS)]
    assert rows[1] == [company.name, company.id, "企业", county, "政府采购禁止参加名单", "黑名单",
                       f"许财采罚〔{2026}〕{world['tag']:05d}号", "提供虚假材料谋取中标", "xc-finance", "2026-02-02",
                       json_rows[0]["legal_end"], "有效", "", world["company_id"], json_rows[0]["event_id"]]
    assert [r[4] for r in rows[1:]] == ["政府采购禁止参加名单", "失信被执行人名单", "重大税收违法失信主体名单",
                                        "拖欠农民工工资失信联合惩戒对象名单", "失信被执行人名单"]
    assert [r[11] for r in rows[1:]] == ["有效", "已移出", "已移出", "已移出", "已到期"]

    _, only_court, _ = await api.raw("/lists", entity=world["company_id"], department="xc-court", format="csv")
    court_rows = list(csv.reader(io.StringIO(only_court.lstrip("\ufeff"))))
    assert court_rows[0] == CSV_HEADER and len(court_rows) == 3 and {r[8] for r in court_rows[1:]} == {"xc-court"}
    _, empty, _ = await api.raw("/lists", entity=world["company_id"], category="individual", format="csv")
    assert list(csv.reader(io.StringIO(empty.lstrip("\ufeff")))) == [CSV_HEADER]


# ----------------------------------------------------------------------------- double publicity


async def test_publicity_records_with_national_fields_and_windows(api, world) -> None:
    rules = loader.load()
    company, life = world["company"], world["life"]
    pen = {r["decision_no"]: r for _, r in life[0] if r["envelope"]["event_type"] == "AdministrativePenaltyImposed"}
    got = await api.get("/publicity", entity=world["company_id"])
    assert got["total"] == 4
    assert [i["decision_date"] for i in got["items"]] == sorted((i["decision_date"] for i in got["items"]),
                                                                reverse=True)
    penalties = {i["ref"]: i for i in got["items"] if i["kind"] == "penalty"}
    assert set(penalties) == set(pen)
    for ref, item in penalties.items():
        rec = pen[ref]
        n = item["national"]
        assert (n["CF_WSH"], n["CF_XDR_MC"], n["CF_XDR_SHXYM"], n["CF_XDR_ZJHM"], n["CF_JDRQ"]) == (
            ref, company.name, company.id, None, rec["decision_date"].isoformat())
        assert n["CF_CFJG"] == "许昌市市场监督管理局" and n["CF_WFXW"] == rec["violation_type"]
        w = publicity.publication_window(rules.publication, rec["decision_date"], rec["severity"])
        assert (item["window_start"], item["earliest_repair"], item["automatic_end"]) == (
            w.start.isoformat(), w.earliest_repair.isoformat() if w.earliest_repair else None,
            w.automatic_end.isoformat() if w.automatic_end else None)
        expected = publicity.lateness(rules.calendar, rec["decision_date"], date.fromisoformat(item["ledger_date"]))
        assert (item["deadline"], item["working_days"], item["late"], item["provisional"]) == (
            expected.deadline.isoformat(), expected.working_days_taken, True, expected.provisional)
        assert item["department"] == "xc-samr" and item["entity_id"] == world["company_id"]
    assert {r: i["status"] for r, i in penalties.items()} == {
        f"许市监罚〔2025〕A{world['tag']:05d}号": "expired", f"许市监罚〔2025〕B{world['tag']:05d}号": "repaired",
        f"许市监罚〔2026〕C{world['tag']:05d}号": "revoked"}
    licence = next(i for i in got["items"] if i["kind"] == "licence")
    assert (licence["ref"], licence["status"], licence["ended_on"]) == (f"JY141100{world['tag']:05d}", "revoked",
                                                                        "2026-01-12")
    assert licence["national"]["XK_XKBH"] == licence["ref"] and licence["national"]["XK_XDR_SHXYM"] == company.id
    assert (licence["window_start"], licence["earliest_repair"]) == ("2023-03-01", None)

    # filters
    assert [i["kind"] for i in (await api.get("/publicity", entity=world["company_id"], kind="licence"))["items"]] \
        == ["licence"]
    repaired = await api.get("/publicity", entity=world["company_id"], status="repaired")
    assert [i["ref"] for i in repaired["items"]] == [f"许市监罚〔2025〕B{world['tag']:05d}号"]
    assert (await api.get("/publicity", entity=world["company_id"], late="false"))["total"] == 0
    samr = await api.get("/publicity", department="xc-samr", kind="penalty", size=500,
                         **{"from": "2025-03-03", "to": "2025-03-03"})
    assert f"许市监罚〔2025〕A{world['tag']:05d}号" in {i["ref"] for i in samr["items"]}
    assert all(i["decision_date"] == "2025-03-03" and i["department"] == "xc-samr" for i in samr["items"])

    # the natural person: national fields with the masked ID number only
    person = await api.get("/publicity", entity=world["person_id"])
    assert person["total"] == 2
    for item in person["items"]:
        n = item["national"]
        assert (n["CF_XDR_ZJLX"], n["CF_XDR_ZJHM"], n["CF_XDR_SHXYM"], n["CF_XDR_LB"]) == (
            "身份证", identity.mask_ric(world["person"].id), None, "自然人")
        assert item["public_id"] == identity.mask_ric(world["person"].id)
    assert {i["ref"]: i["late"] for i in person["items"]} == {
        world["late"]["decision_no"]: True, world["on_time"]["decision_no"]: False}


async def test_lateness_report_per_department(api, world) -> None:
    report = await api.get("/publicity/lateness")
    assert set(report["total"]) == {"records", "on_time", "late", "unknown", "provisional", "share_late"}
    for row in report["departments"]:
        assert row["records"] == row["on_time"] + row["late"] + row["unknown"]
    samr = next(r for r in report["departments"] if r["department"] == "xc-samr")
    assert samr["records"] >= 3 and samr["late"] >= 3

    # the environment bureau's penalties of two decision days: the report matches the records
    for day, ours_late in ((world["late"]["decision_date"], True), (world["on_time"]["decision_date"], False)):
        span = {"from": day.isoformat(), "to": day.isoformat()}
        rep = await api.get("/publicity/lateness", kind="penalty", **span)
        row = next(r for r in rep["departments"] if r["department"] == "xc-eco-env")
        recs = (await api.get("/publicity", department="xc-eco-env", kind="penalty", size=500, **span))["items"]
        assert (row["records"], row["late"], row["on_time"], row["unknown"]) == (
            len(recs), sum(i["late"] is True for i in recs), sum(i["late"] is False for i in recs),
            sum(i["late"] is None for i in recs))
        known = row["late"] + row["on_time"]
        assert row["share_late"] == (round(row["late"] / known, 4) if known else None)
        mine = [i for i in recs if i["entity_id"] == world["person_id"]]
        assert [i["late"] for i in mine] == [ours_late]
        assert row["late" if ours_late else "on_time"] >= 1
    late_day = world["late"]["decision_date"].isoformat()
    that_day = await api.get("/publicity/lateness", kind="penalty", **{"from": late_day, "to": late_day})
    eco = next(r for r in that_day["departments"] if r["department"] == "xc-eco-env")
    assert eco["share_late"] == 1.0


async def test_coverage_per_credit_database(api, world) -> None:
    cov = await api.get("/coverage")
    assert [d["category"] for d in cov["databases"]] == [
        "government", "public_institution", "social_organisation", "enterprise", "individual"]
    # the 80 % is the key natural persons' (measured against the groups' registers), not every person's
    assert [d["target"] for d in cov["databases"]] == [0.9, 0.9, 0.9, 0.9, None]
    assert cov["targets"] == {"legal_persons": 0.9, "key_natural_persons": 0.8} and cov["county"] is None
    key = cov["key_natural_persons"]
    assert key["target"] == 0.8 and len(key["groups"]) >= 19 and key["groups"][0]["name"] == "公务员"
    for d in [*cov["databases"], cov["legal_persons"], {k: v for k, v in key.items() if k != "groups"}]:
        assert set(d) == {"category", "registered", "with_records", "share", "target", "meets_target",
                          "unregistered_with_records"}
        assert 0 <= d["with_records"] <= d["registered"]
        if d["registered"]:
            assert d["share"] == round(d["with_records"] / d["registered"], 4)
            assert d["meets_target"] == (None if d["target"] is None else d["share"] >= d["target"])
        else:
            assert d["share"] is None and d["meets_target"] is None
    enterprise = cov["databases"][3]
    assert enterprise["registered"] >= 2 and enterprise["with_records"] >= 2  # our two companies
    assert cov["legal_persons"]["registered"] == sum(d["registered"] for d in cov["databases"][:4])
    assert cov["databases"][4]["unregistered_with_records"] >= 1  # the person: records, no register entry


# ----------------------------------------------------------------------------- errors


async def test_errors_name_the_problem(api, world) -> None:
    unknown = await api.get("/entities/uscc:91411002MA00000000", expect=404)
    assert unknown["error"] == "unknown entity"
    await api.get("/entities/uscc:91411002MA00000000/history", expect=404)
    for path, params, name in (
            ("/lists", {"from": "2026-13-01"}, "from"),
            ("/lists", {"from": "2026-02-01", "to": "2026-01-01"}, "from"),
            ("/lists", {"size": "501"}, "size"),
            ("/lists", {"page": "0"}, "page"),
            ("/lists", {"kind": "blacklist"}, "kind"),
            ("/lists", {"category": "company"}, "category"),
            ("/lists", {"department": "xc-nowhere"}, "department"),
            ("/lists", {"format": "xlsx"}, "format"),
            ("/lists", {"dept": "xc-samr"}, "dept"),
            ("/publicity", {"late": "maybe"}, "late"),
            ("/entities/" + world["company_id"] + "/history", {"size": "ten"}, "size"),
            ("/coverage", {"after": "latest"}, "after"),
            ("/coverage", {"after": "7:1"}, "after"),
            ("/coverage", {"after": "0:1", "wait": "31"}, "wait"),
            ("/lookup", {}, "id")):
        body = await api.get(path, expect=400, **params)
        assert body["parameter"] == name and name in body["error"], (path, params, body)
    await api.get("/nowhere", expect=404)

    # a position far beyond the end of the ledger: 409 with the current positions
    current = (await api.get("/positions"))["positions"]
    started = time.monotonic()
    body = await api.get("/coverage", expect=409, after=f"1:{current['1'] + 10**9}", wait=0.5)
    assert time.monotonic() - started >= 0.5
    assert body["wanted"] == {"partition": 1, "offset": current["1"] + 10**9}
    assert set(body["current"]) == {"0", "1", "2", "3"} and body["current"]["1"] >= current["1"]


# ----------------------------------------------------------------------------- read-your-writes


async def test_read_your_writes_waits_for_the_position(settings, services, api, world) -> None:
    """With the projector stopped, a new penalty's position is not reached (409); a request that
    waits is answered once the projector is back, with the new data."""
    rng = helpers.rng("query-api-ryw")
    person_id = world["person_id"]
    before = await api.get(f"/entities/{person_id}")
    projector = services["projector"]
    await asyncio.to_thread(projector.stop)
    try:
        record = workload.penalty(rng, world["person"], "xc-samr", rng.randrange(10**6, 10**7))
        [outcome] = await submit_as_departments(settings, [("xc-samr", record)])
        assert outcome["status"] == "ACCEPTED" and outcome["entity_id"] == person_id
        conflict = await api.get(f"/entities/{person_id}", expect=409, after=_pos(outcome), wait=0.3)
        p = str(outcome["ledger_partition"])
        assert conflict["wanted"] == {"partition": outcome["ledger_partition"], "offset": outcome["ledger_offset"]}
        assert conflict["current"][p] <= outcome["ledger_offset"]

        async def waiting() -> tuple[float, Any]:
            t0 = time.monotonic()
            body = await api.get(f"/entities/{person_id}", after=_pos(outcome), wait=30)
            return time.monotonic() - t0, body

        task = asyncio.create_task(waiting())
        await asyncio.sleep(1.5)
        assert not task.done()
    finally:
        await asyncio.to_thread(projector.start)
    waited, after = await task
    assert waited >= 1.5
    assert after["version"] == before["version"] + 1 == outcome["entity_version"]
    assert after["counts"]["AdministrativePenaltyImposed"] == 3
    assert record["decision_no"] in {x["ref"] for x in after["publicity"]}
    # already reached: answered at once, on every route
    assert (await api.get("/publicity", entity=person_id, after=_pos(outcome), wait=0))["total"] == 3


# ----------------------------------------------------------------------------- privacy


async def test_no_clear_id_number_in_any_response_or_log(services, api, world) -> None:
    person = world["person"]
    person_id = world["person_id"]
    for path in (f"/entities/{person_id}", f"/entities/{person_id}/history", f"/publicity?entity={person_id}",
                 f"/lists?entity={person_id}", "/lists?category=individual&format=csv", "/coverage",
                 "/publicity?kind=penalty&size=500", "/metrics"):
        await api.raw(path)
    await api.raw("/lookup", id=person.id)
    await api.raw("/lookup", id=person.id[:17] + ("1" if person.id[17] != "1" else "2"))  # a typo: 400 or 404
    await api.raw(f"/entities/{person.id}")  # a clear number in the path: 404, never echoed
    assert len(BODIES) > 20
    leaks = [b[:200] for b in BODIES if person.id in b or person.id[:17] in b]
    assert leaks == []
    await asyncio.sleep(0.2)
    log_text = services["query-api"].log.read_text(encoding="utf-8", errors="replace")
    assert person.id[:17] not in log_text and '"route": "/lookup"' in log_text
