"""A rollout's plan before it is saved: the rollout service plans it inside a transaction that
is then rolled back, so the preview is exactly what creating it would do (targets, waves,
held devices, approvals needed) and leaves nothing behind, not even an audit record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.authz import Principal
from suture.scheduler.schemas import RolloutCreate, RolloutStatus
from suture.scheduler.services import rollouts
from suture.scheduler.ui import readmodel


@dataclass
class PlanPreview:
    status: RolloutStatus
    entries: list[readmodel.EntryView]
    paths: dict[str, list[int]]
    labels: dict[int, str]
    windows: list[tuple[int, int]]


@contextlib.contextmanager
def _rolled_back(sessions: sessionmaker[Session]) -> Iterator[Session]:
    engine = sessions.kw["bind"]
    assert isinstance(engine, Engine)
    with engine.connect() as conn:
        outer = conn.begin()
        session = sessions(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


def preview(sessions: sessionmaker[Session], *, spec: RolloutCreate, actor: Principal,
            now: int) -> PlanPreview:
    """What ``create_rollout`` would plan; its refusals are raised as it raises them."""
    with _rolled_back(sessions) as session:
        rollout = rollouts.create_rollout(session, spec=spec, actor=actor, now=now)
        status = rollouts.rollout_status(session, rollout_id=rollout.id)
        entries = readmodel.rollout_entries(session, rollout.id)
        paths = readmodel.device_paths(session, spec.release_id, entries)
        labels = readmodel.release_paths(session, sorted({r for p in paths.values() for r in p}))
    window = spec.window
    windows = readmodel.next_windows(window.cron if window else None,
                                     window.duration_s if window else None,
                                     window.tz if window else "UTC", now)
    return PlanPreview(status, entries, paths, labels, windows)
