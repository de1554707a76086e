"""The infrastructure of the stack: one Kafka 4.x broker (KRaft, jars from Maven Central through
ops/kafka/pom.xml) and one PostgreSQL in a local directory, both on loopback, each started and stopped
by its pid (PostgreSQL with pg_ctl). ops/stack.py drives them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from ledger.platform import config
from ops.procs import StackError, alive, cmdline, port_free, say, tail, terminate

HERE = Path(__file__).resolve().parent
KAFKA_HOME = HERE / "kafka"
KAFKA_LIB = KAFKA_HOME / "lib"
PG_STOP_TIMEOUT = 60

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
        if alive(pid) and "kafka.Kafka" in cmdline(pid) and str(self.props) in cmdline(pid):
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
        say(f"formatting Kafka storage in {self.data} (cluster id {cid})")
        self._tool("kafka.tools.StorageTool", "format", "-t", cid, "-c", str(self.props))

    def start(self, timeout: float = 120.0) -> bool:
        """Start the broker unless it runs. Returns True if this call started it."""
        if self.pid():
            say(f"Kafka already running (pid {self.pid()}) on 127.0.0.1:{self.s.kafka_port}")
            return False
        for port in (self.s.kafka_port, self.s.controller_port):
            if not port_free(port):
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
        say(f"Kafka starting (pid {proc.pid}) on 127.0.0.1:{self.s.kafka_port}")
        try:
            asyncio.run(self._wait_ready(proc, timeout))
        except BaseException:
            self.stop()
            raise
        say("Kafka ready (the broker answered a describe-cluster request)")
        return True

    async def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected while it starts
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"the Kafka broker exited with code {proc.returncode} during start-up; "
                                 f"its log ends with:\n{tail(self.logs / 'server.log')}\n"
                                 f"{tail(self.logs / 'stdout.log', 10)}")
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
                         f"{tail(self.logs / 'server.log')}")

    def stop(self, timeout: float = 40.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        say(f"stopping Kafka (pid {pid})")
        terminate(pid, timeout, "Kafka")
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (fault tests)."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, 0, "Kafka", sig=signal.SIGKILL)


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


