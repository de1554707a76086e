"""How a process reaches Kafka: the cluster's bootstrap servers and the principal it authenticates as.

The brokers require SASL/SCRAM-SHA-512 on every listener, and their ACLs give each principal only
what it needs (ops/access.py): every department its own principal (its id in the department matrix),
every sector system, the auditors, and each of the ledger's own processes (the names below). A
principal's password is the file `<LEDGER_KEYS_DIR>/kafka/<principal>.password` (mode 0600), which
`ops/stack up` creates for development like the signing keys and the API tokens; a real installation
puts each party's own there. With LEDGER_KAFKA_CA_FILE set the connection is also encrypted
(SASL_SSL, the brokers' certificates checked against that CA: docs/operations.md).

`KafkaAccess` is the one description of a connection: `options()` for aiokafka (producers, consumers,
the admin client), `librdkafka()` for confluent-kafka, `java_properties()` for Kafka's own tools and
Java clients. A faust app takes the same fields:
`faust.App(..., broker=f"kafka://{a.bootstrap_servers}", broker_credentials=faust.SASLCredentials(
username=a.username, password=a.password, mechanism=a.mechanism, ssl_context=a.ssl_context()))`.
"""

from __future__ import annotations

import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.platform import config

MECHANISM = "SCRAM-SHA-512"

# The operator: ops/stack (topics, users, ACLs), the brokers among themselves and with their
# controllers. A super user of the cluster; no ledger process runs as it.
ADMIN = "ledger-admin"
# The development auditor (reads credit.events and credit.checkpoints: `python -m projections.audit`).
AUDITOR = "auditor"
# The ledger's own processes, one principal each (their topics, groups and transactional ids: ops/access.py).
SEQUENCER = "ledger-sequencer"
PROJECTOR = "ledger-projector"
LIST_KEEPER = "ledger-list-keeper"
WEBHOOK = "ledger-webhook"
NOTARY = "ledger-notary"
SCHEDULER = "ledger-scheduler"  # also a department of the matrix: it submits expiries
GATEWAY = "ledger-gateway"  # also the intake of the matrix that attests for departments
QUERY_API = "ledger-query-api"  # the auditors' routes and the credit reports read credit.events
PUBLIC_INTAKE = "ledger-public-intake"  # also the intake of the matrix that attests for the public
SUPERVISION = "ledger-supervision"  # the faust app: reads outcomes, events, alerts; owns its own topics
SERVICES = (SEQUENCER, PROJECTOR, LIST_KEEPER, WEBHOOK, NOTARY, SCHEDULER, GATEWAY, QUERY_API, PUBLIC_INTAKE,
            SUPERVISION)


class AccessError(Exception):
    """A principal's credentials are missing or unreadable; the message says where they belong."""


@dataclass(frozen=True)
class KafkaAccess:
    """One principal's way to the cluster."""

    bootstrap_servers: str
    username: str
    password: str
    ca_file: Path | None = None  # set: SASL_SSL, the brokers' certificates checked against this CA
    mechanism: str = MECHANISM

    @property
    def security_protocol(self) -> str:
        return "SASL_SSL" if self.ca_file else "SASL_PLAINTEXT"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None

    def options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)."""
        return {"bootstrap_servers": self.bootstrap_servers, "security_protocol": self.security_protocol,
                "sasl_mechanism": self.mechanism, "sasl_plain_username": self.username,
                "sasl_plain_password": self.password, "ssl_context": self.ssl_context()}

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka's (librdkafka's) configuration."""
        conf = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol,
                "sasl.mechanism": self.mechanism, "sasl.username": self.username, "sasl.password": self.password}
        return {**conf, "ssl.ca.location": str(self.ca_file)} if self.ca_file else conf

    def java_properties(self) -> str:
        """A client properties file for Kafka's Java clients and tools (`--command-config`)."""
        lines = [f"bootstrap.servers={self.bootstrap_servers}", f"security.protocol={self.security_protocol}",
                 f"sasl.mechanism={self.mechanism}",
                 "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                 f'username="{self.username}" password="{self.password}";']
        if self.ca_file:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.ca_file}"]
        return "\n".join(lines) + "\n"


def passwords_dir(keys_dir: Path) -> Path:
    return keys_dir / "kafka"


def password_file(keys_dir: Path, principal: str) -> Path:
    return passwords_dir(keys_dir) / f"{principal}.password"


def access(s: config.Settings, principal: str) -> KafkaAccess:
    """How `principal` reaches the cluster of these settings, with the password from its file."""
    path = password_file(s.keys_dir, principal)
    try:
        password = path.read_text().strip()
    except OSError:
        raise AccessError(f"no Kafka password for the principal {principal!r}: {path} is missing (a development "
                          f"stack: run ops/stack up, which creates one for every principal; otherwise put the "
                          f"password the Kafka operator gave you there, mode 0600)") from None
    if not password:
        raise AccessError(f"{path} is empty: it must hold the Kafka password of {principal!r}")
    return KafkaAccess(s.bootstrap_servers, principal, password, s.kafka_ca_file)


def ensure_passwords(keys_dir: Path, principals: list[str]) -> list[str]:
    """Development stacks: a random password for every principal without one (0600). Returns the
    principals given one now."""
    folder = passwords_dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    made = []
    for p in principals:
        path = password_file(keys_dir, p)
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")  # [A-Za-z0-9_-]: safe in JAAS quotes and --add-scram
        made.append(p)
    return made
