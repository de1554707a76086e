"""Run the stack: Kafka 4.x (KRaft, jars from Maven Central) and one PostgreSQL, on loopback.

    ops/stack up       start what is not running (Kafka, PostgreSQL, the sequencer, the projector,
                       the query API, the gateway, the expiry scheduler, the schema registry API ...),
                       create the topics, apply the migrations, create development signing keys,
                       API tokens and Kafka passwords (every party logs in to the brokers as its own
                       principal: LEDGER_KEYS_DIR/kafka/<principal>.password), and give the brokers
                       their users and ACLs (python -m ops.access apply: who may touch the log)
    ops/stack up --brokers 3
                       the same on a Kafka cluster of three KRaft nodes (ports LEDGER_KAFKA_PORT,
                       +2 and +4, their controllers on the port after each): every partition on
                       all three (replication factor 3), an acknowledged write on at least two
                       (min.insync.replicas 2), unclean leader election off. The stack directory
                       remembers the size: later commands need no flag
    ops/stack down     stop what runs (Kafka by its pid, PostgreSQL with pg_ctl)
    ops/stack status   what runs, on which ports, with which data directory, and how often the
                       supervisor started each service again
    ops/stack logs     the last lines of the broker's and the database's logs
    ops/stack purge    down, then delete the stack directory (all data)

State lives in LEDGER_STACK_DIR (default .stack/). `up` twice is harmless. A port already taken,
a missing Java, or a broker that does not come up gives a clear message, and whatever this call
started is stopped again, so a failed `up` never leaves a half-started stack.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from ledger.platform import config, kafka_access, kafka_util
from ops.infra import Kafka, Postgres
from ops.procs import (
    StackError,
    alive,
    cmdline,
    code_fingerprint,
    port_free,
    read_restarts,
    real_clock_env,
    say,
    tail,
    terminate,
)
from schemas import registry

# =========================================================================== the ledger's own processes


PORT_RELEASE_SECONDS = 10.0


def environment(s: config.Settings) -> dict[str, str]:
    """The environment a process of this stack runs with: where the stack is and its ports."""
    return {"PYTHONPATH": str(config.ROOT), "LEDGER_STACK_DIR": str(s.stack_dir),
            "LEDGER_KAFKA_PORT": str(s.kafka_port), "LEDGER_KAFKA_BROKERS": str(s.kafka_brokers),
            "LEDGER_PG_PORT": str(s.pg_port), "LEDGER_PG_DATABASE": s.pg_database, "LEDGER_KEYS_DIR": str(s.keys_dir),
            "LEDGER_METRICS_PORT_BASE": str(s.metrics_base_port), "LEDGER_API_PORT": str(s.api_port),
            "LEDGER_GATEWAY_PORT": str(s.gateway_port), "LEDGER_PORTAL_PORT": str(s.portal_port),
            "LEDGER_REGISTRY_PORT": str(s.registry_port), "LEDGER_PUBLIC_INTAKE_PORT": str(s.public_intake_port)}


class Service:
    """A long-running ledger process (sequencer, projector) started from the project's .venv."""

    # every kind is started as `python -m ops.run <kind>` (ops/root.py wires it)
    KINDS = ("sequencer", "projector", "query-api", "gateway", "list-keeper", "webhook", "scheduler", "notary",
             "portal", "schema-registry", "public-intake", "supervision")

    def __init__(self, s: config.Settings, name: str, label: str | None = None, args: Sequence[str] = (),
                 metrics_port: int | None = None) -> None:
        """`label`, `args` and `metrics_port`: one more process of the kind beside the stack's own (the
        fault tests' second and third instances, a successor with the same instance id): its files are
        `<name>-<label>.*`, its options `args` (e.g. `--instance 1`), its /metrics on `metrics_port`.
        The supervisor knows only the stack's own services, so it never starts such a process again."""
        if name not in self.KINDS and name != SUPERVISOR:
            raise KeyError(name)
        self.s = s
        self.name = name
        # the command line after the interpreter; the pid check looks for it in /proc/<pid>/cmdline
        # (the stack's supervisor, ops/supervisor.py, is started and stopped the same way)
        self.command = ["-m", "ops.supervisor"] if name == SUPERVISOR else ["-m", "ops.run", name, *args]
        self.port = metrics_port if metrics_port is not None else s.metrics_port(name)
        files = name if label is None else f"{name}-{label}"
        self.pidfile = s.stack_dir / f"{files}.pid"
        self.codefile = s.stack_dir / f"{files}.code"  # fingerprint of the code it runs
        self.log = s.stack_dir / "logs" / f"{files}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        # a trailing space: `-m ops.run portal` must not match a kind whose name starts the same way
        return pid if alive(pid) and f"{' '.join(self.command)} " in cmdline(pid) else None

    def start(self, extra_env: dict[str, str] | None = None, timeout: float = 60.0) -> bool:
        if self.pid():
            if self.codefile.exists() and self.codefile.read_text() == code_fingerprint():
                say(f"{self.name} already running (pid {self.pid()})")
                return False
            say(f"the code changed since the {self.name} started: restarting it")
            self.stop()
        port = self.port
        # a process stopped a moment ago is reported gone once its main thread is a zombie; its other
        # threads may still be exiting, holding its listening sockets for a few more milliseconds
        if not port_free(port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {port} on 127.0.0.1 (the {self.name}'s /metrics) is already taken; choose "
                             f"another base with LEDGER_METRICS_PORT_BASE")
        if self.name == "query-api" and not port_free(self.s.api_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.api_port} on 127.0.0.1 (the query API) is already taken; choose "
                             f"another with LEDGER_API_PORT")
        if self.name == "gateway" and not port_free(self.s.gateway_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.gateway_port} on 127.0.0.1 (the submission gateway) is already taken; "
                             f"choose another with LEDGER_GATEWAY_PORT")
        if self.name == "portal" and not port_free(self.s.portal_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.portal_port} on 127.0.0.1 (the public portal) is already taken; "
                             f"choose another with LEDGER_PORTAL_PORT")
        if self.name == "schema-registry" and not port_free(self.s.registry_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.registry_port} on 127.0.0.1 (the schema registry API) is already taken; "
                             f"choose another with LEDGER_REGISTRY_PORT")
        if self.name == "public-intake" and not port_free(self.s.public_intake_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.public_intake_port} on 127.0.0.1 (the public intake) is already taken; "
                             f"choose another with LEDGER_PUBLIC_INTAKE_PORT")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log_start = self.log.stat().st_size if self.log.exists() else 0  # only this start's lines count
        env = {**os.environ, **environment(self.s), **(extra_env or {})}
        with open(self.log, "ab") as out:
            proc = subprocess.Popen([sys.executable, *self.command, "--metrics-port", str(port)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=config.ROOT, start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        self.codefile.write_text(code_fingerprint())
        deadline = time.monotonic() + timeout
        marker = f"{self.name} running"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"the {self.name} exited with code {proc.returncode}; its log ends with:\n"
                                 f"{tail(self.log, 15)}")
            with open(self.log, "rb") as f:
                f.seek(log_start)
                ready = marker.encode() in f.read()
            if ready:
                say(f"{self.name} running (pid {proc.pid}), metrics on http://127.0.0.1:{port}/metrics")
                return True
            time.sleep(0.2)
        self.stop()
        raise StackError(f"the {self.name} did not report ready within {timeout:.0f} s; log: {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        # the pid file goes first: the supervisor restarts a service whose pid file outlives its
        # process, and this one is stopped on purpose
        self.pidfile.unlink(missing_ok=True)
        if pid is None:
            return
        terminate(pid, timeout, f"the {self.name}")
        say(f"{self.name} stopped")

    def kill(self) -> None:
        """SIGKILL the process (fault tests)."""
        pid = self.pid()
        if pid is not None:
            self.pidfile.unlink(missing_ok=True)  # the test starts it again itself, not the supervisor
            terminate(pid, 0, f"the {self.name}", sig=signal.SIGKILL)


SERVICES = ("sequencer", "projector", "query-api", "gateway", "list-keeper", "webhook", "scheduler",
            "notary", "portal", "schema-registry", "public-intake", "supervision")
# Started by `ops/stack up` but not by the tests' `services` fixture: a scheduler running through
# the whole test session would end other tests' old listings under them (its tests start their own);
# the department supervision would count every test's records on the machine's two cores all along
# (its tests start it and recount the topics).
ON_DEMAND_IN_TESTS = frozenset({"scheduler", "supervision"})
# Started by `ops/stack up` after the services (ops/supervisor.py: restarts a service that exited),
# stopped first by `ops/stack down`. Not started by the tests' fixtures: the fault tests kill services
# and start them again themselves; tests/integration/test_supervisor.py starts its own.
SUPERVISOR = "supervisor"


# =========================================================================== topics


async def ensure_topics(s: config.Settings) -> list[str]:
    """Create the registry's missing topics (on every node of a cluster of three: replication factor
    3); refuse when an existing one has another partition count."""
    created, counts = await kafka_util.ensure_topics(Kafka(s).admin(), registry.TOPICS, s.replication_factor,
                                                     s.min_insync_replicas)
    wrong = [f"{t.name} has {counts.get(t.name)} partitions, the registry says {t.partitions}"
             for t in registry.TOPICS if counts.get(t.name) != t.partitions]
    if wrong:
        raise StackError("refusing to run: " + "; ".join(wrong) + ". The partition count of a ledger topic "
                         "is fixed at creation (entities would move partitions); restore the registry value "
                         "or migrate the data to new topics.")
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**Kafka(s).admin().options())
    await admin.start()
    try:
        await _align_configs(admin, [t for t in registry.TOPICS if t.name not in created], s.min_insync_replicas)
    finally:
        await admin.close()
    return created


# topic settings that `up` brings an existing topic to when the registry's value changed (a topic made
# before credit.submissions was stamped with the broker's time, LogAppendTime, gets it)
ALIGNED_CONFIGS = ("message.timestamp.type",)


async def _align_configs(admin: object, topics: list[registry.Topic], min_insync_replicas: int) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    wanted = [t for t in topics if any(k in t.configs for k in ALIGNED_CONFIGS)]
    if not wanted:
        return
    described = await admin.describe_configs(  # type: ignore[attr-defined]
        [ConfigResource(ConfigResourceType.TOPIC, t.name, dict.fromkeys(ALIGNED_CONFIGS)) for t in wanted])
    found: dict[str, dict[str, str]] = {}
    for response in described:
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {entry[0]: entry[1] for entry in entries}
    stale = [t for t in wanted if any(k in t.configs and found.get(t.name, {}).get(k) != t.configs[k]
                                      for k in ALIGNED_CONFIGS)]
    if stale:  # AlterConfigs sets a topic's whole configuration: the registry's, all of it, and the cluster's copies
        isr = {"min.insync.replicas": str(min_insync_replicas)}
        await admin.alter_configs(  # type: ignore[attr-defined]
            [ConfigResource(ConfigResourceType.TOPIC, t.name, {**t.configs, **isr}) for t in stale])
        say(f"topic settings brought to the registry's: {', '.join(t.name for t in stale)}")


# =========================================================================== who may touch the log


def grant_access(s: config.Settings, timeout: float = 30.0) -> None:
    """Make the cluster's users and ACLs the plan's (ops/access.py, in a child process on the real
    clock: it runs librdkafka), then wait until the brokers enforce them."""
    r = subprocess.run([sys.executable, "-m", "ops.access", "apply"], env=real_clock_env(**environment(s)),
                       cwd=config.ROOT, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise StackError(f"the Kafka users and ACLs could not be applied (python -m ops.access apply, exit "
                         f"{r.returncode}):\n{(r.stderr or r.stdout).strip()[-1500:]}")
    for line in r.stdout.splitlines():
        say(f"Kafka {line}")
    asyncio.run(_enforced(s, timeout))


async def _enforced(s: config.Settings, timeout: float) -> None:
    """The ledger's own writer may see the ledger: the ACLs reached the broker that answers (users and
    ACLs travel in the cluster's metadata log, a moment after the controller accepted them)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**kafka_access.access(s, kafka_access.SEQUENCER).options())
        try:
            await admin.start()
            [topic] = await admin.describe_topics([registry.EVENTS.name])
            if topic["error_code"] == 0:
                return
            last = f"error code {topic['error_code']} for {registry.EVENTS.name}"
        except KafkaError as exc:  # the new user not known yet to the broker asked
            last = f"{type(exc).__name__}: {exc}"
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
    raise StackError(f"the brokers did not enforce the ACLs within {timeout:.0f} s ({last})")


# =========================================================================== commands


def with_brokers(s: config.Settings, asked: int | None) -> config.Settings:
    """The settings with the cluster size the stack directory was made with (or `asked`, for a new one)."""
    recorded = Kafka(s).recorded_size()
    if asked is not None and recorded is not None and asked != recorded:
        raise StackError(f"{s.stack_dir} holds a Kafka cluster of {recorded} node(s): `ops/stack up --brokers "
                         f"{recorded}`, or `ops/stack purge` first to make one of {asked} (all data is lost)")
    return dataclasses.replace(s, kafka_brokers=asked or recorded or s.kafka_brokers)



def up(s: config.Settings, services: bool = True) -> None:
    from ledger.audit.notary import notary_keys_dir
    from ledger.platform import signing
    from ledger.rules import loader
    from ops import access as access_plan
    from projections import migrate, schema
    from projections.report import issue

    kafka, pg = Kafka(s), Postgres(s)
    started: list[Kafka | Postgres | Service] = []
    matrix = loader.load_departments()
    # every principal's Kafka password (the admin's goes into the brokers' own configuration)
    made = kafka_access.ensure_passwords(s.keys_dir, access_plan.principals(access_plan.plan(matrix)))
    if made:
        say(f"created development Kafka passwords in {kafka_access.passwords_dir(s.keys_dir)} "
            f"(<principal>.password) for: {', '.join(made)}")
    try:
        if kafka.start():
            started.append(kafka)
        if pg.start():
            started.append(pg)
        pg.ensure_database()
        applied = migrate.apply(s.pg_dsn)
        if applied:
            say(f"applied migrations: {', '.join(applied)}")
        if schema.ensure_live(s.pg_dsn):
            say(f"created the view tables in schema {schema.LIVE}")
        created = asyncio.run(ensure_topics(s))
        if created:
            say(f"created topics: {', '.join(created)}")
        grant_access(s)
        departments = sorted(matrix.departments)
        # the departments' keys and the intakes' (the gateway attests with its own, ledger-gateway.key)
        made = signing.ensure_keys(s.keys_dir, departments + sorted(matrix.intakes))
        if made:
            say(f"created development signing keys in {s.keys_dir} for: {', '.join(made)}")
        if signing.ensure_keys(notary_keys_dir(s.keys_dir), ["notary"]):
            say(f"created the development notary key in {notary_keys_dir(s.keys_dir)} (public key: notary.pub)")
        if signing.ensure_keys(issue.issuer_keys_dir(s.keys_dir), [issue.ISSUER]):
            say(f"created the development credit report issuer key in {issue.issuer_keys_dir(s.keys_dir)} "
                f"(public key: {issue.ISSUER}.pub)")
        from ledger.intake.gateway.tokens import ensure_tokens

        made = ensure_tokens(s.keys_dir, departments)
        if made:
            say(f"created development API tokens in {s.keys_dir} (<department>.token) for: {', '.join(made)}")
        for name in (*SERVICES, SUPERVISOR) if services else ():
            svc = Service(s, name)
            if svc.start():
                started.append(svc)
    except BaseException:
        for svc in reversed(started):
            svc.stop()
        raise
    say(f"stack up: Kafka {s.bootstrap_servers}, PostgreSQL 127.0.0.1:{s.pg_port}/{s.pg_database}, "
         f"state in {s.stack_dir}")


def down(s: config.Settings) -> None:
    for name in (SUPERVISOR, *SERVICES):  # the supervisor first: it must not start what is stopped
        Service(s, name).stop()
    for svc in extra_services(s):  # more processes of a kind that a fault test left behind
        svc.stop()
    Kafka(s).stop()
    Postgres(s).stop()
    say("stack down")


def extra_services(s: config.Settings) -> list[Service]:
    """The processes of a kind started beside the stack's own (`Service(..., label=...)`: their pid files
    are `<kind>-<label>.pid`); the command without its options still names them in /proc."""
    found = []
    for path in sorted(s.stack_dir.glob("*-*.pid")):
        kind = next((k for k in sorted(Service.KINDS, key=len, reverse=True) if path.stem.startswith(k + "-")), None)
        if kind is not None:
            found.append(Service(s, kind, label=path.stem[len(kind) + 1:]))
    return found


def status(s: config.Settings) -> int:
    kafka, pg = Kafka(s), Postgres(s)
    kps, pp = kafka.pids(), pg.pid()
    for node in kafka.nodes:
        kp = kps[node.node]
        name = "kafka" if len(kafka.nodes) == 1 else f"kafka node {node.node}"
        print(f"{name:<15} {'running pid ' + str(kp) if kp else 'stopped'}  127.0.0.1:{node.port}  {node.data}")
    print(f"postgresql      {'running pid ' + str(pp) if pp else 'stopped'}  127.0.0.1:{s.pg_port}  {pg.data}")
    pids = {name: Service(s, name).pid() for name in SERVICES}
    restarts = read_restarts(s)
    for name, pid in pids.items():
        print(f"{name:<15} {'running pid ' + str(pid) if pid else 'stopped'}  "
              f"http://127.0.0.1:{s.metrics_port(name)}/metrics  restarts {restarts.get(name, 0)}")
    sp = Service(s, SUPERVISOR).pid()
    print(f"{SUPERVISOR:<15} {'running pid ' + str(sp) if sp else 'stopped'}  "
          f"http://127.0.0.1:{s.metrics_port(SUPERVISOR)}/metrics")
    return 0 if all(kps.values()) and pp and all(pids.values()) else 3


def logs(s: config.Settings) -> None:
    kafka, pg = Kafka(s), Postgres(s)
    for node in kafka.nodes:
        print(f"== {node.logs / 'server.log'}\n{tail(node.logs / 'server.log', 40)}")
    print(f"== {pg.log}\n{tail(pg.log, 20)}")
    for name in SERVICES:
        svc = Service(s, name)
        print(f"== {svc.log}\n{tail(svc.log, 20)}")


def purge(s: config.Settings) -> None:
    down(s)
    pg = Postgres(s)
    for d in {s.stack_dir, pg.dir}:
        if d.exists():
            shutil.rmtree(d)
            say(f"deleted {d}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ops/stack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["up", "down", "status", "logs", "purge"])
    p.add_argument("--infra-only", action="store_true", help="with up: start Kafka and PostgreSQL only")
    p.add_argument("--brokers", type=int, choices=(1, 3),
                   help="with up: Kafka nodes, 1 (the default) or 3; a stack directory keeps the size it was made "
                        "with, so the other commands, and up again, need no flag")
    args = p.parse_args(argv)
    try:
        s = with_brokers(config.load(), args.brokers)
        if args.command == "up":
            up(s, services=not args.infra_only)
        elif args.command == "down":
            down(s)
        elif args.command == "status":
            return status(s)
        elif args.command == "logs":
            logs(s)
        else:
            purge(s)
    except StackError as exc:
        say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
