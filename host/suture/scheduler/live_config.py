"""What a running scheduler takes from its settings file while it runs, and what waits for a
restart.

The vendors' trust anchors are applied at once: when the settings file's
``SUTURE_SCHEDULER_TRUST_ANCHOR_PATHS`` changes (``suture scheduler init --trust-anchor ...``
on a running scheduler), the next import, health check or advancement pass uses the new list,
and the change is audited (``scheduler.trust_anchors``, with the key ids before and after). The
anchor files themselves are read at every import, so a replaced key file counts at once too.

Every other setting (root secret, signing key, database, audit key, ...) is fixed for the
process's life: a change is not applied, and ``/healthz`` and ``GET /api/v1/scheduler`` name
it under ``restart_required`` until the scheduler restarts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from suture.keys import KeyFileError, PublicKey, key_id, load_public_key
from suture.scheduler.config import Settings, load_settings
from suture.scheduler.errors import ConfigurationError

log = logging.getLogger("suture.scheduler.config")


@dataclass(frozen=True)
class AnchorStatus:
    path: str
    key_id: str | None
    error: str | None = None


@dataclass
class LiveConfig:
    running: Settings
    path: Path | None = None
    anchor_paths: list[Path] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    file_error: str | None = None
    _stamp: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Trust anchor changes applied and not audited yet: (before, after).
    _unaudited: list[tuple[list[Path], list[Path]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.anchor_paths = list(self.running.trust_anchor_paths)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> None:
        """Re-read the settings file if it changed: apply a new trust anchor list (to be
        audited by ``refresh_and_audit``), note the settings that wait for a restart."""
        if self.path is None:
            return
        with self._lock:
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                fresh = load_settings(self.path)
            except (ValueError, OSError) as exc:
                self.file_error = f"{self.path}: {str(exc).splitlines()[0]}"
                log.warning("settings file not applied: %s", self.file_error)
                return
            self.file_error = None
            self.restart_required = sorted(
                name for name in Settings.model_fields
                if name != "trust_anchor_paths"
                and getattr(fresh, name) != getattr(self.running, name))
            if self.restart_required:
                log.warning("settings changed that apply only after a restart: %s",
                            ", ".join(self.restart_required))
            new = list(fresh.trust_anchor_paths)
            if new == self.anchor_paths:
                return
            before, self.anchor_paths = self.anchor_paths, new
            self._unaudited.append((before, new))
            log.warning("trust anchors changed: %s -> %s", [str(p) for p in before],
                        [str(p) for p in new])

    def refresh_and_audit(self, sessions: sessionmaker[Session], now: int) -> None:
        """``refresh``, and audit the trust anchor changes applied since the last call."""
        from suture.scheduler.services import audit

        self.refresh()
        while self._unaudited:
            before, after = self._unaudited[0]
            with sessions() as session, session.begin():
                audit.append(session, at=now, actor="scheduler",
                             action="scheduler.trust_anchors", subject=socket.gethostname()[:64],
                             detail={"before": [a.__dict__ for a in anchor_status(before)],
                                     "after": [a.__dict__ for a in anchor_status(after)],
                                     "pid": os.getpid()})
            with self._lock:  # dropped once audited (a failed append keeps it for next time)
                if self._unaudited and self._unaudited[0] == (before, after):
                    self._unaudited.pop(0)

    def trust_anchors(self) -> list[PublicKey]:
        """The vendors' public keys as the settings file names them now."""
        self.refresh()
        try:
            return [load_public_key(p) for p in self.anchor_paths]
        except KeyFileError as exc:
            raise ConfigurationError(f"trust anchor: {exc}") from None


def anchor_status(paths: list[Path]) -> list[AnchorStatus]:
    out = []
    for p in paths:
        try:
            out.append(AnchorStatus(str(p), key_id(load_public_key(p)).hex()))
        except KeyFileError as exc:
            out.append(AnchorStatus(str(p), None, str(exc)))
    return out
