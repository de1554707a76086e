"""Run the stack: one Kafka 4.x broker (KRaft, jars from Maven Central) and one PostgreSQL, on loopback.

    ops/stack up       start what is not running (Kafka, PostgreSQL, the sequencer, the projector,
                       the query API, the gateway, the expiry scheduler),
                       create the topics, apply the migrations, create development signing keys
    ops/stack down     stop what runs (Kafka by its pid, PostgreSQL with pg_ctl)
    ops/stack status   what runs, on which ports, with which data directory
    ops/stack logs     the last lines of the broker's and the database's logs
    ops/stack purge    down, then delete the stack directory (all data)

State lives in LEDGER_STACK_DIR (default .stack/). `up` twice is harmless. A port already taken,
a missing Java, or a broker that does not come up gives a clear message, and whatever this call
started is stopped again, so a failed `up` never leaves a half-started stack.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ledger.platform import config
from schemas import registry

HERE = Path(__file__).resolve().parent
KAFKA_HOME = HERE / "kafka"
KAFKA_LIB = KAFKA_HOME / "lib"
PG_STOP_TIMEOUT = 60


class StackError(Exception):
    """Something the operator must act on; the message says what."""


def _say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def _port_free(port: int, wait: float = 0.0) -> bool:
    """True if a server could listen on 127.0.0.1:`port`, asking again for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in ("Z", "X")


