"""`suture scheduler device suit-reports ID`: a device's SUIT reports (draft-ietf-suit-report,
docs/formats/suit-report.md), verified when they arrived: the manifest each is about, whether
the update succeeded, the conditions that held, the failing command and the installed digest
(suture.scheduler.services.suit_reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from suture.cli.options import emit_json
from suture.scheduler.authz import Permission, Principal

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def device_suit_reports(
    device_id: str,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Show at most this many, newest "
                                                              "first.")] = 20,
    config: ConfigOpt = Path("scheduler.env"),
    as_json: JsonOpt = False,
) -> None:
    """A device's SUIT reports, newest first: each one's manifest, outcome, the conditions that
    held, the failing command (section, byte offset, component, condition) and reason, and the
    installed versions and digest."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.services import suit_reports

    def go(settings: Any, session: Session, me: Principal) -> list[dict[str, Any]]:
        return suit_reports.list_suit_reports(session, device_id=device_id, limit=limit,
                                              tenant=me.tenant)

    rows = _run(config, Permission.DEVICE_READ, go)
    if as_json:
        emit_json({"device_id": device_id, "reports": rows})
        return
    table = Table("id", "when", "signed", "manifest", "outcome", "failed at", "held",
                  "installed", title=f"SUIT reports of {device_id}")
    for r in rows:
        result = r.get("result")
        outcome = "ok" if r["succeeded"] else (
            f"{result['code']} {result['reason']}" if result else "failed")
        table.add_row(str(r["id"]), _when(r["at"]), r["kind"], r["manifest_digest"][:16],
                      outcome, suit_reports.failed_at(result["record"]) if result else "-",
                      str(len(r.get("records") or [])),
                      suit_reports.installed_text(r.get("claims") or []))
    Console(soft_wrap=True).print(table)  # the terminal's width now, not at import


def register_into(device_app: typer.Typer) -> None:
    """Attach `suit-reports` under `scheduler device`."""
    device_app.command("suit-reports")(device_suit_reports)
