"""`suture scheduler ddi`: the tokens of hawkBit's DDI API (docs/ddi.md). A device's target token
lets its DDI client (SWUpdate, RAUC, Zephyr) poll as that device under its tenant; a tenant's
gateway token lets a gateway poll for every device of the tenant. Each is shown once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from suture.cli.errors import SutureTyper
from suture.cli.options import emit_json
from suture.scheduler.authz import Permission, Principal

ddi_app = SutureTyper(
    help="hawkBit DDI API: issue a device's target token or a tenant's gateway token, for "
         "SWUpdate, RAUC or Zephyr devices that poll the scheduler (docs/ddi.md).",
    no_args_is_help=True)
target_app = SutureTyper(help="A device's DDI target token.", no_args_is_help=True)
gateway_app = SutureTyper(help="A tenant's DDI gateway token.", no_args_is_help=True)
ddi_app.add_typer(target_app, name="target-token")
ddi_app.add_typer(gateway_app, name="gateway-token")
_out = Console(soft_wrap=True)

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
TokenOut = Annotated[Path | None, typer.Option(
    help="Write the token to this file (mode 0600) instead of printing it.")]
TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def _write_secret(path: Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")


def _check_tenant(tenant: str) -> None:
    import re

    from suture.cli.errors import CliError
    from suture.errors import EXIT_USAGE

    if not re.fullmatch(TENANT_PATTERN, tenant):
        raise CliError(f"tenant {tenant!r}: 1 to 64 letters, digits, '_', '.' or '-'",
                       EXIT_USAGE)


@target_app.command("issue")
def target_issue(
    device_id: Annotated[str, typer.Argument(help="A registered device.")],
    tenant: Annotated[str, typer.Option(help="The DDI tenant the device polls under.")
                      ] = "DEFAULT",
    kind: Annotated[str, typer.Option(help="linux (SWUpdate, RAUC) or mcu (e.g. Zephyr).")
                    ] = "linux",
    token_out: TokenOut = None,
    config: ConfigOpt = Path("scheduler.env"),
    as_json: JsonOpt = False,
) -> None:
    """Issue the device's DDI target token (the previous one stops working): its client
    sends `Authorization: TargetToken <token>` to /TENANT/controller/v1/DEVICE."""
    from suture.cli.errors import CliError
    from suture.cli.scheduler_cmd import _now, _run
    from suture.errors import EXIT_USAGE
    from suture.scheduler.ddi import service

    _check_tenant(tenant)
    if kind not in ("linux", "mcu"):
        raise CliError(f"kind {kind!r}: linux or mcu", EXIT_USAGE)

    def go(settings: Any, session: Session, me: Principal) -> str:
        return service.issue_target_token(session, device_id=device_id, tenant=tenant,
                                          kind=kind, actor=me, now=_now())

    token = _run(config, Permission.DEVICE_CREDENTIAL, go)
    _emit(token, token_out, as_json, {"device_id": device_id, "tenant": tenant, "kind": kind},
          f"device {device_id}: DDI target token for tenant {tenant}")


@gateway_app.command("issue")
def gateway_issue(
    tenant: Annotated[str, typer.Argument(help="The DDI tenant.")] = "DEFAULT",
    token_out: TokenOut = None,
    config: ConfigOpt = Path("scheduler.env"),
    as_json: JsonOpt = False,
) -> None:
    """Issue the tenant's DDI gateway token (the previous one stops working): it
    authenticates every device of the tenant (`Authorization: GatewayToken <token>`); keep it
    on the gateway only."""
    from suture.cli.scheduler_cmd import _now, _run
    from suture.scheduler.ddi import service

    _check_tenant(tenant)
    token = _run(config, Permission.DEVICE_CREDENTIAL, lambda s, session, me:
                 service.issue_gateway_token(session, tenant=tenant, actor=me, now=_now()))
    _emit(token, token_out, as_json, {"tenant": tenant}, f"tenant {tenant}: DDI gateway token")


def _emit(token: str, token_out: Path | None, as_json: bool, fields: dict[str, str],
          line: str) -> None:
    if token_out is not None:
        _write_secret(token_out, token)
    if as_json:
        emit_json({**fields, "token": None if token_out is not None else token,
                   "token_file": str(token_out) if token_out is not None else None})
        return
    _out.print(line, highlight=False)
    if token_out is not None:
        _out.print(f"token written to {token_out}", highlight=False)
    else:
        _out.print(f"token {token}  (shown once)", highlight=False)


def register_into(scheduler_app: typer.Typer) -> None:
    scheduler_app.add_typer(ddi_app, name="ddi")
