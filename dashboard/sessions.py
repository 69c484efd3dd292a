"""Single-use sign-in nonces and signed-in sessions, held in the dashboard's memory.

A restart signs everyone out, which is the safe failure. Each nonce is issued for one
address and one domain (the wallet that asked for a message, the origin it was
written for) and is honoured only in a message naming both; it expires with that
message, and its first presentation consumes it, so a signed message cannot be
replayed and a nonce cannot be lent to another wallet or another site.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

NONCE_TTL_S = 600.0
SESSION_TTL_S = 8 * 3600.0


class NonceError(ValueError):
    """A nonce that must not open a session; the text says why."""


@dataclass(frozen=True)
class IssuedNonce:
    address: str  # EIP-55, as the message must name it
    domain: str
    expires: float


@dataclass
class SessionStore:
    _nonces: dict[str, IssuedNonce] = field(default_factory=dict)
    _sessions: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (address, expiry)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_nonce(self, address: str, domain: str) -> str:
        """A fresh nonce, good once, for a message naming ``address`` and ``domain``."""
        nonce = secrets.token_hex(12)
        with self._lock:
            self._expire()
            self._nonces[nonce] = IssuedNonce(address, domain, time.time() + NONCE_TTL_S)
        return nonce

    def consume_nonce(self, nonce: str, address: str, domain: str) -> None:
        """Spend ``nonce``; raise :class:`NonceError` unless this store issued it, unexpired,
        for exactly this address and domain. A presented nonce is spent even when refused."""
        with self._lock:
            self._expire()
            issued = self._nonces.pop(nonce, None)
        if issued is None:
            raise NonceError("unknown, expired or already used nonce")
        if issued.address.lower() != address.lower():
            raise NonceError(f"the nonce was issued for {issued.address}, not for {address}")
        if issued.domain != domain:
            raise NonceError(f"the nonce was issued for domain {issued.domain!r}, not for {domain!r}")

    def open(self, address: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = (address, time.time() + SESSION_TTL_S)
        return token

    def address(self, token: str | None) -> str | None:
        if not token:
            return None
        with self._lock:
            self._expire()
            entry = self._sessions.get(token)
        return entry[0] if entry else None

    def close(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def _expire(self) -> None:
        now = time.time()
        for nonce in [n for n, issued in self._nonces.items() if issued.expires <= now]:
            del self._nonces[nonce]
        for token in [k for k, (_, t) in self._sessions.items() if t <= now]:
            del self._sessions[token]
