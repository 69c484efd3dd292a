"""Single-use sign-in nonces and signed-in sessions, held in the dashboard's memory.

A restart signs everyone out, which is the safe failure. Nonces expire with the
message they were issued for, and each is consumed by its first verification, so a
signed message cannot be replayed.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

NONCE_TTL_S = 600.0
SESSION_TTL_S = 8 * 3600.0


@dataclass
class SessionStore:
    _nonces: dict[str, float] = field(default_factory=dict)  # nonce -> expiry
    _sessions: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (address, expiry)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_nonce(self) -> str:
        nonce = secrets.token_hex(12)
        with self._lock:
            self._expire()
            self._nonces[nonce] = time.time() + NONCE_TTL_S
        return nonce

    def consume_nonce(self, nonce: str) -> bool:
        """True once for a nonce this store issued and that has not expired."""
        with self._lock:
            self._expire()
            return self._nonces.pop(nonce, None) is not None

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
        for nonce in [n for n, t in self._nonces.items() if t <= now]:
            del self._nonces[nonce]
        for token in [k for k, (_, t) in self._sessions.items() if t <= now]:
            del self._sessions[token]
