"""The composition root: per process kind, the one place where the configuration is read
(ledger/platform/config.py), the command line parsed, and the collaborators built once (the Kafka
client factory, the PostgreSQL dsn, the rules, the catalogue, the signing keys, the clock) and handed
to the service, which is then run by the process harness (ledger/platform/process.py: JSON logs,
/metrics, SIGTERM/SIGINT as a clean stop).

Started as `python -m ops.run <kind> [options]` (ops/run.py; ops/stack.py starts every service that
way). The rule files are read here, in `_rules` and its siblings, never in a service's constructor.
Operator commands (ledger/client.py, ledger/intake/importer.py, the auditor, the view rebuild) keep
their own command lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.platform import config, process
from ledger.platform.clock import SYSTEM, BrokerClock, Clock
from ledger.platform.kafka_access import (
    GATEWAY,
    LIST_KEEPER,
    NOTARY,
    PROJECTOR,
    PUBLIC_INTAKE,
    SCHEDULER,
    SEQUENCER,
    SUPERVISION,
    WEBHOOK,
    access,
)
from ledger.platform.kafka_util import KafkaClients

# The process's one clock (ledger/platform/clock.py): every "today" is its China Standard Time date.
# The workloads (ops/workload.py, ops/demo.py) take theirs from here too.
CLOCK: Clock = SYSTEM


@dataclass(frozen=True)
class Kind:
    """A kind of long-running process: its name, what it does and how it is wired."""

    name: str
    summary: str
    main: Callable[[list[str]], None]


# ---------------------------------------------------------------- the rules, read once per process
def _rulebook() -> Any:
    """Every rules file (ledger/rules/), read and checked by the one loader: a bad file stops the
    process at its start with the file, the entry and the reason."""
    from ledger.rules import loader

    return loader.load()


def _parser(kind: str, doc: str | None, settings: config.Settings) -> argparse.ArgumentParser:
    return process.parser(f"python -m ops.run {kind}", doc, settings.metrics_port(kind))


def _instance(p: argparse.ArgumentParser, group: str) -> None:
    p.add_argument("--instance", default="0", help=f"stable id of this process (its transactional id is "
                   f"{group}-<instance>; a restarted process with the same id fences the old one)")


# ---------------------------------------------------------------- one function per kind
def sequencer(argv: list[str]) -> None:
    from ledger.sequencer import service

    s = config.load()
    p = _parser("sequencer", service.__doc__, s)
    _instance(p, service.GROUP)
    args = p.parse_args(argv)
    rules = _rulebook()
    process.run(args, lambda a: sequencer_service(s, a.instance, rules))


def sequencer_service(s: config.Settings, instance: str = "0", rules: Any = None, clock: Clock | None = None) -> Any:
    """A SequencerService wired from the settings. Its clock is the broker's (ledger time: a BrokerClock
    fed with the broker's timestamps, this machine's clock only until the first one); tests that run one
    in-process may hand it a clock of their own instead."""
    from ledger.platform import signing
    from ledger.sequencer import service
    from ledger.sequencer.core import Sequencing

    ledger_time = BrokerClock(fallback=CLOCK) if clock is None else None
    judge_by = ledger_time.clock if ledger_time is not None else clock
    assert judge_by is not None
    core = Sequencing(signing.public_keys(s.keys_dir), s.id_pepper, rules if rules is not None else _rulebook(),
                      today=judge_by.today, now=judge_by.now, cache_entities=s.sequencer_cache_entities)
    return service.SequencerService(KafkaClients(access(s, SEQUENCER)), core, s.sequencer_store_dir(instance),
                                    instance=instance, cache_mib=s.sequencer_cache_mib,
                                    verified_batches=s.sequencer_verified_batches, ledger_time=ledger_time)


def projector(argv: list[str]) -> None:
    from consumers.projector import recompute, service
    from projections import schema
    from projections.rows import Folder
    from schemas import registry

    s = config.load()
    p = _parser("projector", service.__doc__, s)
    p.add_argument("--schema", default=schema.LIVE, help="the schema of views to fill (default: the live views)")
    p.add_argument("--partitions", type=service.partition_list, default=None, metavar="P,Q,...",
                   help="only these partitions of credit.events (default: all); projectors of disjoint sets "
                        "may fill one schema side by side, one per core")
    args = p.parse_args(argv)
    if args.partitions is not None and not (args.partitions and all(
            0 <= x < registry.EVENTS.partitions for x in args.partitions)):
        p.error(f"--partitions: {registry.EVENTS.name} has partitions 0-{registry.EVENTS.partitions - 1}, "
                f"got {args.partitions}")
    schema.ensure_live(s.pg_dsn)
    rules = _rulebook()
    # a newer calendar (a holiday notice added): the deadlines computed provisionally are computed again
    recompute.run(s.pg_dsn, rules.calendar, args.schema)
    folder = Folder(rules)
    # SIGUSR1: read the whole ledger again (a full re-delivery; every record must be skipped)
    process.run(args, lambda a: projector_service(s, folder, schema_name=a.schema, partitions=a.partitions),
                signals={signal.SIGUSR1: "replay_from_start"})


def projector_service(s: config.Settings, folder: Any = None, **options: Any) -> Any:
    """A Projector on the settings' Kafka and PostgreSQL (options: schema_name, max_records,
    takes_switch_lock, topic, partitions); benchmarks use it too."""
    from consumers.projector import service
    from projections.rows import Folder

    if folder is None:
        rules = _rulebook()
        folder = Folder(rules)
    return service.Projector(KafkaClients(access(s, PROJECTOR)), folder, s.pg_dsn, **options)


def list_keeper(argv: list[str]) -> None:
    from consumers.list_keeper import service

    s = config.load()
    p = _parser("list-keeper", service.__doc__, s)
    _instance(p, service.ListKeeper.group)
    args = p.parse_args(argv)
    rules = _rulebook()
    process.run(args, lambda a: list_keeper_service(s, a.instance, rules))


def list_keeper_service(s: config.Settings, instance: str = "0", rules: Any = None) -> Any:
    """A ListKeeper wired from the settings (tests run one in-process)."""
    from consumers.list_keeper import service

    return service.ListKeeper(KafkaClients(access(s, LIST_KEEPER)), rules if rules is not None else _rulebook(),
                              instance=instance)


def webhook(argv: list[str]) -> None:
    from consumers.webhook import service

    s = config.load()
    p = _parser("webhook", service.__doc__, s)
    p.add_argument("--config", type=Path, help="endpoints file (default $LEDGER_KEYS_DIR/webhooks.json)")
    p.add_argument("--attempts", type=int, default=5, help="attempts per alert before the dead letter (default 5)")
    p.add_argument("--backoff", type=float, default=0.5,
                   help="first retry delay in seconds, doubled each time, at most 30 (default 0.5)")
    p.add_argument("--instance", default="0", help="stable id of this process (transactional id <group>-<id>)")
    p.add_argument("--group", default=service.WebhookDeliverer.group,
                   help="consumer group (default credit-webhook); a second deliverer with its own endpoints file "
                        "needs its own group, or the two share the alerts between them")
    args = p.parse_args(argv)
    endpoints = service.load_endpoints(args.config or s.keys_dir / "webhooks.json")
    process.run(args, lambda a: service.WebhookDeliverer(KafkaClients(access(s, WEBHOOK)), endpoints, a.instance,
                                                         a.attempts, a.backoff, group=a.group))


def notary(argv: list[str]) -> None:
    from consumers.notary import service

    s = config.load()
    p = _parser("notary", service.__doc__, s)
    p.add_argument("--every", type=int, default=s.notary_every,
                   help=f"sign a head at every multiple of this many leaves (default {s.notary_every}, "
                        "LEDGER_NOTARY_EVERY)")
    p.add_argument("--interval", type=float, default=s.notary_interval,
                   help=f"and this many seconds after the last head when the tree grew (default "
                        f"{s.notary_interval:g}, LEDGER_NOTARY_INTERVAL)")
    args = p.parse_args(argv)
    process.run(args, lambda a: service.Notary(KafkaClients(access(s, NOTARY)), s.pg_dsn, service.signer(s),
                                               a.every, a.interval))


def scheduler(argv: list[str]) -> None:
    from consumers.scheduler import core, service

    s = config.load()
    p = _parser("scheduler", service.__doc__, s)
    p.add_argument("--interval", type=float, default=float(os.environ.get("LEDGER_SCHEDULER_INTERVAL", "60")),
                   help="seconds between passes (default 60, or LEDGER_SCHEDULER_INTERVAL)")
    p.add_argument("--once", action="store_true",
                   help="one pass, print its summary as JSON on standard output, and exit (1 if the pass failed); "
                        "serves no /metrics unless --metrics-port is given")
    p.add_argument("--today", default=os.environ.get("LEDGER_SCHEDULER_TODAY"),
                   help="the date the pass takes as today, YYYY-MM-DD (default: today's date in China "
                        "Standard Time, or LEDGER_SCHEDULER_TODAY)")
    p.add_argument("--batch-size", type=int, default=int(os.environ.get("LEDGER_SCHEDULER_BATCH_SIZE", "200")),
                   help="expiries submitted before waiting for their outcomes (default 200, or "
                        "LEDGER_SCHEDULER_BATCH_SIZE)")
    args = p.parse_args(argv)
    if args.interval <= 0 or args.batch_size < 1:
        p.error("--interval must be positive and --batch-size at least 1")
    if args.once and "--metrics-port" not in argv:
        args.metrics_port = 0  # a one-off pass next to the running service must not take its port
    today = core.parse_today(args.today, CLOCK.today)
    rule_version = _rulebook().publication.version
    built: list[service.Scheduler] = []

    def build(a: Any) -> service.Scheduler:
        built.append(scheduler_service(s, today, a.interval, a.batch_size, a.once, rule_version))
        return built[0]

    process.run(args, build)
    if args.once:
        sched = built[0]
        print(json.dumps(sched.last.summary() if sched.last else {"error": "the pass failed; see the log"},
                         ensure_ascii=False))
        sys.exit(1 if sched.failed else 0)


def scheduler_service(s: config.Settings, today: Callable[[], Any], interval: float = 60.0, batch_size: int = 200,
                      once: bool = False, rule_version: int | None = None) -> Any:
    """A Scheduler wired from the settings (benchmarks run its passes in-process)."""
    from consumers.scheduler import core, service
    from ledger.client import LedgerClient

    if rule_version is None:
        rule_version = _rulebook().publication.version
    return service.Scheduler(
        KafkaClients(access(s, SCHEDULER)), s.pg_dsn,
        # the key is read at each pass, as before: a pass without it fails and the next one retries
        lambda: LedgerClient.of(s, core.DEPARTMENT),
        rule_version, today, interval, batch_size, once, catalogue_version=_rulebook().catalogue.version)


def supervision(argv: list[str]) -> None:
    from consumers.supervision import service

    s = config.load()
    p = _parser("supervision", service.__doc__, s)
    p.add_argument("--flush-interval", type=float, default=1.0,
                   help="seconds between two writes of the changed counts to PostgreSQL (default 1)")
    p.add_argument("--sample-interval", type=float, default=30.0,
                   help="seconds between two samples of the services' lag for the dashboard's chart (default 30)")
    p.add_argument("--instance", default="0", help="stable id of this process in the consumer group (static "
                   "membership, credit-supervision-<instance>): started again, it takes its partitions back at once")
    args = p.parse_args(argv)
    if args.flush_interval <= 0 or args.sample_interval <= 0:
        p.error("--flush-interval and --sample-interval must be positive")
    rules = _rulebook()
    process.run(args, lambda a: supervision_service(s, rules, a.flush_interval, a.sample_interval, a.instance))


def supervision_service(s: config.Settings, rules: Any = None, flush_interval: float = 1.0,
                        sample_interval: float = 30.0, instance: str = "0") -> Any:
    """The department supervision wired from the settings: the counter with the working-day calendar
    and every department any version of the matrix knows, the PostgreSQL sink, the lag sampler (the
    services' /metrics, as the dashboard scrapes them) and the clock."""
    from consumers.supervision import core, service
    from consumers.supervision.sink import Sink
    from ledger.platform import logs
    from projections.web import dashboard

    rules = rules if rules is not None else _rulebook()
    logs.json_stdlib()  # faust and aiokafka log through the standard library: their lines in JSON too

    async def sample() -> dict[str, float]:
        return dashboard.lag_samples(await dashboard.scrape(s))

    return service.Supervision(access(s, SUPERVISION), core.Counter.of(rules), Sink(s.pg_dsn),
                               sample, CLOCK.now, s.stack_dir / "supervision", flush_interval, sample_interval,
                               instance, s.replication_factor, s.min_insync_replicas)




def _web(kind: str, argv: list[str], module: Any, port: int, port_env: str,
         make_app: Callable[[config.Settings, Any, Clock], Any]) -> None:
    s = config.load()
    p = _parser(kind, module.__doc__, s)
    p.add_argument("--port", type=int, default=port, help=f"HTTP port on 127.0.0.1 (default {port}, {port_env})")
    args = p.parse_args(argv)
    rules = _rulebook()
    process.run(args, lambda a: process.WebService(kind, lambda: make_app(s, rules, CLOCK), a.port, module.log,
                                                   [" ".join(route[:-1]) for route in module.ROUTES]))


def gateway(argv: list[str]) -> None:
    from ledger.intake.gateway import app
    from ledger.intake.gateway.kafka import Ledger
    from ledger.intake.gateway.tokens import Tokens

    s = config.load()
    p = _parser("gateway", app.__doc__, s)
    p.add_argument("--port", type=int, default=s.gateway_port,
                   help=f"HTTP port on 127.0.0.1 (default {s.gateway_port}, LEDGER_GATEWAY_PORT)")
    args = p.parse_args(argv)
    matrix = _rulebook().departments

    def build() -> Any:  # once the logs are configured: the tokens log their loading
        return app.make_app(s, Ledger(KafkaClients(access(s, GATEWAY)), s.keys_dir), Tokens(s.keys_dir), matrix)

    # a backlog of 1024: bursts of clients connecting at once are queued, not refused
    process.run(args, lambda a: process.WebService(
        "gateway", build, a.port, app.log, [f"{m} {path}" for m, path, _ in app.ROUTES], backlog=1024,
        docs=f"http://127.0.0.1:{a.port}/docs"))


def public_intake(argv: list[str]) -> None:
    from ledger.intake.gateway.kafka import Ledger
    from ledger.intake.public import app

    s = config.load()
    _web("public-intake", argv, app, s.public_intake_port, "LEDGER_PUBLIC_INTAKE_PORT", lambda s, rules, clock: app.make_app(
        s, Ledger(KafkaClients(access(s, PUBLIC_INTAKE)), s.keys_dir, intake=app.INTAKE), rules.departments, clock))


def query_api(argv: list[str]) -> None:
    from projections.web import api

    s = config.load()
    _web("query-api", argv, api, s.api_port, "LEDGER_API_PORT", api.make_app)


def portal(argv: list[str]) -> None:
    from projections.web import portal as web_portal

    s = config.load()
    _web("portal", argv, web_portal, s.portal_port, "LEDGER_PORTAL_PORT", web_portal.make_app)


def schema_registry(argv: list[str]) -> None:
    from projections.web import schema_registry as web_registry

    s = config.load()
    _web("schema-registry", argv, web_registry, s.registry_port, "LEDGER_REGISTRY_PORT", web_registry.make_app)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("sequencer", "the single writer of credit.events: judges credit.submissions, writes entries, "
                      "outcomes and its state changelog in one Kafka transaction per batch", sequencer),
    Kind("projector", "credit.events -> the PostgreSQL views (schema views)", projector),
    Kind("list-keeper", "credit.events -> the red and black list feeds (credit.lists.changes / .current) and "
                        "the joint-punishment alerts (credit.alerts), in one Kafka transaction per batch", list_keeper),
    Kind("webhook", "credit.alerts -> each department's HTTP endpoint, signed, with retries and dead letters",
         webhook),
    Kind("notary", "Merkle trees of credit.events, signed tree heads on credit.checkpoints", notary),
    Kind("scheduler", "ends listings and penalty publications whose period is over, through the ledger",
         scheduler),
    Kind("supervision", "department supervision (faust): counts per department, day and month of submissions, "
                        "rejections, late double publicity, objections, feedback -> PostgreSQL", supervision),
    Kind("gateway", "HTTP/JSON submissions of the departments, with bearer tokens, on 127.0.0.1", gateway),
    Kind("public-intake", "the public's forms (objections, credit repair applications), attested and "
                          "submitted to the ledger, on 127.0.0.1", public_intake),
    Kind("query-api", "read-only HTTP/JSON over the views, on 127.0.0.1", query_api),
    Kind("portal", "the public credit portal and the operator dashboard (HTML), on 127.0.0.1", portal),
    Kind("schema-registry", "the Avro schemas by id and subject, read-only, as a Confluent Schema Registry "
                            "answers, on 127.0.0.1", schema_registry),
)}
