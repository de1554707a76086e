"""Rebalance storm (issue 18, item 6): the members of each consumer group started and stopped again and
again under load, then the oracle.

    PYTHONPATH=. .venv/bin/python -m bench.storm [--minutes 5] [--step 8] [--rate 30] [--seed N] [--no-kills]

Against the stack of the environment's settings (`python -m ops.stack up` first; the supervisor, if
it runs, only ever restarts the stack's own services, never the storm's members). For `--minutes`,
departments submit court listings (and later the delistings of a third of them) at `--rate` a
second, each chunk sent again when the broker does not acknowledge it. Meanwhile, every `--step`
seconds, each of three groups changes its members, at random: the sequencers (credit-sequencer: the
stack's instance 0 and instances 1 and 2, each with its own state store), the list keepers
(credit-list-keeper: 0, 1, 2) and the webhook deliverers of a group of the storm's own (0, 1, 2, POSTing
to a receiver in this process at the metrics base + 60): an instance not running is started; a
running one other than 0 is stopped (SIGTERM) or, without `--no-kills`, killed with SIGKILL. Every
two seconds the groups' committed offsets are read: a partition whose records wait while its
offset does not move is stalled, and the longest stall of each group is reported.

Then the stream stops, the members left running must consume every partition to its end (no
partition left unowned), and the oracle of docs/architecture.md ("Fault tests") must hold: every
acknowledged submission in the ledger once with contiguous versions and intact chains, one ACCEPTED
outcome each, every list change and every alert once, every alert delivered at least once with its
idempotency key and body unchanged, every event in the views, and the views equal to a fresh rebuild.
Prints the figures and a verdict (PASSED / FAILED with the reasons); exit status 1 if it failed.
The test suite runs a short storm of the same code (tests/integration/test_rebalance_storm.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench import faults
from consumers.projector.rebuild import rebuild
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import KafkaClients
from ops import workload
from ops.procs import StackError
from ops.stack import Service
from schemas import registry

KINDS = ("sequencer", "list-keeper", "webhook")
SOURCES = {"sequencer": registry.SUBMISSIONS, "list-keeper": registry.EVENTS, "webhook": registry.ALERTS}
GROUPS = {"sequencer": "credit-sequencer", "list-keeper": "credit-list-keeper"}
STALL_LIMIT = 90.0  # seconds: the longest a partition may wait without progress (a kill: the session timeout)
SETTLE = 180.0  # seconds for the members left to consume every partition to its end


@dataclass
class Report:
    seconds: float = 0.0
    acknowledged: int = 0
    actions: dict[str, dict[str, int]] = field(default_factory=dict)
    longest_stall: dict[str, float] = field(default_factory=dict)
    most_members: dict[str, int] = field(default_factory=dict)
    changes: int = 0
    alerts: int = 0
    deliveries: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        return [f"storm: {self.seconds:.0f} s, {self.acknowledged} submissions acknowledged",
                *(f"  {k}: {', '.join(f'{a} {n}' for a, n in sorted(v.items()))}; at most "
                  f"{self.most_members.get(k, 0)} members; longest stall {self.longest_stall.get(k, 0.0):.1f} s"
                  for k, v in self.actions.items()),
                f"  feeds: {self.changes} list changes, {self.alerts} alerts, each once",
                "  webhook deliveries per alert: " + ", ".join(f"{n} time(s): {c}" for n, c in sorted(self.deliveries.items())),
                "verdict: " + ("PASSED" if self.ok else "FAILED: " + "; ".join(self.failures))]


class Storm:
    def __init__(self, s: config.Settings, seconds: float, step: float = 8.0, rate: float = 30.0, seed: int = 1,
                 kills: bool = True, say: Callable[[str], None] = print) -> None:
        self.s, self.seconds, self.step, self.rate, self.kills, self.say = s, seconds, step, rate, kills, say
        self.rng = random.Random(seed)
        self.seed = seed
        self.webhook_group = f"credit-webhook-storm-{seed}"
        self.report = Report(actions={k: {} for k in KINDS})
        self.members: dict[str, dict[int, Service]] = {}
        self._stop = asyncio.Event()
        self.behind: dict[str, str] = {}  # group and partition -> its committed offset and end, while not settled

    # ------------------------------------------------------------ members
    def _members(self, endpoints: Path) -> None:
        own = {"sequencer": Service(self.s, "sequencer"), "list-keeper": Service(self.s, "list-keeper")}
        for kind in KINDS:
            self.members[kind] = {}
            for n in range(3):
                if kind in own and n == 0:
                    self.members[kind][0] = own[kind]  # the stack's own instance 0
                    continue
                args = ["--instance", str(n)]
                if kind == "webhook":
                    args += ["--group", self.webhook_group, "--config", str(endpoints), "--backoff", "0.2"]
                self.members[kind][n] = faults.extra(self.s, kind, f"storm-{n}", *args)

    def _act(self, kind: str, turn: int) -> str:
        """One change of a group's members (runs in a thread: starting waits for the process to say it
        runs). The first two turns start instances: every group runs with two, then three members."""
        running = {n for n, m in self.members[kind].items() if m.pid()}
        stopped = set(self.members[kind]) - running
        choices = ["start"] * bool(stopped) + ["stop"] * bool(running - {0}) + ["kill"] * bool(self.kills and running - {0})
        action = "start" if turn < 2 and stopped else self.rng.choice(choices)
        if action == "start":
            try:
                self.members[kind][min(stopped)].start()
            except StackError as exc:  # e.g. its port held by another program a moment: the next turn
                self.say(f"  ({kind} {min(stopped)} did not start: {exc})")
                action = "start failed"
        else:
            n = self.rng.choice(sorted(running - {0}))
            self.members[kind][n].stop() if action == "stop" else self.members[kind][n].kill()
        self.report.actions[kind][action] = self.report.actions[kind].get(action, 0) + 1
        return action

    async def _churn(self) -> None:
        turn = 0
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.step)
                return
            except TimeoutError:
                pass
            done = await asyncio.gather(*(asyncio.to_thread(self._act, k, turn) for k in KINDS))
            turn += 1
            self.report.most_members = {k: max(self.report.most_members.get(k, 0),
                                               sum(1 for m in self.members[k].values() if m.pid())) for k in KINDS}
            self.say("  " + ", ".join(f"{k} {a}" for k, a in zip(KINDS, done, strict=True)))

    # ------------------------------------------------------------ progress of each group
    async def _offsets(self, admin: AIOKafkaAdminClient, ends: Any, kind: str) -> dict[int, tuple[int, int]]:
        """Per partition of the group's source: (committed offset, read_committed end)."""
        return await faults.group_offsets(admin, ends, GROUPS.get(kind, self.webhook_group), SOURCES[kind])

    async def _watch(self, admin: AIOKafkaAdminClient, ends: Any) -> None:
        """Every two seconds: a partition whose records wait (more than the transaction marker after
        the last record) while its committed offset does not move is stalled; keep the longest stall."""
        since: dict[tuple[str, int], tuple[int, float]] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            for kind in KINDS:
                try:
                    offsets = await self._offsets(admin, ends, kind)
                except Exception as exc:  # a broker busy with the rebalances: the next sample
                    self.say(f"  (sample skipped: {type(exc).__name__})")
                    continue
                for p, (committed, end) in offsets.items():
                    first = since.get((kind, p))
                    if end - committed <= 1 or first is None or first[0] != committed:
                        since[(kind, p)] = (committed, now)
                        continue
                    stall = now - first[1]
                    self.report.longest_stall[kind] = max(self.report.longest_stall.get(kind, 0.0), stall)
            await asyncio.sleep(2)

    async def _settled(self, admin: AIOKafkaAdminClient, ends: Any) -> bool:
        """Every group's committed offsets at the end of its source (past aborted records and
        transaction markers too: the processors commit those when idle); what is behind is kept for
        the verdict."""
        self.behind = {}
        for kind in KINDS:
            offsets = await self._offsets(admin, ends, kind)
            self.behind.update({f"{GROUPS.get(kind, self.webhook_group)} partition {p}": f"committed {c} of {e}"
                                for p, (c, e) in offsets.items() if c != e})
        return not self.behind

    # ------------------------------------------------------------ the run
    def _workload(self) -> list[list[tuple[str, dict[str, Any]]]]:
        """Chunks of a second's submissions: listings, and from a third of the way on the delistings of
        listings made earlier."""
        n = max(1, int(self.seconds * self.rate))
        subjects = workload.subjects(self.rng, n, persons_share=0.2)
        cases = [f"（2026）豫10执S{self.seed % 1000}{i}{self.rng.randrange(10**6)}号" for i in range(n)]
        listings = [workload.debtor_listed(s, c, date(2026, 10, 1), ground=1) for s, c in zip(subjects, cases, strict=True)]
        per = max(1, int(self.rate))
        chunks = [listings[i:i + per] for i in range(0, n, per)]
        for i in range(n // 3):  # the delisting comes a third of the run after its listing
            chunks[min(len(chunks) - 1, i // per + len(chunks) // 3)].append(
                workload.debtor_delisted(subjects[i], cases[i], date(2026, 11, 2)))
        return chunks

    async def run(self) -> Report:
        started = time.monotonic()
        chunks = self._workload()
        event_ids = {r["envelope"]["event_id"] for c in chunks for _, r in c}
        acknowledged: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="storm-") as tmp:
            async with faults.Receiver(self.s) as receiver:
                self._members(receiver.endpoints(Path(tmp) / "webhooks.json"))
                await faults.group_at_end(self.s, self.webhook_group, registry.ALERTS)
                for kind in KINDS:
                    await asyncio.to_thread(self.members[kind][0].start)
                kafka = KafkaClients(access(self.s, ADMIN))
                admin = kafka.admin()
                ends = kafka.consumer(group_id=None, isolation_level="read_committed")
                await admin.start()
                await ends.start()
                try:
                    await self._storm(chunks, acknowledged, admin, ends)
                    self.say("stream done; waiting for the members left to consume every partition")
                    try:
                        await faults.until(lambda: self._settled(admin, ends), SETTLE, "every partition consumed",
                                           interval=1.0)
                    except AssertionError as exc:
                        self.report.failures.append(f"a partition left unowned: {exc} ("
                                                    + ", ".join(f"{k}: {v}" for k, v in sorted(self.behind.items())) + ")")
                    await self._oracle(event_ids, receiver)
                finally:
                    await ends.stop()
                    await admin.close()
                    for kind in KINDS:
                        for n, m in self.members[kind].items():
                            if n or kind == "webhook":
                                await asyncio.to_thread(m.stop)
                    for kind in ("sequencer", "list-keeper"):
                        await asyncio.to_thread(self.members[kind][0].start)  # the stack as it was
        self.report.seconds = time.monotonic() - started
        for kind, stall in self.report.longest_stall.items():
            if stall > STALL_LIMIT:
                self.report.failures.append(f"a partition of the {kind}s' group stalled {stall:.0f} s")
        return self.report

    async def _storm(self, chunks: list[list[tuple[str, dict[str, Any]]]], acknowledged: list[dict[str, Any]],
                     admin: AIOKafkaAdminClient, ends: Any) -> None:
        async def stream() -> None:
            for chunk in chunks:
                t0 = time.monotonic()
                acknowledged.extend(await faults.send(self.s, chunk))
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))

        self.say(f"storm: {len(chunks)} s of submissions at {self.rate:g}/s, members changed every {self.step:g} s")
        tasks = [asyncio.create_task(self._churn()), asyncio.create_task(self._watch(admin, ends))]
        try:
            await stream()
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)
        self.report.acknowledged = len({o["event_id"] for o in acknowledged})

    async def _oracle(self, event_ids: set[str], receiver: faults.Receiver) -> None:
        checks: list[tuple[str, Any]] = [
            ("ledger", lambda: faults.ledger_holds(self.s, event_ids)),
            ("feeds", lambda: faults.feeds_hold(self.s, event_ids)),
        ]
        for what, check in checks:
            try:
                found = await check()
                if what == "feeds":
                    self.report.changes, self.report.alerts = found
            except AssertionError as exc:
                self.report.failures.append(f"{what}: {exc}")
        try:
            alert_ids = {a["alert_id"] for a in await faults.decoded(self.s, registry.ALERTS, "Alert")
                         if a["trigger_event_id"] in event_ids}
            await faults.until(lambda: receiver.received(alert_ids), 120, "every alert delivered")
            self.report.deliveries = receiver.check(alert_ids)
        except AssertionError as exc:
            self.report.failures.append(f"webhooks: {exc}")
        try:
            await faults.views_hold(self.s, event_ids)
            if await rebuild(self.s) != 0:
                self.report.failures.append("the views differ from a fresh rebuild")
        except AssertionError as exc:
            self.report.failures.append(f"views: {exc}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="how long the storm lasts (default 5)")
    p.add_argument("--step", type=float, default=8.0, help="seconds between two changes of each group (default 8)")
    p.add_argument("--rate", type=float, default=30.0, help="court listings submitted per second (default 30)")
    p.add_argument("--seed", type=int, default=None, help="the random world and the order of the changes (default: new; a "
                   "stack that already holds a seed's world refuses its listings again: use another)")
    p.add_argument("--no-kills", action="store_true", help="stop members with SIGTERM only, never SIGKILL")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"seed {seed} (repeat with --seed {seed})", flush=True)
    report = asyncio.run(Storm(config.load(), args.minutes * 60, args.step, args.rate, seed,
                               not args.no_kills, say=lambda m: print(m, flush=True)).run())
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
