"""The infrastructure of the stack: Kafka 4.x (KRaft, one node or a cluster of three, jars from Maven
Central through ops/kafka/pom.xml) and one PostgreSQL in a local directory, both on loopback, each started and stopped
by its pid (PostgreSQL with pg_ctl). ops/stack.py drives them."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, MECHANISM, KafkaAccess, access, ensure_passwords
from ops.procs import StackError, alive, cmdline, port_free, say, tail, terminate

HERE = Path(__file__).resolve().parent
KAFKA_HOME = HERE / "kafka"
KAFKA_LIB = KAFKA_HOME / "lib"
PG_STOP_TIMEOUT = 60

# =========================================================================== Kafka


def java_binary() -> str:
    java = shutil.which("java")
    if not java:
        raise StackError("Java is not installed: Kafka 4.x needs Java 17+ (run ops/bootstrap as root)")
    return java


def kafka_classpath() -> str:
    if not (KAFKA_LIB / ".complete").exists():
        raise StackError("the Kafka jars are missing: run ops/bootstrap (it fetches them with Maven)")
    return str(KAFKA_LIB / "*")  # the JVM expands dir/* itself


def kafka_tool(*args: str) -> str:
    """Run one of Kafka's command-line tools from the jars (a short-lived JVM); its output."""
    cmd = [java_binary(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           f"-Dlog4j2.configurationFile={KAFKA_HOME / 'tools-log4j2.yaml'}", "-cp", kafka_classpath(), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise StackError(f"Kafka tool {args[0]} failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
    return r.stdout


def client_properties(kafka: KafkaAccess, directory: Path) -> Path:
    """A client properties file for Kafka's Java tools (`--command-config`, EndToEndLatency's sixth
    argument): the principal's SASL login, readable by this user only."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kafka.username}.client.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(kafka.java_properties())
    return path


class KafkaNode:
    """One node of the stack's KRaft cluster: broker and controller in one JVM, its own directory
    (<stack>/kafka for the first node, <stack>/kafka-2 and kafka-3 for the others), ports from
    `Settings.broker_port` and `controller_port_of`."""

    def __init__(self, s: config.Settings, node: int) -> None:
        self.s = s
        self.node = node
        self.dir = s.stack_dir / ("kafka" if node == 1 else f"kafka-{node}")
        self.data = self.dir / "data"
        self.logs = self.dir / "logs"
        self.pidfile = self.dir / "kafka.pid"
        self.props = self.dir / "server.properties"
        self.port = s.broker_port(node)
        self.controller_port = s.controller_port_of(node)

    def pid(self) -> int | None:
        """The pid of this node's JVM, if it still runs."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        if alive(pid) and "kafka.Kafka" in cmdline(pid) and str(self.props) in cmdline(pid):
            return pid
        return None

    def configure(self, voters: str, admin: KafkaAccess) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        text = (KAFKA_HOME / "server.properties.in").read_text()
        for k, v in {"@NODE_ID@": self.node, "@VOTERS@": voters, "@KAFKA_PORT@": self.port,
                     "@CONTROLLER_PORT@": self.controller_port, "@DATA_DIR@": self.data,
                     "@REPLICATION@": self.s.replication_factor, "@MIN_ISR@": self.s.min_insync_replicas,
                     "@ADMIN@": admin.username, "@ADMIN_PASSWORD@": admin.password}.items():
            text = text.replace(k, str(v))
        # it holds the admin's password: readable by this user only
        fd = os.open(self.props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.props.chmod(0o600)

    def formatted(self) -> str | None:
        """The cluster id this node's storage was formatted with (None: not formatted)."""
        try:
            for line in (self.data / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
        except OSError:
            return None
        return None

    def format(self, cluster_id: str, admin: KafkaAccess) -> None:
        """Format the storage with the cluster id and the admin's SCRAM credentials (the brokers
        authenticate to each other as the admin before any other user can be created)."""
        if self.formatted():
            return
        say(f"formatting Kafka storage of node {self.node} in {self.data} (cluster id {cluster_id})")
        kafka_tool("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props),
                   "--add-scram", f"{admin.mechanism}=[name={admin.username},password={admin.password}]")

    def launch(self) -> subprocess.Popen[bytes]:
        cmd = [java_binary(), "-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={KAFKA_HOME / 'log4j2.yaml'}",
               f"-Dkafka.logs.dir={self.logs}", "-cp", kafka_classpath(), "kafka.Kafka", str(self.props)]
        with open(self.logs / "stdout.log", "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        say(f"Kafka node {self.node} starting (pid {proc.pid}) on 127.0.0.1:{self.port}")
        return proc

    def stop(self, timeout: float = 40.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        say(f"stopping Kafka node {self.node} (pid {pid})")
        terminate(pid, timeout, f"Kafka node {self.node}")
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL this node (fault tests)."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, 0, f"Kafka node {self.node}", sig=signal.SIGKILL)


class Kafka:
    """The stack's Kafka 4.x: `Settings.kafka_brokers` KRaft nodes (one, or three) on loopback, formatted
    with one cluster id, each voter of a static controller quorum. The first node is the one of a
    single-broker stack (same directory, same ports), so `pid`, `kill`, `data` and `logs` name it."""

    def __init__(self, s: config.Settings) -> None:
        self.s = s
        self.record = s.stack_dir / "kafka" / "cluster.json"
        recorded = self.recorded_size()
        # stop and status look at every node the directory holds, whatever size the caller assumed
        self.nodes = [KafkaNode(s, n) for n in range(1, max(s.kafka_brokers, recorded or 0) + 1)]
        first = self.nodes[0]
        self.dir, self.data, self.logs, self.pidfile = first.dir, first.data, first.logs, first.pidfile

    def recorded(self) -> dict[str, Any]:
        try:
            found = json.loads(self.record.read_text())
        except (OSError, ValueError):
            # a stack made before clusters were recorded holds one formatted node
            return {"brokers": 1} if KafkaNode(self.s, 1).formatted() else {}
        return found if isinstance(found, dict) else {}

    def recorded_size(self) -> int | None:
        """How many nodes this stack directory's cluster was made with (None: no cluster yet)."""
        try:
            return int(self.recorded()["brokers"])
        except (KeyError, ValueError, TypeError):
            return None

    def admin(self) -> KafkaAccess:
        """The operator's access (a super user), its password made on first use."""
        ensure_passwords(self.s.keys_dir, [ADMIN])
        return access(self.s, ADMIN)

    def pid(self) -> int | None:
        """The first node's pid (the broker of a single-broker stack), if it runs."""
        return self.nodes[0].pid()

    def pids(self) -> dict[int, int | None]:
        return {n.node: n.pid() for n in self.nodes}

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def _voters(self) -> str:
        return ",".join(f"{n}@127.0.0.1:{self.s.controller_port_of(n)}" for n in range(1, self.s.kafka_brokers + 1))

    def _cluster_id(self) -> str:
        for n in self.nodes:
            if cid := n.formatted():
                return cid
        # Same form as Kafka's Uuid.randomUuid(): url-safe base64 of 16 bytes, no padding, no leading '-'
        cid = "-"
        while cid.startswith("-"):
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        return cid

    def start(self, timeout: float = 120.0) -> bool:
        """Start every node that does not run, and wait until the cluster has all of them. Returns
        True if this call started one."""
        recorded = self.recorded_size()
        if recorded is not None and self.recorded().get("authentication") != MECHANISM:
            raise StackError(f"{self.s.stack_dir} holds a Kafka cluster made before the brokers required "
                             f"authentication (SASL/SCRAM): `ops/stack purge` and up again (the development "
                             f"data go; a real cluster is migrated as docs/operations.md says)")
        if recorded is not None and recorded != self.s.kafka_brokers:
            raise StackError(f"{self.s.stack_dir} holds a Kafka cluster of {recorded} node(s), not "
                             f"{self.s.kafka_brokers}: start it with `ops/stack up --brokers {recorded}`, or "
                             f"`ops/stack purge` first to make a new one (all data is lost)")
        down = [n for n in self.nodes if not n.pid()]
        if not down:
            say(f"Kafka already running ({self._describe()})")
            return False
        for n in down:
            for port in (n.port, n.controller_port):
                if not port_free(port):
                    raise StackError(f"port {port} on 127.0.0.1 is already taken by another program; stop it or "
                                     f"choose other ports with LEDGER_KAFKA_PORT (node N uses it + 2(N-1) and "
                                     f"the port after)")
        self.prepare(down)
        procs = {n.node: n.launch() for n in down}
        try:
            asyncio.run(self._wait_ready(procs, timeout))
        except BaseException:
            for n in down:
                n.stop()
            raise
        say(f"Kafka ready: {self._describe()} (the cluster answered a describe-cluster request with every node)")
        return True

    def prepare(self, nodes: list[KafkaNode] | None = None) -> None:
        """Write the nodes' configuration, format the storage of those not formatted yet (one cluster id,
        the admin's SCRAM user) and record the cluster in the stack directory."""
        cid, admin = self._cluster_id(), self.admin()
        for n in self.nodes if nodes is None else nodes:
            n.configure(self._voters(), admin)
            n.format(cid, admin)
        self.record.write_text(json.dumps({"brokers": self.s.kafka_brokers, "cluster_id": cid,
                                           "authentication": MECHANISM}) + "\n")

    def _describe(self) -> str:
        if self.s.kafka_brokers == 1:
            return f"pid {self.pid()} on 127.0.0.1:{self.s.kafka_port}"
        return (f"{self.s.kafka_brokers} nodes on {self.s.bootstrap_servers}, replication factor "
                f"{self.s.replication_factor}, min.insync.replicas {self.s.min_insync_replicas}")

    async def _wait_ready(self, procs: dict[int, subprocess.Popen[bytes]], timeout: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected while it starts
        deadline = time.monotonic() + timeout
        want = {n.node for n in self.nodes}
        admin = self.admin().options()
        last = "no answer yet"
        while time.monotonic() < deadline:
            for node_id, proc in procs.items():
                if proc.poll() is not None:
                    node = self.node(node_id)
                    raise StackError(f"the Kafka broker (node {node_id}) exited with code {proc.returncode} during "
                                     f"start-up; its log ends with:\n{tail(node.logs / 'server.log')}\n"
                                     f"{tail(node.logs / 'stdout.log', 10)}")
            client = AIOKafkaAdminClient(**admin, request_timeout_ms=3000)
            try:
                await client.start()
                brokers = {b["node_id"] for b in (await client.describe_cluster())["brokers"]}
                if brokers >= want:
                    return
                last = f"nodes {sorted(brokers)} of {sorted(want)} registered"
            except Exception as exc:  # not up yet: connection refused, not ready ...
                last = f"{type(exc).__name__}: {exc}"
            finally:
                await client.close()
            await asyncio.sleep(0.5)
        raise StackError(f"the Kafka cluster did not answer with every node within {timeout:.0f} s ({last}); "
                         f"the first node's log ends with:\n{tail(self.logs / 'server.log')}")

    async def partitions(self, topic: str, attempts: int = 20) -> list[dict[str, Any]]:
        """Each partition of `topic` with its leader, replicas and in-sync replicas, by partition. Asked
        again (a second apart) while a node is away: the first node asked may be the one that is gone."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        for attempt in range(1, attempts + 1):
            admin = AIOKafkaAdminClient(**self.admin().options(), request_timeout_ms=5000)
            try:
                await admin.start()
                [described] = await admin.describe_topics([topic])
                return sorted(described["partitions"], key=lambda p: p["partition"])
            except KafkaError:
                if attempt == attempts:
                    raise
                await asyncio.sleep(1)
            finally:
                await admin.close()
        raise StackError(f"no answer about {topic}")

    def stop(self, timeout: float = 40.0) -> None:
        """Stop every node; all at once, so that none waits for a controller quorum the others took away."""
        running = [n for n in self.nodes if n.pid()]
        for n in self.nodes:
            if n not in running:
                n.pidfile.unlink(missing_ok=True)
        if len(running) <= 1:
            for n in running:
                n.stop(timeout)
            return
        with concurrent.futures.ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda n: n.stop(timeout), running))

    def kill(self) -> None:
        """SIGKILL the first node (fault tests; `node(n).kill()` for another)."""
        self.nodes[0].kill()


# =========================================================================== PostgreSQL


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise StackError("PostgreSQL server binaries are missing: run ops/bootstrap as root "
                         "(it installs the Debian package postgresql)")
    return found[-1].parent


# The server's settings, set for this machine (2 cores, 24 GiB, one virtual disk shared with other
# stacks): docs/architecture.md, "PostgreSQL's settings", gives the reason for each one, and
# tests/unit/test_pg_settings.py checks that the table there and this mapping agree. The test stacks
# run with the same settings: shared memory is only taken as it is used, so an idle stack stays small.
PG_SETTINGS: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "1GB",
    "max_parallel_maintenance_workers": "2",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "1",
    "synchronous_commit": "off",
    "wal_buffers": "64MB",
    "wal_compression": "lz4",
    "min_wal_size": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "jit": "off",
}


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
            say(f"PostgreSQL already running on 127.0.0.1:{self.s.pg_port} ({self.data})")
            return False
        if not port_free(self.s.pg_port):
            raise StackError(f"port {self.s.pg_port} on 127.0.0.1 is already taken by another program; stop it "
                             f"or choose another port with LEDGER_PG_PORT")
        pg = _pg_bin()
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            say(f"initialising PostgreSQL in {self.data}")
            self._run(pg / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-instructions")
        opts = (f"-p {self.s.pg_port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                + " ".join(f"-c {k}={v}" for k, v in PG_SETTINGS.items()))
        say(f"PostgreSQL starting on 127.0.0.1:{self.s.pg_port}")
        r = self._run(pg / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", opts, "start",
                      check=False)
        if r.returncode != 0:
            raise StackError(f"PostgreSQL did not start; its log ends with:\n{tail(self.log)}")
        return True

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        say(f"stopping PostgreSQL (-m {mode})")
        self._run(_pg_bin() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", str(PG_STOP_TIMEOUT), "stop")

    def ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.s.pg_admin_dsn, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.s.pg_database,)).fetchone()
            if not exists:
                conn.execute(f'create database "{self.s.pg_database}"')
                say(f"created database {self.s.pg_database}")


