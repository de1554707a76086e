"""Who may submit: one bearer token per department, known to the gateway by its SHA-256 digest only.

The digests are read from LEDGER_KEYS_DIR/api-tokens.json ({department: sha256-hex}), outside the
repository, and read again when the file changes (watched.py). `ensure_tokens` gives development stacks their
tokens (ops/stack up); production provides its own file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

from ledger.intake.gateway.watched import Watched

TOKENS_FILE = "api-tokens.json"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_tokens(keys_dir: Path, departments: list[str]) -> list[str]:
    """Development stacks: give every department without one a random bearer token. The clear token
    goes to <keys_dir>/<department>.token (0600), its SHA-256 to <keys_dir>/api-tokens.json, which is
    all the gateway reads. Returns the departments given a token now."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / TOKENS_FILE
    digests: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = [d for d in departments if d not in digests]
    for d in made:
        token = secrets.token_urlsafe(32)
        tok = keys_dir / f"{d}.token"
        fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        tok.chmod(0o600)
        digests[d] = token_digest(token)
    if made:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return made


class Tokens:
    """The departments' token digests, from <keys_dir>/api-tokens.json, read again when it changes
    (looked at every `recheck_seconds`): a token added is accepted, and one removed refused, within
    that time, without a restart."""

    def __init__(self, keys_dir: Path, recheck_seconds: float = 5.0) -> None:
        self.file = Watched(keys_dir / TOKENS_FILE, parse_digests, "api tokens", recheck_seconds,
                            absent="run ops/stack up (development) or provide the file ({department: sha256 hex "
                                   "of its token})")
        self.path = self.file.path

    def departments(self) -> list[str]:
        return [d for _, d in self.file.value]

    def department(self, authorization: str | None) -> str | None:
        """The department a bearer token belongs to, or None."""
        digests = self.file.current()
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).digest()
        found = None
        for known, dept in digests:  # every entry compared, in constant time
            if hmac.compare_digest(known, digest):
                found = dept
        return found


def parse_digests(text: bytes) -> list[tuple[bytes, str]]:
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and
                                             re.fullmatch(r"[0-9a-f]{64}", v) for k, v in data.items()):
        raise ValueError("expected {department: sha256 hex}")
    return [(bytes.fromhex(v), k) for k, v in sorted(data.items())]
