"""Cross-site request forgery protection for the public forms: a signed token, double-submitted.

A page that shows a form sets a cookie (``csrf``: a random nonce, HttpOnly, SameSite=Strict, path /)
and puts in the form a token ``<nonce>.<issued>.<mac>``, where ``mac`` is HMAC-SHA256 of nonce and
issue time under this process's secret. A POST is taken only if the form's token is this process's
(the mac checks), not older than ``max_age`` seconds, and names the nonce of the browser's own
cookie: another site can make a browser send the cookie, but can read neither the cookie nor the
page, so it cannot write the matching token into a form of its own. A POST whose Origin header names
another site is refused too. Python's ``hmac`` and ``secrets`` are the whole machinery: no session
store, nothing kept per visitor. A restart makes a new secret: a form left open across it is refused
as expired and simply filled again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["COOKIE", "FIELD", "Tokens"]

COOKIE, FIELD = "csrf", "csrf_token"


class Tokens:
    def __init__(self, secret: bytes | None = None, max_age: float = 2 * 3600) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.max_age = max_age

    def _mac(self, nonce: str, issued: int) -> str:
        return hmac.new(self._secret, f"{nonce}.{issued}".encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float, nonce: str | None = None) -> tuple[str, str]:
        """(cookie nonce, form token): the browser's nonce is kept when it has one."""
        nonce = nonce if nonce and len(nonce) == 32 and nonce.isalnum() else secrets.token_hex(16)
        issued = int(now)
        return nonce, f"{nonce}.{issued}.{self._mac(nonce, issued)}"

    def check(self, token: str, cookie: str | None, now: float) -> str | None:
        """None if the token is good for this cookie, else why not (for the log, never shown)."""
        try:
            nonce, issued_text, mac = token.split(".")
            issued = int(issued_text)
        except ValueError:
            return "malformed"
        if not hmac.compare_digest(mac, self._mac(nonce, issued)):
            return "forged"
        if not cookie or not hmac.compare_digest(nonce, cookie):
            return "cookie"
        if not 0 <= now - issued <= self.max_age:
            return "expired"
        return None
