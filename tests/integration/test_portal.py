"""Given the running stack with the portal, when departments have submitted a small credit world,
then every portal page answers in Chinese (html lang zh-CN, every form control labelled, no
scripts) with the projected data: search by part of a name, by credit code and by ID number; the
entity page with list status, legal basis, end date and grade reasons; the lists with filters; the
month's and the quarter's publication as a page and as CSV; the latest signed tree heads, which
the downloaded verifier accepts on its own (and refuses once altered); the operator dashboard from
the services' metrics (alerts by department included) and the views. Bad parameters get a 400 page naming them; no page and no log
line holds a natural person's clear ID number."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from ledger.audit import verify
from ledger.domain import identity
from ledger.domain import rules as domain_rules
from ledger.rules import loader
from projections.web import dashboard
from schemas import registry
from tests import helpers, portal_world


@pytest.fixture(scope="module")
async def portal(settings, services):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield portal_world.Portal(session, f"http://127.0.0.1:{settings.portal_port}")


@pytest.fixture(scope="module")
async def world(settings, portal):  # type: ignore[no-untyped-def]
    return await portal_world.build(settings, "portal-http")


async def test_home_page_has_the_search_form(portal) -> None:
    body = await portal.page("/")
    assert '<label for="q">' in body and 'action="/search"' in body
    assert "/publication.csv?period=" in body
    async with portal.session.get(portal.base + "/static/portal.css") as r:
        assert r.status == 200 and "text/css" in r.headers["Content-Type"]


async def test_search_by_part_of_a_chinese_name(portal, world) -> None:
    body = await portal.page("/search", q=world["marker"])  # the middle of the names only
    assert "共 3 个信用主体" in body
    for key in ("company", "honoured"):
        assert world[key].name in body and f'href="/entity/{world[key + "_id"]}"' in body
    assert world["person"].name in body and identity.mask_ric(world["person"].id) in body
    two = await portal.page("/search", q=world["marker"][-3:] + "精密")
    assert world["company"].name in two and world["honoured"].name not in two
    none = await portal.page("/search", q="不存在的主体名称" + world["marker"])
    assert "共 0 个信用主体" in none and "没有找到" in none


async def test_search_by_credit_code_or_id_number_opens_the_entity(settings, portal, world) -> None:
    await portal.page("/search", q=world["company"].id.lower())
    assert portal.last_url.endswith("/entity/" + world["company_id"])
    person = world["person"].id
    await portal.page("/search", q=f"{person[:6]} {person[6:]}")
    assert portal.last_url.endswith("/entity/" + world["person_id"]) and person not in portal.last_url
    # an ID number of nobody: not searched by name, never echoed in clear
    other = person[:6] + "19990101" + "000"
    from stdnum.cn import ric
    other += ric.calc_check_digit(other + "0")
    body = await portal.page("/search", q=other)
    assert other not in body and identity.mask_ric(other) in body and "共 0 个信用主体" in body


async def test_entity_page_shows_why_it_is_listed(settings, portal, world) -> None:
    body = await portal.page(f"/entity/{world['company_id']}")
    ban = world["ban"]
    assert world["company"].name in body and world["company"].id in body
    status = body.split('id="list-status"', 1)[1].split("</dd>", 1)[0]
    assert "政府采购禁止参加名单" in status
    lists = body.split('id="lists"', 1)[1].split("</section>", 1)[0]
    row = next(r for r in lists.split("<tr") if ban["decision_no"] in r)
    end = loader.load_publication_periods().listing_window(
        "procurement_ban", world["ban_on"], domain_rules.ListingTerms(period_months=24)).automatic_end
    assert world["ban_on"].isoformat() in row and f'<td class="legal-end">{end}</td>' in row  # listed on, legal end (24 months)
    assert "中华人民共和国政府采购法 第七十七条" in row and "有效" in row
    assert "失信被执行人名单" in body and "已移出" in body and "已到期" in body
    grade = body.split('id="grade"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"信用等级：[ABCD] 级", grade) and ban["decision_no"] in grade
    # all its double-publicity records ended (expired, repaired, revoked): none on display
    assert "无公示期内的行政许可或行政处罚记录" in body and "依规不再公示" in body

    honoured = await portal.page(f"/entity/{world['honoured_id']}")
    assert "守信激励（红名单）" in honoured and "A 级" in honoured
    # the credit report, on the query API, and what verifies it, on the portal
    report = body.split('id="report"', 1)[1].split("</section>", 1)[0]
    base = f"http://127.0.0.1:{settings.api_port}/entities/{world['company_id']}/report"
    assert f'href="{base}.pdf"' in report and f'href="{base}.json"' in report
    assert all(f'href="/{f}"' in report for f in ("verify.py", "notary.pub", "report-issuer.pub"))
    async with portal.session.get(portal.base + "/report-issuer.pub") as r:
        assert r.status == 200 and r.headers["Content-Disposition"] == 'attachment; filename="report-issuer.pub"'
        key = (await r.text()).strip()
    assert key == (settings.keys_dir / "report-issuer" / "report-issuer.pub").read_text().strip()


async def test_person_page_is_masked_and_shows_penalties_in_their_window(portal, world) -> None:
    body = await portal.page(f"/entity/{world['person_id']}")
    assert world["person"].id not in body
    assert identity.mask_ric(world["person"].id) in body
    publicity = body.split('id="publicity"', 1)[1].split("</section>", 1)[0]
    rows = publicity.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<td>行政处罚</td>") == 2 and world["late"]["decision_date"].isoformat() in rows
    await portal.page("/entity/uscc:000000000000000000", expect=404)


async def test_lists_with_filters_and_paging(portal, world) -> None:
    ban = world["ban"]
    body = await portal.page("/lists", kind="procurement_ban", department="xc-finance", colour="", status="active",
                             category="enterprise", **{"from": world["ban_month_days"][0].isoformat(),
                                                          "to": world["ban_month_days"][1].isoformat()})
    assert ban["decision_no"] in body and world["company"].name in body
    assert '<option value="procurement_ban" selected>' in body and '<option value="xc-finance" selected>' in body
    red = await portal.page("/lists", colour="red", size="200")
    assert world["honoured"].name in red and ban["decision_no"] not in red
    one = await portal.page("/lists", size="1")
    assert 'rel="next"' in one and "第 1 /" in one

    bad = await portal.page("/lists", expect=400, kind="no_such_list")
    assert 'data-parameter="kind"' in bad and "no_such_list" in bad
    assert 'data-parameter="from"' in await portal.page("/lists", expect=400, **{"from": "2026-13-01"})
    assert 'data-parameter="bogus"' in await portal.page("/lists", expect=400, bogus="1")


async def test_publication_of_a_month_and_a_quarter(portal, world) -> None:
    ban = world["ban"]
    month = await portal.page("/publication", period=world["ban_month"])
    assert f"{world['ban_month_title']}列入名单" in month and 'id="not-a-release"' in month and ban["decision_no"] in month
    assert f'href="/publication.csv?period={world["ban_month"]}"' in month
    quarter = await portal.page("/publication", period=world["ban_quarter"])
    first, last = world["ban_quarter_days"]
    assert f"{world['ban_quarter_title']}列入名单" in quarter and f"{first} 至 {last}" in quarter
    honoured = await portal.page("/publication", period=world["honoured_month"])
    assert world["honoured"].name in honoured and ban["decision_no"] not in honoured  # another month
    for bad in ("2026-13", "2026-Q5", "26-1", "2026/11"):
        assert 'data-parameter="period"' in await portal.page("/publication", expect=400, period=bad)


async def test_publication_csv_download(portal, world) -> None:
    async with portal.session.get(portal.base + "/publication.csv", params={"period": world["ban_month"]}) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert f'filename="credit-publication-{world["ban_month"]}.csv"' in r.headers["Content-Disposition"]
        raw = await r.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    portal.bodies.append(text)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["主体名称", "统一社会信用代码/身份证号码（脱敏）", "信用主体类别", "县（市、区）", "名单类型"]
    mine = [r for r in rows[1:] if r[6] == world["ban"]["decision_no"]]
    assert len(mine) == 1
    county = next(c.name for c in loader.load().divisions.counties if c.id == world["company"].id[2:8])
    assert mine[0][:6] == [world["company"].name, world["company"].id, "企业", county, "政府采购禁止参加名单", "黑名单"]
    assert mine[0][9] == world["ban_on"].isoformat() and mine[0][11] == "有效"
    first, last = (d.isoformat() for d in world["ban_month_days"])
    assert all(first <= r[9] <= last for r in rows[1:])
    async with portal.session.get(portal.base + "/publication.csv", params={"period": "2026-Q9"}) as r:
        assert r.status == 400


async def test_dashboard_from_metrics_and_views(settings, portal, world) -> None:
    body = await portal.page("/dashboard")
    services = body.split('id="services"', 1)[1].split("</section>", 1)[0]
    for name in ("sequencer", "projector", "query-api", "gateway", "portal"):
        assert f"<td>{name}</td><td>运行中</td>" in services
    appended = helpers.metric(settings, "sequencer", "ledger_events_appended_total")
    shown = re.search(r'id="appended-total">([0-9,]+)<', body)
    assert shown and int(shown.group(1).replace(",", "")) == int(appended) > 0
    assert re.search(r'id="lag-seconds">[0-9.,—]+<', body)
    # the person's penalty decided LATE_DECISION_DAYS ago and ledgered today is late: counted and listed
    late = re.search(r'id="late-total">([0-9]+)<', body)
    # the total and the 20 latest late records (other tests' records may be later than this world's)
    assert late and int(late.group(1)) >= 1
    assert int(late.group(1)) == helpers.pg_rows(settings, "select count(*) from views.publicity where late")[0][0]
    latest = helpers.pg_rows(settings, "select subject_name from views.publicity where late "
                                       "order by decision_date desc, event_id limit 20")
    shown = body.split('id="lateness"', 1)[1].split("</section>", 1)[0]
    assert latest and all(name in shown for (name,) in latest)
    assert "法人合计" in body and "90.0%" in body and "80.0%" in body


def _published_heads(settings) -> dict[int, int]:  # type: ignore[no-untyped-def]
    return dict(helpers.pg_rows(settings, "select partition, max(tree_size) from notary.heads where published "
                                          "group by partition"))


async def _download(portal, path: str, **params: Any) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    async with portal.session.get(portal.base + path, params=params or None) as r:
        return r.status, dict(r.headers), await r.read()


async def test_tree_head_page_and_the_downloaded_verifier(settings, portal, world, tmp_path) -> None:
    # the notary signs within LEDGER_NOTARY_INTERVAL of the world's records: wait for a head per partition in use
    used = {p for (p,) in helpers.pg_rows(settings, "select distinct kafka_partition from views.ledger_copy")}
    await helpers.wait_until(lambda: used <= set(_published_heads(settings)), timeout=60,
                             what="a published tree head for every partition with records")
    body = await portal.page("/tree-head")
    newest = _published_heads(settings)
    key = (settings.keys_dir / "notary" / "notary.pub").read_text().strip()
    assert f'<code id="public-key">{key}</code>' in body and f'<code id="key-id">{verify.key_id(key)}</code>' in body
    heads = body.split('id="heads"', 1)[1].split("</section>", 1)[0]
    for p in used:
        row = heads.split(f'<tr data-partition="{p}">', 1)[1].split("</tr>", 1)[0]
        shown = int(re.search(r'class="tree-size">([0-9,]+)<', row).group(1).replace(",", ""))  # type: ignore[union-attr]
        assert newest[p] <= shown <= _published_heads(settings)[p]  # the newest head when the page was made
    assert "如何核验" in body and 'href="/verify.py"' in body and 'href="/notary.pub"' in body
    assert '<a href="/tree-head">' in await portal.page("/")

    # an outsider: the verifier file alone in an empty directory, the key and one head downloaded
    p = min(used)
    status, headers, raw_head = await _download(portal, "/tree-head.json", partition=str(p))
    assert status == 200 and f'filename="tree-head-p{p}-' in headers["Content-Disposition"]
    head = json.loads(raw_head)
    assert head["partition"] == p and head["topic"] == registry.EVENTS.name
    assert verify.head_message(head).decode() in body.replace("&#39;", "'")  # the signed text is shown as signed
    for path, name in (("/notary.pub", "notary.pub"), ("/verify.py", "verify.py")):
        status, headers, raw = await _download(portal, path)
        assert status == 200 and f'filename="{name}"' in headers["Content-Disposition"]
        (tmp_path / name).write_bytes(raw)
    (tmp_path / "head.json").write_bytes(raw_head)
    (tmp_path / "forged.json").write_text(json.dumps({**head, "tree_size": head["tree_size"] + 1}))

    def run(head_file: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-I", "verify.py", "--head", head_file, "--public-key", "notary.pub"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    good, forged = run("head.json"), run("forged.json")
    assert good.returncode == 0 and good.stdout.startswith("VERIFIED: tree head of credit.events"), good
    assert forged.returncode == 1 and "REJECTED" in forged.stdout and "signature" in forged.stdout, forged

    for params, name in (({}, "partition"), ({"partition": str(registry.EVENTS.partitions)}, "partition"),
                         ({"partition": "x"}, "partition"), ({"bogus": "1"}, "bogus")):
        status, _, raw = await _download(portal, "/tree-head.json", **params)
        assert status == 400 and f'data-parameter="{name}"' in raw.decode(), (params, status)


async def test_dashboard_alerts_by_department(settings, portal, world) -> None:
    # the world's procurement ban is imposed by the list keeper on every implementing department
    def alerts() -> dict[tuple[str, str], float]:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port('list-keeper')}/metrics", timeout=5) as r:
            samples = dashboard.parse(r.read().decode())  # prometheus_client's own text parser
        return {(lb["department"], lb["action"]): v for lb, v in samples.get("ledger_alerts_total", [])}

    await helpers.wait_until(lambda: any(a == "impose" and n > 0 for (_, a), n in alerts().items()), timeout=60,
                             what="the list keeper to raise alerts")
    before = alerts()
    body = await portal.page("/dashboard")
    after = alerts()
    section = body.split('id="alerts"', 1)[1].split("</section>", 1)[0]
    departments = {d for d, _ in after}
    assert departments
    for d in departments:
        row = section.split(f'<tr data-department="{d}">', 1)[1].split("</tr>", 1)[0]
        for action in ("impose", "lift", "maintain"):
            shown = int(re.search(rf'class="{action}">([0-9,]+)<', row).group(1).replace(",", ""))  # type: ignore[union-attr]
            assert before.get((d, action), 0) <= shown <= after.get((d, action), 0), (d, action)
    assert "提醒数" in section


async def test_no_clear_id_number_in_any_page_or_log(settings, portal, world) -> None:
    clear = world["person"].id
    assert portal.bodies and all(clear not in b for b in portal.bodies)
    log = (settings.stack_dir / "logs" / "portal.log").read_text(encoding="utf-8")
    assert '"event": "request"' in log and clear not in log
