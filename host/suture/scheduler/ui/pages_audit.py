"""The audit log, filtered, with the chain's verification."""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from suture.scheduler.errors import SchedulerError
from suture.scheduler.services import audit
from suture.scheduler.ui.context import Ui, UiContext
from suture.scheduler.ui.mount import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

#: Records a page shows at most (the latest that match).
SHOWN: Final = 200


def _verification(ui: UiContext) -> audit.VerifyResult:
    """The chain, the MACs, the head, and the signed checkpoints the service wrote."""
    checkpoints: list[audit.Checkpoint] = []
    path = ui.state.settings.audit_checkpoint_path
    if path is not None and path.exists():
        try:
            checkpoints = audit.parse_checkpoints(path.read_text().splitlines(),
                                                  source=str(path))
        except (OSError, SchedulerError) as exc:
            return audit.VerifyResult(False, 0, None, f"checkpoints unreadable: {exc}")
    with ui.session() as session:
        return audit.verify(session, checkpoints=checkpoints)


@router.get("/audit")
def audit_page(ui: Ui, actor: str = "", action: str = "", subject: str = "") -> HTMLResponse:
    """Records whose actor is ``actor``, action starts with ``action`` and subject contains
    ``subject``; the latest ``SHOWN`` of them, newest first."""
    ui.require("GET", "/api/v1/audit")
    ui.require("GET", "/api/v1/audit/verify")
    actor, action, subject = actor.strip()[:80], action.strip()[:64], subject.strip()[:128]
    shown: deque[dict[str, Any]] = deque(maxlen=SHOWN)
    matched = total = 0
    with ui.session() as session:
        for rec in audit.iter_records(session, tenant=ui.principal.tenant):  # as the API
            total += 1
            if (actor and rec.actor != actor) or (action and not rec.action.startswith(action)) \
                    or (subject and subject not in rec.subject):
                continue
            matched += 1
            shown.append({"seq": rec.seq, "at": rec.at, "actor": rec.actor,
                          "action": rec.action, "subject": rec.subject,
                          "detail": audit.detail_of(rec), "hash": rec.hash})
    return ui.page("audit.html", records=list(reversed(shown)), matched=matched, total=total,
                   verification=_verification(ui), actor=actor, action=action,
                   subject=subject, shown_max=SHOWN)
