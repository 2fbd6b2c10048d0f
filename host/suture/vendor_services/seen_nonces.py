"""The replay cache, kept in the vendor's state file so that it survives a restart.

Each service (``scope``: the AS, the repository) accepts a ``(keyid, nonce)`` once while the
signature it came with is young (RFC 9635 §7.3.1); the row is forgotten when the ``created``
window has passed, after which the window check alone refuses a replay. A restarted server
therefore still refuses every request replayed inside its window.
"""

from __future__ import annotations

import sqlite3

from suture.vendor_services.clock import Clock
from suture.vendor_services.statedb import StateDb

#: Seconds between two purges of expired nonces.
PURGE_EVERY = 10.0


class SeenNonces:
    """A :class:`suture.vendor_services.httpsig.NonceStore` over ``db``, for one service."""

    def __init__(self, db: StateDb, scope: str, clock: Clock) -> None:
        self.db = db
        self.scope = scope
        self.clock = clock
        self._purged_at = float("-inf")

    def check_and_remember(self, keyid: str, nonce: str, until: float) -> bool:
        """``True`` the first time ``(keyid, nonce)`` is seen; ``False`` on a replay."""
        now = self.clock()
        with self.db.write() as conn:
            if now - self._purged_at >= PURGE_EVERY:
                conn.execute("DELETE FROM nonces WHERE until <= ?", (now,))
                self._purged_at = now
            try:
                conn.execute("INSERT INTO nonces (scope, keyid, nonce, until) VALUES (?, ?, ?, ?)",
                             (self.scope, keyid, nonce, until))
            except sqlite3.IntegrityError:
                return False
        return True

    def remembered(self) -> int:
        """How many nonces of this service are kept."""
        rows = self.db.rows("SELECT count(*) FROM nonces WHERE scope = ?", (self.scope,))
        return int(rows[0][0])