def _terminate(pid: int, grace: float, what: str, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send `sig` to one process we started, wait up to `grace` seconds, then SIGKILL; return once gone."""
    os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        if sig != signal.SIGKILL:
            _say(f"{what} did not stop within {grace:.0f} s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def code_fingerprint() -> str:
    """Names, sizes and times of the files a ledger process runs, so `up` can tell stale processes."""
    h = hashlib.sha256()
    for folder in ("ledger", "consumers", "schemas", "projections"):
        for path in sorted((config.ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".json", ".avsc", ".sql"):
                st = path.stat()
                h.update(f"{path.relative_to(config.ROOT)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        return "X"
    return "?"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, n: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


# =========================================================================== Kafka


class Kafka:
    def __init__(self, s: config.Settings) -> None:
        self.s = s
        self.dir = s.stack_dir / "kafka"
        self.data = self.dir / "data"
        self.logs = self.dir / "logs"
        self.pidfile = self.dir / "kafka.pid"
        self.props = self.dir / "server.properties"

    # -- process -------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of the broker this stack directory started, if it still runs."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        if _alive(pid) and "kafka.Kafka" in _cmdline(pid) and str(self.props) in _cmdline(pid):
            return pid
        return None

    def _java(self) -> str:
        java = shutil.which("java")
        if not java:
            raise StackError("Java is not installed: Kafka 4.x needs Java 17+ (run ops/bootstrap as root)")
        return java

    def _classpath(self) -> str:
        if not (KAFKA_LIB / ".complete").exists():
            raise StackError("the Kafka jars are missing: run ops/bootstrap (it fetches them with Maven)")
        return str(KAFKA_LIB / "*")  # the JVM expands dir/* itself

    def _tool(self, *args: str) -> str:
        cmd = [self._java(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dlog4j2.configurationFile={KAFKA_HOME / 'tools-log4j2.yaml'}", "-cp", self._classpath(), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise StackError(f"Kafka tool {args[0]} failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
        return r.stdout

    def _configure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        text = (KAFKA_HOME / "server.properties.in").read_text()
        for k, v in {"@KAFKA_PORT@": self.s.kafka_port, "@CONTROLLER_PORT@": self.s.controller_port,
                     "@DATA_DIR@": self.data}.items():
            text = text.replace(k, str(v))
        self.props.write_text(text)

    def _format(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        # Same form as Kafka's Uuid.randomUuid(): url-safe base64 of 16 bytes, no padding, no leading '-'
        cid = "-"
        while cid.startswith("-"):
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _say(f"formatting Kafka storage in {self.data} (cluster id {cid})")
        self._tool("kafka.tools.StorageTool", "format", "-t", cid, "-c", str(self.props))

    def start(self, timeout: float = 120.0) -> bool:
        """Start the broker unless it runs. Returns True if this call started it."""
        if self.pid():
            _say(f"Kafka already running (pid {self.pid()}) on 127.0.0.1:{self.s.kafka_port}")
            return False
        for port in (self.s.kafka_port, self.s.controller_port):
            if not _port_free(port):
                raise StackError(f"port {port} on 127.0.0.1 is already taken by another program; stop it or "
                                 f"choose other ports with LEDGER_KAFKA_PORT (uses it and the next one)")
        self._configure()
        self._format()
        cmd = [self._java(), "-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={KAFKA_HOME / 'log4j2.yaml'}",
               f"-Dkafka.logs.dir={self.logs}", "-cp", self._classpath(), "kafka.Kafka", str(self.props)]
        out = open(self.logs / "stdout.log", "ab")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        _say(f"Kafka starting (pid {proc.pid}) on 127.0.0.1:{self.s.kafka_port}")
        try:
            asyncio.run(self._wait_ready(proc, timeout))
        except BaseException:
            self.stop()
            raise
        _say("Kafka ready (the broker answered a describe-cluster request)")
        return True

    async def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected while it starts
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"the Kafka broker exited with code {proc.returncode} during start-up; "
                                 f"its log ends with:\n{_tail(self.logs / 'server.log')}\n"
                                 f"{_tail(self.logs / 'stdout.log', 10)}")
            admin = AIOKafkaAdminClient(bootstrap_servers=self.s.bootstrap_servers, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.describe_cluster()
                return
            except Exception as exc:  # not up yet: connection refused, not ready ...
                last = f"{type(exc).__name__}: {exc}"
            finally:
                await admin.close()
            await asyncio.sleep(0.5)
        raise StackError(f"the Kafka broker did not answer within {timeout:.0f} s ({last}); its log ends with:\n"
                         f"{_tail(self.logs / 'server.log')}")

    def stop(self, timeout: float = 40.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        _say(f"stopping Kafka (pid {pid})")
        _terminate(pid, timeout, "Kafka")
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (fault tests)."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, 0, "Kafka", sig=signal.SIGKILL)


# =========================================================================== PostgreSQL


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise StackError("PostgreSQL server binaries are missing: run ops/bootstrap as root "
                         "(it installs the Debian package postgresql)")
    return found[-1].parent


class Postgres:
    def __init__(self, s: config.Settings) -> None:
        self.s = s
        self.as_root = os.geteuid() == 0
        self.dir = self._pick_dir()
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"

    def _pick_dir(self) -> Path:
        """PostgreSQL refuses to run as root, so as root it runs as `postgres`, which must reach its
        directory. When the stack directory is not reachable for that user (a private home, say), the
        data go to /var/tmp under a name derived from the stack directory."""
        preferred = self.s.stack_dir / "pg"
        if not self.as_root:
            return preferred
        probe = self.s.stack_dir
        probe.mkdir(parents=True, exist_ok=True)
        ok = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(probe)]).returncode == 0
        if ok:
            return preferred
        h = hashlib.sha256(str(self.s.stack_dir).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"credit-ledger-pg-{h}"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise StackError(f"{Path(args[0]).name} failed (exit {r.returncode}): "
                             f"{(r.stderr or r.stdout).strip()[-800:]}")
        return r

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return self._run(_pg_bin() / "pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0]) if self.running() else None
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> bool:
        if self.running():
            _say(f"PostgreSQL already running on 127.0.0.1:{self.s.pg_port} ({self.data})")
            return False
        if not _port_free(self.s.pg_port):
            raise StackError(f"port {self.s.pg_port} on 127.0.0.1 is already taken by another program; stop it "
                             f"or choose another port with LEDGER_PG_PORT")
        pg = _pg_bin()
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            _say(f"initialising PostgreSQL in {self.data}")
            self._run(pg / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-instructions")
        opts = (f"-p {self.s.pg_port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=200 -c shared_buffers=512MB -c synchronous_commit=off -c max_wal_size=4GB")
        _say(f"PostgreSQL starting on 127.0.0.1:{self.s.pg_port}")
        r = self._run(pg / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", opts, "start",
                      check=False)
        if r.returncode != 0:
            raise StackError(f"PostgreSQL did not start; its log ends with:\n{_tail(self.log)}")
        return True

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        _say(f"stopping PostgreSQL (-m {mode})")
        self._run(_pg_bin() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", str(PG_STOP_TIMEOUT), "stop")

    def ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.s.pg_admin_dsn, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.s.pg_database,)).fetchone()
            if not exists:
                conn.execute(f'create database "{self.s.pg_database}"')
                _say(f"created database {self.s.pg_database}")


# =========================================================================== the ledger's own processes


PORT_RELEASE_SECONDS = 10.0


class Service:
    """A long-running ledger process (sequencer, projector) started from the project's .venv."""

    # every kind is started as `python -m ops.run <kind>` (ops/root.py wires it)
    KINDS = ("sequencer", "projector", "query-api", "gateway", "list-keeper", "alerter", "webhook", "scheduler",
             "notary", "portal")

    def __init__(self, s: config.Settings, name: str) -> None:
        if name not in self.KINDS:
            raise KeyError(name)
        self.s = s
        self.name = name
        # the command line after the interpreter; the pid check looks for it in /proc/<pid>/cmdline
        self.command = ["-m", "ops.run", name]
        self.pidfile = s.stack_dir / f"{name}.pid"
        self.codefile = s.stack_dir / f"{name}.code"  # fingerprint of the code it runs
        self.log = s.stack_dir / "logs" / f"{name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        # a trailing space: `-m ops.run portal` must not match a kind whose name starts the same way
        return pid if _alive(pid) and f"{' '.join(self.command)} " in _cmdline(pid) else None

    def start(self, extra_env: dict[str, str] | None = None, timeout: float = 60.0) -> bool:
        if self.pid():
            if self.codefile.exists() and self.codefile.read_text() == code_fingerprint():
                _say(f"{self.name} already running (pid {self.pid()})")
                return False
            _say(f"the code changed since the {self.name} started: restarting it")
            self.stop()
        port = self.s.metrics_port(self.name)
        # a process stopped a moment ago is reported gone once its main thread is a zombie; its other
        # threads may still be exiting, holding its listening sockets for a few more milliseconds
        if not _port_free(port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {port} on 127.0.0.1 (the {self.name}'s /metrics) is already taken; choose "
                             f"another base with LEDGER_METRICS_PORT_BASE")
        if self.name == "query-api" and not _port_free(self.s.api_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.api_port} on 127.0.0.1 (the query API) is already taken; choose "
                             f"another with LEDGER_API_PORT")
        if self.name == "gateway" and not _port_free(self.s.gateway_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.gateway_port} on 127.0.0.1 (the submission gateway) is already taken; "
                             f"choose another with LEDGER_GATEWAY_PORT")
        if self.name == "portal" and not _port_free(self.s.portal_port, wait=PORT_RELEASE_SECONDS):
            raise StackError(f"port {self.s.portal_port} on 127.0.0.1 (the public portal) is already taken; "
                             f"choose another with LEDGER_PORTAL_PORT")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log_start = self.log.stat().st_size if self.log.exists() else 0  # only this start's lines count
        env = {**os.environ, "PYTHONPATH": str(config.ROOT), "LEDGER_STACK_DIR": str(self.s.stack_dir),
               "LEDGER_KAFKA_PORT": str(self.s.kafka_port), "LEDGER_PG_PORT": str(self.s.pg_port),
               "LEDGER_KEYS_DIR": str(self.s.keys_dir), "LEDGER_API_PORT": str(self.s.api_port),
               "LEDGER_GATEWAY_PORT": str(self.s.gateway_port), "LEDGER_PORTAL_PORT": str(self.s.portal_port),
               **(extra_env or {})}
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
                                 f"{_tail(self.log, 15)}")
            with open(self.log, "rb") as f:
                f.seek(log_start)
                ready = marker.encode() in f.read()
            if ready:
                _say(f"{self.name} running (pid {proc.pid}), metrics on http://127.0.0.1:{port}/metrics")
                return True
            time.sleep(0.2)
        self.stop()
        raise StackError(f"the {self.name} did not report ready within {timeout:.0f} s; log: {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        _terminate(pid, timeout, f"the {self.name}")
        self.pidfile.unlink(missing_ok=True)
        _say(f"{self.name} stopped")

    def kill(self) -> None:
        """SIGKILL the process (fault tests)."""
        pid = self.pid()
        if pid is not None:
            _terminate(pid, 0, f"the {self.name}", sig=signal.SIGKILL)
            self.pidfile.unlink(missing_ok=True)


SERVICES = ("sequencer", "projector", "query-api", "gateway", "list-keeper", "alerter", "webhook",
            "scheduler", "notary", "portal")
# Started by `ops/stack up` but not by the tests' `services` fixture: a scheduler running through
# the whole test session would end other tests' old listings under them (its tests start their own).
ON_DEMAND_IN_TESTS = frozenset({"scheduler"})


# =========================================================================== topics


async def ensure_topics(bootstrap: str) -> list[str]:
    """Create the registry's missing topics; refuse when an existing one has another partition count."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in registry.TOPICS if t.name not in existing]
        if wanted:
            await admin.create_topics([NewTopic(t.name, t.partitions, 1, topic_configs=t.configs) for t in wanted])
        counts: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while True:  # a topic created a moment ago may not show its partitions yet
            described = await admin.describe_topics([t.name for t in registry.TOPICS])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            if all(counts.get(t.name) for t in registry.TOPICS) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        wrong = [f"{t.name} has {counts.get(t.name)} partitions, the registry says {t.partitions}"
                 for t in registry.TOPICS if counts.get(t.name) != t.partitions]
        if wrong:
            raise StackError("refusing to run: " + "; ".join(wrong) + ". The partition count of a ledger topic "
                             "is fixed at creation (entities would move partitions); restore the registry value "
                             "or migrate the data to new topics.")
        return [t.name for t in wanted]
    finally:
        await admin.close()


# =========================================================================== commands


def up(s: config.Settings, services: bool = True) -> None:
    from ledger.audit.notary import notary_keys_dir
    from ledger.platform import signing
    from ledger.rules import loader
    from projections import migrate, schema

    kafka, pg = Kafka(s), Postgres(s)
    started: list[Kafka | Postgres | Service] = []
    try:
        if kafka.start():
            started.append(kafka)
        if pg.start():
            started.append(pg)
        pg.ensure_database()
        applied = migrate.apply(s.pg_dsn)
        if applied:
            _say(f"applied migrations: {', '.join(applied)}")
        if schema.ensure_live(s.pg_dsn):
            _say(f"created the view tables in schema {schema.LIVE}")
        created = asyncio.run(ensure_topics(s.bootstrap_servers))
        if created:
            _say(f"created topics: {', '.join(created)}")
        departments = sorted(loader.load_departments().departments)
        made = signing.ensure_keys(s.keys_dir, departments)
        if made:
            _say(f"created development signing keys in {s.keys_dir} for: {', '.join(made)}")
        if signing.ensure_keys(notary_keys_dir(s.keys_dir), ["notary"]):
            _say(f"created the development notary key in {notary_keys_dir(s.keys_dir)} (public key: notary.pub)")
        from ledger.intake.gateway.tokens import ensure_tokens

        made = ensure_tokens(s.keys_dir, departments)
        if made:
            _say(f"created development API tokens in {s.keys_dir} (<department>.token) for: {', '.join(made)}")
        for name in SERVICES if services else ():
            svc = Service(s, name)
            if svc.start():
                started.append(svc)
    except BaseException:
        for svc in reversed(started):
            svc.stop()
        raise
    _say(f"stack up: Kafka 127.0.0.1:{s.kafka_port}, PostgreSQL 127.0.0.1:{s.pg_port}/{s.pg_database}, "
         f"state in {s.stack_dir}")


def down(s: config.Settings) -> None:
    for name in SERVICES:
        Service(s, name).stop()
    Kafka(s).stop()
    Postgres(s).stop()
    _say("stack down")


def status(s: config.Settings) -> int:
    kafka, pg = Kafka(s), Postgres(s)
    kp, pp = kafka.pid(), pg.pid()
    print(f"kafka       {'running pid ' + str(kp) if kp else 'stopped'}  127.0.0.1:{s.kafka_port}  {kafka.data}")
    print(f"postgresql  {'running pid ' + str(pp) if pp else 'stopped'}  127.0.0.1:{s.pg_port}  {pg.data}")
    pids = {name: Service(s, name).pid() for name in SERVICES}
    for name, pid in pids.items():
        print(f"{name:<11} {'running pid ' + str(pid) if pid else 'stopped'}  "
              f"http://127.0.0.1:{s.metrics_port(name)}/metrics")
    return 0 if kp and pp and all(pids.values()) else 3


def logs(s: config.Settings) -> None:
    kafka, pg = Kafka(s), Postgres(s)
    print(f"== {kafka.logs / 'server.log'}\n{_tail(kafka.logs / 'server.log', 40)}")
    print(f"== {pg.log}\n{_tail(pg.log, 20)}")
    for name in SERVICES:
        svc = Service(s, name)
        print(f"== {svc.log}\n{_tail(svc.log, 20)}")


def purge(s: config.Settings) -> None:
    down(s)
    pg = Postgres(s)
    for d in {s.stack_dir, pg.dir}:
        if d.exists():
            shutil.rmtree(d)
            _say(f"deleted {d}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ops/stack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["up", "down", "status", "logs", "purge"])
    p.add_argument("--infra-only", action="store_true", help="with up: start Kafka and PostgreSQL only")
    args = p.parse_args(argv)
    s = config.load()
    try:
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
        _say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
