"""The vendor's durable state: one SQLite file in the data directory (``state.db``).

The authorization server keeps its grants and tokens there, and both services the nonces
they have seen, so that a restart neither ends a grant in flight nor opens a window for
replays. The command line opens the same file (``suture vendor client remove`` revokes a
client's grants in it, and the running server sees it on the next request). Token values are
never stored, only their SHA-256.

Write transactions take SQLite's write lock at once (``BEGIN IMMEDIATE``), so the server and a
command never interleave a read-modify-write; the file is in WAL mode, so readers never wait.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from suture.vendor_services.errors import VendorServicesError

SCHEMA_VERSION: Final = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    grant_id      TEXT PRIMARY KEY,
    kid           TEXT NOT NULL,
    jwk           TEXT NOT NULL,
    instance_id   TEXT,
    access        TEXT NOT NULL,
    continue_hash TEXT NOT NULL,
    next_poll_at  REAL NOT NULL,
    window_end    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS grants_instance ON grants (instance_id);
CREATE INDEX IF NOT EXISTS grants_window_end ON grants (window_end);
CREATE TABLE IF NOT EXISTS tokens (
    token_id    TEXT PRIMARY KEY,
    value_hash  TEXT NOT NULL UNIQUE,
    manage_hash TEXT NOT NULL,
    grant_id    TEXT NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    access      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_grant ON tokens (grant_id);
CREATE TABLE IF NOT EXISTS nonces (
    scope TEXT NOT NULL,
    keyid TEXT NOT NULL,
    nonce TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (scope, keyid, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_until ON nonces (until);
CREATE TABLE IF NOT EXISTS revocations (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT OR IGNORE INTO revocations (id, epoch) VALUES (1, 0);
"""


class StateDbError(VendorServicesError, RuntimeError):
    """The state file cannot be opened or is of a newer schema."""


class StateDb:
    """A connection to ``path`` (``None``: a private in-memory database, for tests and tools
    that need no persistence), safe to share between threads."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path) if path is not None else ":memory:",
                isolation_level=None, check_same_thread=False, timeout=10.0,
            )
            self._conn.row_factory = sqlite3.Row
            if path is not None:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StateDbError(f"{path}: schema {version} is newer than this suture's "
                                   f"({SCHEMA_VERSION})")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as e:
            raise StateDbError(f"{path or 'state'}: {e}") from e
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on an error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one read-only statement."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
