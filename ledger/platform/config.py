"""All configuration, read from the environment in one place, with working local defaults.

Two stacks can run side by side on one machine: the demo stack (defaults below) and the test
stack that the test command starts with other ports and another state directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PORT_OFFSETS = {"sequencer": 1, "projector": 2, "query-api": 3, "gateway": 4, "list-keeper": 5,
                        "scheduler": 7, "notary": 8, "webhook": 9, "portal": 13, "schema-registry": 14,
                        "supervisor": 15, "public-intake": 16, "supervision": 17}


@dataclass(frozen=True)
class Settings:
    stack_dir: Path
    kafka_port: int
    pg_port: int
    pg_database: str
    id_pepper: bytes
    keys_dir: Path
    metrics_base_port: int
    api_port: int
    gateway_port: int = 8081  # the submission gateway (HTTP, loopback)
    portal_port: int = 8082  # the public portal and operator dashboard (HTML, loopback)
    registry_port: int = 8083  # the read-only schema registry API (HTTP, loopback)
    # where readers reach the query API (the portal links each entity's credit report there); "" = loopback
    api_public_url: str = ""
    public_intake_port: int = 8084  # the public's objection and repair forms (HTML, loopback)
    sequencer_verified_batches: int = 4096  # signed batches whose signature the sequencer remembers as verified
    sequencer_cache_entities: int = 2_000  # parsed entity states the sequencer keeps in memory (an LRU)
    sequencer_cache_mib: int = 32  # the sequencer's RocksDB block cache, memtables included
    notary_every: int = 1000  # the notary signs a tree head at every multiple of this many leaves ...
    notary_interval: float = 10.0  # ... and this many seconds after the last one when the tree grew
    # the gateway's limits per department (0: none; LEDGER_KEYS_DIR/gateway-limits.json may set them
    # per department, read again without a restart): events per second (a token bucket of `burst`
    # events), requests handled at once; and the largest body of a single event and of a batch
    gateway_events_per_second: float = 300.0
    gateway_burst: int = 3_000
    gateway_concurrent_requests: int = 32
    gateway_max_event_bytes: int = 256 * 1024
    gateway_max_batch_bytes: int = 64 * 1024 * 1024
    kafka_brokers: int = 1  # nodes of the stack's KRaft cluster: 1, or 3 (`ops/stack up --brokers 3`)
    # the brokers of a cluster on other machines (host:port,host:port,...); empty: the stack's own
    # nodes on loopback, from LEDGER_KAFKA_PORT (docs/operations.md)
    kafka_bootstrap: str = ""
    # a cluster whose listeners speak TLS: the CA that signed the brokers' certificates (SASL_SSL);
    # none: SASL over plain TCP, as the stack's loopback listeners
    kafka_ca_file: Path | None = None
    # the public intake's limit per client address on the forms it takes (a token bucket): forms at
    # once (`burst`), then one more every 60 / per_minute seconds; 0 per minute: no limit
    public_intake_burst: int = 10
    public_intake_per_minute: float = 1.0

    @property
    def query_api_url(self) -> str:
        """The query API's base URL as readers reach it (LEDGER_API_PUBLIC_URL, else http://127.0.0.1:<api_port>)."""
        return (self.api_public_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")
    # the font the 红黑榜 PDFs embed (Debian package fonts-wqy-microhei; ops/bootstrap installs it)
    pdf_font: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

    def metrics_port(self, service: str) -> int:
        """Each long-running process serves Prometheus /metrics on 127.0.0.1 at base + its offset."""
        return self.metrics_base_port + SERVICE_PORT_OFFSETS[service]

    def sequencer_store_dir(self, instance: str) -> Path:
        """Where a sequencer instance keeps its local state stores (one RocksDB per partition)."""
        return self.stack_dir / "sequencer-state" / f"instance-{instance}"

    def broker_port(self, node: int) -> int:
        """The client port of node `node` (1, 2, 3) of the stack's Kafka cluster: LEDGER_KAFKA_PORT for
        the first, then every second port after it (the controller listener takes the port between)."""
        return self.kafka_port + 2 * (node - 1)

    def controller_port_of(self, node: int) -> int:
        return self.broker_port(node) + 1

    @property
    def controller_port(self) -> int:
        return self.controller_port_of(1)

    @property
    def bootstrap_servers(self) -> str:
        """Every node of the cluster, so a client starts even while one of them is down."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        return ",".join(f"127.0.0.1:{self.broker_port(n)}" for n in range(1, self.kafka_brokers + 1))

    @property
    def replication_factor(self) -> int:
        """Copies of every partition: 3 on a cluster of three (a write survives the loss of one node),
        1 on a single broker."""
        return min(self.kafka_brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Copies an acks=all write must reach: 2 of 3, so one node may be down and nothing acknowledged
        rests on one disk alone."""
        return 2 if self.replication_factor >= 3 else 1

    @property
    def pg_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.pg_port} user=postgres dbname={self.pg_database}"

    @property
    def pg_admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=postgres"


