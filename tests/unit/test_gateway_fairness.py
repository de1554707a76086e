"""The gateway's fair shares (ledger/intake/gateway/fairness.py) over an injected clock: a token
bucket of events per second per department, a cap on its requests at once, 429's Retry-After, and
the limits file's JSON."""

from __future__ import annotations

import pytest

from ledger.intake.gateway.fairness import CONCURRENCY, EVERY, RATE, Fairness, Limits, Refusal, parse_limits

DEFAULT = Limits(events_per_second=10.0, burst=20, concurrent_requests=2)


def fair(**per_department: Limits) -> Fairness:
    return Fairness({EVERY: DEFAULT, **per_department})


def test_a_full_bucket_takes_a_burst_then_refuses_until_it_refills() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None and f.charge("a", 20, 0.0) is None
    f.leave("a")
    assert f.enter("a", 0.0) == Refusal(RATE, 1, DEFAULT)  # empty: one event is 0.1 s away, said as 1 s
    assert f.enter("a", 0.05) is not None
    assert f.enter("a", 0.1) is None  # one event refilled
    assert f.charge("a", 2, 0.1) == Refusal(RATE, 1, DEFAULT)  # two are not there yet: nothing taken
    assert f.charge("a", 1, 0.1) is None
    f.leave("a")


def test_the_retry_after_is_when_the_bucket_holds_enough_in_whole_seconds() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None and f.charge("a", 20, 0.0) is None
    assert f.charge("a", 15, 0.0) == Refusal(RATE, 2, DEFAULT)  # 15 events at 10/s: 1.5 s, rounded up
    assert f.charge("a", 15, 1.49) is not None
    assert f.charge("a", 15, 1.5) is None


def test_a_batch_larger_than_the_burst_is_taken_from_a_full_bucket_and_the_debt_is_repaid() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None and f.charge("a", 50, 0.0) is None  # 50 > burst 20: taken, 30 owed
    f.leave("a")
    refused = f.enter("a", 0.0)
    assert refused is not None and refused.retry_after == 4  # 31 events short of one: 3.1 s
    assert f.enter("a", 3.05) is not None
    assert f.enter("a", 3.1) is None
    assert f.charge("a", 50, 3.1) is not None  # a full bucket again only after 20 / 10 s more
    assert f.charge("a", 50, 5.1) is None


def test_one_department_emptying_its_bucket_leaves_anothers_full() -> None:
    f = fair()
    assert f.enter("flood", 0.0) is None and f.charge("flood", 20, 0.0) is None
    assert f.enter("flood", 0.0) is not None
    assert f.enter("calm", 0.0) is None and f.charge("calm", 20, 0.0) is None


def test_requests_at_once_are_capped_per_department_and_freed_when_answered() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None and f.enter("a", 0.0) is None
    assert f.enter("a", 0.0) == Refusal(CONCURRENCY, 1, DEFAULT)
    assert f.enter("b", 0.0) is None  # another department is served
    f.leave("a")
    assert f.enter("a", 0.0) is None
    assert f.in_flight == {"a": 2, "b": 1}
    for d in ("a", "a", "b"):
        f.leave(d)
    assert f.in_flight == {}


def test_a_refused_request_is_not_counted_in_flight_and_takes_no_events() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None and f.charge("a", 20, 0.0) is None
    assert f.enter("a", 0.0) is not None
    assert f.in_flight == {"a": 1}
    assert f.charge("a", 5, 0.0) is not None
    assert f.enter("a", 0.5) is None and f.buckets["a"].tokens == pytest.approx(5.0)


def test_zero_means_no_limit() -> None:
    f = fair(free=Limits(0.0, 0, 0))
    for _ in range(1000):
        assert f.enter("free", 0.0) is None and f.charge("free", 10_000, 0.0) is None
    assert f.in_flight["free"] == 1000


def test_a_department_named_in_the_limits_has_its_own() -> None:
    f = fair(slow=Limits(1.0, 1, 1))
    assert f.enter("slow", 0.0) is None and f.charge("slow", 1, 0.0) is None
    assert f.enter("slow", 0.0) == Refusal(CONCURRENCY, 1, Limits(1.0, 1, 1))
    f.leave("slow")
    assert f.enter("slow", 0.5) == Refusal(RATE, 1, Limits(1.0, 1, 1))
    assert f.of("other") == DEFAULT


def test_new_limits_apply_to_the_buckets_already_filled() -> None:
    f = fair()
    assert f.enter("a", 0.0) is None
    f.leave("a")
    f.limits = {EVERY: Limits(10.0, 5, 2)}
    assert f.charge("a", 4, 0.0) is None and f.buckets["a"].tokens == 1.0  # 20 held, cut to the new burst 5
    assert f.charge("a", 2, 0.0) is not None


def test_the_limits_file_sets_departments_over_the_default_and_star_over_the_settings() -> None:
    got = parse_limits({"*": {"concurrent_requests": 4}, "xc-tax": {"events_per_second": 2.5, "burst": 5}}, DEFAULT)
    assert got == {EVERY: Limits(10.0, 20, 4), "xc-tax": Limits(2.5, 5, 4)}
    assert parse_limits({}, DEFAULT) == {EVERY: DEFAULT}


@pytest.mark.parametrize("data, named", [
    ([], "expected"), ({"a": 3}, "a: expected"), ({"a": {"rate": 1}}, "a: expected"),
    ({"a": {"burst": 1.5}}, "a.burst"), ({"a": {"events_per_second": -1}}, "a.events_per_second"),
    ({"a": {"concurrent_requests": True}}, "a.concurrent_requests"), ({"*": {"burst": "9"}}, "*.burst"),
    ({"a": {"events_per_second": float("inf")}}, "a.events_per_second"),
    ({"a": {"burst": 0}}, "a.burst: a rate needs"),
])
def test_a_wrong_limits_file_is_refused_naming_what(data: object, named: str) -> None:
    with pytest.raises(ValueError, match=f"^{named.replace('*', '[*]')}"):
        parse_limits(data, DEFAULT)
