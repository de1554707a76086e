"""Given the running gateway, when one department goes over its limits (set for it in the keys dir's
gateway-limits.json, read again without a restart), then it is answered 429 with Retry-After naming
the limit while another department is served; a body over the size limits is answered 413; a token
removed from api-tokens.json is refused (401) and a new one accepted without a restart; the refusals
are counted by reason and department; and nothing refused reaches credit.submissions or the ledger."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger.intake.gateway.limits import LIMITS_FILE
from ledger.intake.gateway.tokens import TOKENS_FILE, token_digest
from ops import workload
from tests import helpers
from tests.integration.test_gateway import Gateway, as_json, assert_nothing_submitted

RECHECK = 5.0  # the gateway looks at the tokens' and the limits' files at most this often
FLOOD, CALM = "xc-tax", "xc-samr"


@pytest.fixture(scope="module")
async def gw(settings, services):  # type: ignore[no-untyped-def]
    tokens = {p.stem: p.read_text().strip() for p in settings.keys_dir.glob("*.token")}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield Gateway(session, f"http://127.0.0.1:{settings.gateway_port}", tokens)


async def take_effect(gw: Gateway) -> None:
    """Past the gateway's next look at its files: wait, then one request (a 400) makes it look."""
    await asyncio.sleep(RECHECK + 0.3)
    status, _, _ = await gw.call("POST", "/v1/events", CALM, raw=b"{")
    assert status == 400


@pytest.fixture
async def limits(settings, gw) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    """Write the limits file (and wait for the gateway to read it); removed afterwards."""
    path: Path = settings.keys_dir / LIMITS_FILE

    async def write(data: dict[str, Any]) -> None:
        path.write_text(json.dumps(data))
        await take_effect(gw)

    yield write
    path.unlink(missing_ok=True)
    await take_effect(gw)


def penalties(name: str, department: str, n: int) -> tuple[list[workload.Subject], list[dict[str, Any]]]:
    rng = helpers.rng(name)
    subjects = workload.subjects(rng, n, persons_share=0.0)
    return subjects, [workload.penalty(rng, s, department, rng.randrange(10**6, 10**7)) for s in subjects]


async def limited_count(gw: Gateway, reason: str, department: str) -> float:
    _, text, _ = await gw.call("GET", "/metrics")
    m = re.search(rf'ledger_gateway_limited_total\{{department="{department}",reason="{reason}"\}} (\S+)', text)
    return float(m.group(1)) if m else 0.0


async def test_a_department_over_its_rate_gets_429_with_retry_after_while_another_is_served(
        settings, gw, limits) -> None:
    await limits({FLOOD: {"events_per_second": 0.1, "burst": 2}})
    before = await limited_count(gw, "rate", FLOOD)
    subjects, records = penalties("limits-rate", FLOOD, 5)
    for record in records[:2]:  # the burst
        status, body, _ = await gw.submit(FLOOD, record)
        assert (status, body["status"]) == (200, "ACCEPTED"), body
    status, body, headers = await gw.submit(FLOOD, records[2])
    assert status == 429, body
    assert body["code"] == "limit.rate" and body["limit"]["events_per_second"] == 0.1
    assert 5 <= int(headers["Retry-After"]) == body["retry_after"] <= 10  # one event at 0.1/s
    assert "每秒 0.1 条事件" in body["error"] and "events per second" in body["error"]
    status, body, headers = await gw.call("POST", "/v1/events:batch", FLOOD, [as_json(r) for r in records[3:]])
    assert (status, body["code"]) == (429, "limit.rate") and int(headers["Retry-After"]) >= 5
    # another department is served meanwhile
    _, calm = penalties("limits-rate-calm", CALM, 1)
    status, body, _ = await gw.submit(CALM, calm[0])
    assert (status, body["status"]) == (200, "ACCEPTED"), body
    assert await limited_count(gw, "rate", FLOOD) == before + 2
    await assert_nothing_submitted(settings, *subjects[2:])


async def slow_body(record: dict[str, Any], go: asyncio.Event) -> AsyncIterator[bytes]:
    data = json.dumps(as_json(record), ensure_ascii=False).encode()
    yield data[:10]
    await go.wait()
    yield data[10:]


async def test_a_department_over_its_requests_at_once_gets_429_while_another_is_served(settings, gw, limits) -> None:
    await limits({FLOOD: {"concurrent_requests": 1}})
    subjects, records = penalties("limits-concurrency", FLOOD, 3)
    go = asyncio.Event()
    url = f"{gw.base}/v1/events"
    auth = {"Authorization": f"Bearer {gw.tokens[FLOOD]}", "Content-Type": "application/json"}
    # the first request is in flight until its body has arrived
    first = asyncio.create_task(gw.session.post(url, data=slow_body(records[0], go), headers=auth))
    await asyncio.sleep(0.5)
    assert not first.done()
    status, body, headers = await gw.submit(FLOOD, records[1])
    assert (status, body["code"], headers["Retry-After"]) == (429, "limit.concurrency", "1"), body
    assert "同时处理中的请求已达上限（1 个）" in body["error"] and "requests being handled" in body["error"]
    _, calm = penalties("limits-concurrency-calm", CALM, 1)
    status, body, _ = await gw.submit(CALM, calm[0])
    assert (status, body["status"]) == (200, "ACCEPTED"), body
    go.set()
    async with await first as r:
        assert r.status == 200 and (await r.json())["status"] == "ACCEPTED"
    status, body, _ = await gw.submit(FLOOD, records[2])  # the first one answered: room again
    assert (status, body["status"]) == (200, "ACCEPTED"), body
    assert await limited_count(gw, "concurrency", FLOOD) >= 1
    await assert_nothing_submitted(settings, subjects[1])