def load(env: dict[str, str] | None = None) -> Settings:
    e = os.environ if env is None else env
    stack_dir = Path(e.get("LEDGER_STACK_DIR", str(ROOT / ".stack"))).resolve()
    return Settings(
        stack_dir=stack_dir,
        kafka_port=int(e.get("LEDGER_KAFKA_PORT", "19092")),
        pg_port=int(e.get("LEDGER_PG_PORT", "15432")),
        pg_database=e.get("LEDGER_PG_DATABASE", "ledger"),
        # Key for the pseudonymous entity ids of natural persons (HMAC of the ID number).
        # Production sets its own secret; it must never change once events exist.
        id_pepper=e.get("LEDGER_ID_PEPPER", "local-development-pepper").encode(),
        # Department signing keys (private keys for emitters, public keys for the sequencer).
        keys_dir=Path(e.get("LEDGER_KEYS_DIR", str(stack_dir / "keys"))).resolve(),
        metrics_base_port=int(e.get("LEDGER_METRICS_PORT_BASE", "9100")),
        api_port=int(e.get("LEDGER_API_PORT", "8080")),  # the query API (HTTP, loopback)
        gateway_port=int(e.get("LEDGER_GATEWAY_PORT", "8081")),  # the submission gateway (HTTP, loopback)
        portal_port=int(e.get("LEDGER_PORTAL_PORT", "8082")),  # the public portal (HTML, loopback)
        registry_port=int(e.get("LEDGER_REGISTRY_PORT", "8083")),  # the schema registry API (HTTP, loopback)
        api_public_url=e.get("LEDGER_API_PUBLIC_URL", ""),
        # the public intake (HTML forms, loopback): by default the port after the schema registry's
        public_intake_port=int(e.get("LEDGER_PUBLIC_INTAKE_PORT", str(int(e.get("LEDGER_REGISTRY_PORT", "8083")) + 1))),
        sequencer_verified_batches=int(e.get("LEDGER_SEQUENCER_VERIFIED_BATCHES", "4096")),
        sequencer_cache_entities=int(e.get("LEDGER_SEQUENCER_CACHE_ENTITIES", "2000")),
        sequencer_cache_mib=int(e.get("LEDGER_SEQUENCER_CACHE_MIB", "32")),
        notary_every=int(e.get("LEDGER_NOTARY_EVERY", "1000")),
        notary_interval=float(e.get("LEDGER_NOTARY_INTERVAL", "10")),
        gateway_events_per_second=float(e.get("LEDGER_GATEWAY_EVENTS_PER_SECOND", "300")),
        gateway_burst=int(e.get("LEDGER_GATEWAY_BURST", "3000")),
        gateway_concurrent_requests=int(e.get("LEDGER_GATEWAY_CONCURRENT_REQUESTS", "32")),
        gateway_max_event_bytes=int(e.get("LEDGER_GATEWAY_MAX_EVENT_BYTES", str(256 * 1024))),
        gateway_max_batch_bytes=int(e.get("LEDGER_GATEWAY_MAX_BATCH_BYTES", str(64 * 1024 * 1024))),
        kafka_brokers=int(e.get("LEDGER_KAFKA_BROKERS", "1")),
        kafka_bootstrap=e.get("LEDGER_KAFKA_BOOTSTRAP", "").strip(),
        kafka_ca_file=Path(e["LEDGER_KAFKA_CA_FILE"]).resolve() if e.get("LEDGER_KAFKA_CA_FILE") else None,
        public_intake_burst=int(e.get("LEDGER_PUBLIC_INTAKE_BURST", "10")),
        public_intake_per_minute=float(e.get("LEDGER_PUBLIC_INTAKE_PER_MINUTE", "1")),
        pdf_font=e.get("LEDGER_PDF_FONT", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    )
