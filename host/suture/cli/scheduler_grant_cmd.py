"""`suture scheduler rollout grant|show|biscuits` and `suture scheduler vendor check`: the
vendor's say on the rollouts of its releases (GNAP grants whose rights describe each rollout),
and the biscuits of its direct downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from suture.cli.options import JsonOpt, emit_json
from suture.cli.scheduler_vendor_cmd import DEFAULT_VENDORS, VendorsOption

_out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
DEFAULT_CONFIG = Path("scheduler.env")


def _vendor_line(vendor: dict[str, Any] | None) -> str:
    if vendor is None:
        return "not a vendor's release (no grant needed)"
    if vendor.get("verdict") == "not asked":
        return f"{vendor['vendor']}: not asked yet: {vendor['reason']}"
    if vendor.get("allows_start"):
        return f"{vendor['vendor']}: granted ({vendor['reference']})"
    if vendor.get("verdict") == "granted":
        return (f"{vendor['vendor']}: granted, but the rollout changed since "
                f"({vendor['outdated']}): ask again")
    return f"{vendor['vendor']}: REFUSED: {vendor['reason']}"


def _entry(vendors: Path, name: str) -> Any:
    from suture.scheduler.vendor_mirror import MirrorError, load_vendors

    entry = load_vendors(vendors).get(name)
    if entry is None:
        raise MirrorError(f"no vendor {name!r} in {vendors} (see: suture scheduler vendor add)")
    return entry


def rollout_grant(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
    vendor: Annotated[str, typer.Option(help="The vendor of the rollout's release.")],
    vendors: VendorsOption = DEFAULT_VENDORS,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """Ask the vendor to grant the rollout as it is planned now (GNAP).

    The access right names the vendor's release, the device classes and count,
    the waves and the windows; the vendor's authorization server judges it
    against its policy for this hospital and release. A grant that covers the
    rollout is kept; a changed rollout's grant is changed, or refused with the
    vendor's reason. A refused rollout cannot start (a running one pauses).
    """
    import httpx

    from suture.cli.scheduler_cmd import _now, _run
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import vendor_grants
    from suture.scheduler.vendor_authority import authority_for

    entry = _entry(vendors, vendor)

    def go(settings: Any, session: Any, me: Any) -> vendor_grants.VendorVerdict:
        with httpx.Client(timeout=30.0) as http:
            return vendor_grants.ask_vendor(session, rollout_id=rollout_id,
                                            authority=authority_for(entry, http), actor=me,
                                            now=_now())

    verdict = _run(config, Permission.ROLLOUT_PLAN, go)
    if as_json:
        emit_json({"rollout": rollout_id, **verdict.to_json()})
        return
    _out.print(f"rollout {rollout_id}: {verdict.explain()}", highlight=False)
    if not verdict.allows_start:
        raise typer.Exit(1)


def rollout_show(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """The rollout's plan, as approvers see it: release, targets, waves, window,
    approvals and the vendor's verdict."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import rollouts

    status = _run(config, Permission.ROLLOUT_READ,
                  lambda s, session, me: rollouts.rollout_status(session, rollout_id=rollout_id,
                                                                 tenant=me.tenant))
    ro = status.rollout
    if as_json:
        emit_json({**ro.model_dump(mode="json"),
                   "wave_sizes": [w.size for w in status.waves]})
        return
    info = Table.grid(padding=(0, 2))
    info.add_row("release", str(ro.release_id))
    info.add_row("state", ro.state + (f" ({ro.status_reason})" if ro.status_reason else ""))
    info.add_row("targets", f"{ro.target_count} devices; waves "
                 + ", ".join(str(w.size) for w in status.waves))
    window = f"{ro.window_cron} for {ro.window_duration_s} s ({ro.window_tz})" \
        if ro.window_cron else "any time"
    info.add_row("window", window + (f"; deadline {_when(ro.deadline)}" if ro.deadline else ""))
    info.add_row("approvals", f"{len(ro.approvals)} of {ro.required_approvals} "
                 f"({', '.join(ro.approvals) or 'none'})")
    info.add_row("vendor", _vendor_line(ro.vendor))
    _out.print(Panel(info, title=f"rollout {ro.id}: {ro.name}"))


def rollout_biscuits(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """The biscuits the rollout's devices hold for the vendor's /direct/ path
    (vendor-run mode): device, release, window and revocation id, never the
    token. Give the vendor a revocation id to end a biscuit at once (suture
    vendor biscuit revoke); the others end with the window."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import vendor_grants

    held = _run(config, Permission.ROLLOUT_OPERATE,
                lambda s, session, me: vendor_grants.device_biscuits(session, rollout_id,
                                                                     tenant=me.tenant))
    if as_json:
        emit_json([{"device": b.device_id, "release": b.release_id,
                    "not_before": b.not_before, "expires_at": b.expires_at,
                    "revocation_id": b.revocation_id} for b in held])
        return
    table = Table("device", "release", "from", "until", "revocation id")
    for b in held:
        table.add_row(b.device_id, str(b.release_id), _when(b.not_before), _when(b.expires_at),
                      b.revocation_id)
    _out.print(table if held else f"rollout {rollout_id}: no biscuits (the scheduler serves "
               "its downloads)", highlight=False)


def vendor_check(
    name: Annotated[str, typer.Argument(help="The vendor (as registered with add).")],
    vendors: VendorsOption = DEFAULT_VENDORS,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """Ask the vendor again about every granted, unfinished rollout of its releases.

    A grant the vendor withdrew (a recall, a changed policy) becomes a refusal:
    the rollout pauses, with the vendor's reason, and a recall is recorded on
    the release (audited). Run it on a timer.
    """
    import httpx

    from suture.cli.scheduler_cmd import _now, _run
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import tenants, vendor_grants
    from suture.scheduler.vendor_authority import authority_for

    entry = _entry(vendors, name)

    def go(settings: Any, session: Any, me: Any) -> list[vendor_grants.VendorVerdict]:
        # Every tenant's grants: the scheduler's own operators' (and the service's timer's).
        tenants.require_provider(me, "asking a vendor about every grant")
        with httpx.Client(timeout=30.0) as http:
            return vendor_grants.check_grants(session, authority=authority_for(entry, http),
                                              actor=me.name, now=_now())

    changed = _run(config, Permission.ROLLOUT_OPERATE, go)
    if as_json:
        emit_json([v.to_json() for v in changed])
        return
    if not changed:
        _out.print(f"vendor {name}: every grant still holds", highlight=False)
    for verdict in changed:
        _out.print(verdict.explain(), highlight=False)


def register_into(rollout_app: typer.Typer | None, vendor_app: typer.Typer) -> None:
    """Attach `grant` and `show` under `scheduler rollout` (when there is one), `check` under
    `scheduler vendor` (once)."""
    if rollout_app is not None:
        rollout_app.command("grant")(rollout_grant)
        rollout_app.command("show")(rollout_show)
        rollout_app.command("biscuits")(rollout_biscuits)
    if not any(c.name == "check" for c in vendor_app.registered_commands):
        vendor_app.command("check")(vendor_check)