async def raw_post(settings, path: str, token: str, length: int, body: bytes) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A POST whose Content-Length announces `length` bytes, of which only `body` is sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", settings.gateway_port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode() + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        size = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        return int(head.split()[1]), json.loads(await reader.readexactly(size))
    finally:
        writer.close()


async def test_a_body_over_the_size_limits_is_413_and_nothing_is_submitted(settings, gw) -> None:
    before = await limited_count(gw, "size", CALM)
    subjects, records = penalties("limits-size", CALM, 2)
    padded = json.dumps(as_json(records[0]), ensure_ascii=False).encode() + b" " * settings.gateway_max_event_bytes
    status, body, _ = await gw.call("POST", "/v1/events", CALM, raw=padded)
    assert (status, body["code"], body["limit_bytes"]) == (413, "body.too_large", settings.gateway_max_event_bytes)
    assert "单条事件" in body["error"] and "a single event" in body["error"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: judged once read
        yield padded

    status, body, _ = await gw.call("POST", "/v1/events", CALM, raw=chunked())  # type: ignore[arg-type]
    assert (status, body["code"]) == (413, "body.too_large")
    # a batch announcing more than its limit is refused before its body is read
    status, body = await raw_post(settings, "/v1/events:batch", gw.tokens[CALM], settings.gateway_max_batch_bytes + 1,
                                  json.dumps([as_json(records[1])]).encode())
    assert (status, body["code"], body["limit_bytes"]) == (413, "body.too_large", settings.gateway_max_batch_bytes)
    assert "批量报送" in body["error"] and "a batch" in body["error"]
    assert await limited_count(gw, "size", CALM) == before + 3
    await assert_nothing_submitted(settings, *subjects)


@pytest.fixture
def tokens_file(settings) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    path: Path = settings.keys_dir / TOKENS_FILE
    original = path.read_bytes()
    yield path
    path.write_bytes(original)


async def until(check: Any, seconds: float) -> float:
    """Seconds until `check()` is true (polled), failing after `seconds`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await check():
        assert loop.time() - start < seconds, "not within the gateway's re-read interval"
        await asyncio.sleep(0.2)
    return loop.time() - start


async def test_a_token_revoked_is_refused_and_a_new_one_accepted_without_a_restart(settings, gw, tokens_file) -> None:
    old, new = gw.tokens[FLOOD], secrets.token_urlsafe(32)
    pid = services_pid(settings)
    subjects, records = penalties("limits-tokens", FLOOD, 60)  # a new event at every attempt
    digests = json.loads(tokens_file.read_text())
    digests[FLOOD] = token_digest(new)  # rotated: the old token revoked, a new one issued
    tokens_file.write_text(json.dumps(digests))
    attempts: list[int] = []

    async def old_refused() -> bool:
        attempts.append(len(attempts))
        status, body, _ = await gw.call("POST", "/v1/events", headers={"Authorization": f"Bearer {old}"},
                                        body=as_json(records[attempts[-1]]))
        if status == 200:  # not yet read again: still accepted
            return False
        assert (status, body["code"]) == (401, "auth.unknown"), body
        return True

    assert await until(old_refused, RECHECK + 2) <= RECHECK + 1
    refused = subjects[attempts[-1]]
    status, body, _ = await gw.call("POST", "/v1/events", headers={"Authorization": f"Bearer {new}"},
                                    body=as_json(records[-1]))
    assert (status, body["status"]) == (200, "ACCEPTED"), body
    status, _, _ = await gw.call("POST", "/v1/events", headers={"Authorization": f"Bearer {old}"},
                                 body=as_json(records[-2]))
    assert status == 401
    assert services_pid(settings) == pid  # the same gateway process throughout
    await assert_nothing_submitted(settings, refused, subjects[-2])
    # restored: the old token is accepted again, the new one refused
    tokens_file.write_text(json.dumps({**digests, FLOOD: token_digest(old)}))

    async def old_back() -> bool:
        return (await gw.call("GET", "/v1/outcomes/none", headers={"Authorization": f"Bearer {old}"}))[0] == 404

    await until(old_back, RECHECK + 2)
    assert (await gw.call("GET", "/v1/outcomes/none", headers={"Authorization": f"Bearer {new}"}))[0] == 401


def services_pid(settings) -> int:  # type: ignore[no-untyped-def]
    from ops import stack as ops_stack

    pid = ops_stack.Service(settings, "gateway").pid()
    assert pid
    return pid
