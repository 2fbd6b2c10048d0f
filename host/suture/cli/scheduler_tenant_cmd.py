"""`suture scheduler tenant add|list`: the hospitals a vendor-run scheduler serves
(``scheduler/services/tenants.py``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from suture.cli.errors import SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.cli.scheduler_grant_cmd import DEFAULT_CONFIG, ConfigOpt

_out = Console(soft_wrap=True)

tenant_app = SutureTyper(
    help="Tenants of the vendor-run scheduler (mode = vendor-run): each hospital's operators, "
    "devices and rollouts are isolated from the others'.", no_args_is_help=True)


def _tenant_json(t: Any) -> dict[str, Any]:
    return {"name": t.name, "display_name": t.display_name, "created_at": t.created_at,
            "created_by": t.created_by}


@tenant_app.command("add")
def tenant_add(
    name: Annotated[str, typer.Argument(help="The tenant's name: the DDI tenant its devices "
                                             "answer under, and the name given to "
                                             "`operator add --tenant`.")],
    display_name: Annotated[str, typer.Option(help="The hospital's name, as shown.")] = "",
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Register a tenant (administrators of the scheduler's own tenant, vendor-run mode).

    Then make its first administrator with `suture scheduler operator add NAME
    --role administrator --tenant TENANT`; that administrator makes the others.
    """
    from suture.cli.scheduler_cmd import _now, _run
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import tenants

    row = _run(config, Permission.OPERATOR_MANAGE, lambda s, session, me: tenants.add_tenant(
        session, name=name, display_name=display_name, mode=s.mode, actor=me, now=_now()))
    if as_json:
        emit_json(_tenant_json(row))
        return
    _out.print(f"tenant {row.name} ({row.display_name})", highlight=False)


@tenant_app.command("list")
def tenant_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """The registered tenants (an operator of a tenant sees its own)."""
    from suture.cli.scheduler_cmd import _run, _when
    from suture.scheduler.authz import Permission
    from suture.scheduler.services import tenants

    rows = _run(config, Permission.OPERATOR_READ,
                lambda s, session, me: tenants.list_tenants(session, actor=me))
    if as_json:
        emit_json([_tenant_json(t) for t in rows])
        return
    table = Table("name", "display name", "created", "by", title="tenants")
    for t in rows:
        table.add_row(t.name, t.display_name, _when(t.created_at), t.created_by)
    _out.print(table)


def register_into(scheduler_app: typer.Typer) -> None:
    scheduler_app.add_typer(tenant_app, name="tenant")
