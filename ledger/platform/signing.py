"""Department signatures: Ed25519 over the exact submission bytes.

Each department holds its private key; the sequencer holds only the public keys, so write access
to credit.submissions is never enough to speak for a department. Keys live in a directory named by
configuration (LEDGER_KEYS_DIR), never in the repository: `<department>.key` (private, hex) and
`<department>.pub` (public, hex). ops/stack creates development keys for every known department.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


@lru_cache(maxsize=256)
def _private(private_key_hex: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))


@lru_cache(maxsize=256)
def _public(public_key_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))


def sign(private_key_hex: str, data: bytes) -> bytes:
    return _private(private_key_hex).sign(data)


def verify(public_key_hex: str, data: bytes, signature: bytes) -> bool:
    try:
        _public(public_key_hex).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_keypair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization as ser

    k = Ed25519PrivateKey.generate()
    priv = k.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption()).hex()
    pub = k.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw).hex()
    return priv, pub


def ensure_keys(keys_dir: Path, departments: list[str]) -> list[str]:
    """Create a key pair for each department that has none (development stacks). Returns the new ones."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    made = []
    for d in departments:
        if not (keys_dir / f"{d}.pub").exists():
            priv, pub = new_keypair()
            (keys_dir / f"{d}.key").write_text(priv)
            (keys_dir / f"{d}.key").chmod(0o600)
            (keys_dir / f"{d}.pub").write_text(pub)
            made.append(d)
    return made


def public_keys(keys_dir: Path) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in sorted(keys_dir.glob("*.pub"))}


def public_key(keys_dir: Path, name: str) -> str | None:
    """The public key `<name>.pub` (a department's or an intake's), or None when there is none."""
    path = keys_dir / f"{name}.pub"
    return path.read_text().strip() if path.exists() else None


def private_key(keys_dir: Path, department: str) -> str:
    path = keys_dir / f"{department}.key"
    if not path.exists():
        raise FileNotFoundError(f"no signing key for department {department!r} in {keys_dir}")
    return path.read_text().strip()
