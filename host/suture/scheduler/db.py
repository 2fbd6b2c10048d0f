"""Engine and session factory. SQLite gets WAL, a busy timeout, foreign keys and
``BEGIN IMMEDIATE`` (writers queue instead of failing); PostgreSQL gets a connection pool."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from suture.scheduler.services.audit import AuditKey

#: The session ``info`` key of the audit key (``services.audit.SESSION_KEY``).
SESSION_KEY = "suture_audit_key"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url`` with the per-dialect settings the scheduler relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_session_factory(engine: Engine, *, audit_key: AuditKey | None = None
                         ) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (services return them). Sessions
    that change anything need the audit key (``services/audit.py``): every change is audited,
    and an audit record cannot be written without it."""
    info = {SESSION_KEY: audit_key} if audit_key is not None else {}
    return sessionmaker(engine, expire_on_commit=False, info=info)


#: Longest wait for another thread's SQLite transaction before going ahead anyway (SQLite's own
#: lock and busy timeout still order the two).
WRITER_WAIT_S = 30.0
_writer_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_writer_locks_guard = threading.Lock()


@contextlib.contextmanager
def sqlite_writer_turn(session: Session) -> Iterator[None]:
    """On SQLite, one thread of this process at a time in the transaction this wraps: the
    others wait on a lock here, woken as soon as it is free, rather than in SQLite's busy
    handler, which sleeps in steps of up to 100 ms and turns a queue of writers into latency
    of seconds. Other processes are still ordered by SQLite's own lock. On PostgreSQL (row
    locks, many writers at once) it does nothing."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _writer_locks_guard:
        lock = _writer_locks.setdefault(engine, threading.Lock())
    held = lock.acquire(timeout=WRITER_WAIT_S)
    try:
        yield
    finally:
        if held:
            lock.release()


def is_postgres(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"
