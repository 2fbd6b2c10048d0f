"""`suture scheduler login|logout|whoami`, `operator ...`, `token ...`, and the commands that came
with them: `device decommission`, `rollout update`, `audit export|checkpoint`.

Each acts as the operator its token proves (``scheduler_auth.py``) through the same services
and role checks as the HTTP API; ``login`` is the one that takes a password instead.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from suture.cli.errors import CliError
from suture.cli.options import DryRunOpt, JsonOpt, YesOpt, confirm, emit_json
from suture.errors import EXIT_USAGE
from suture.scheduler.authz import Permission, Principal

ConfigOpt = Annotated[Path, typer.Option(
    "--config", "-c", envvar="SUTURE_SCHEDULER_CONFIG",
    help="Settings file written by `suture scheduler init`.")]
PasswordStdinOpt = Annotated[bool, typer.Option(
    help="Read the password from the first line of stdin instead of asking.")]
DEFAULT_CONFIG = Path("scheduler.env")

_out = Console(soft_wrap=True)

token_app = typer.Typer(help="Your API tokens (and, for administrators, everyone's).",
                        no_args_is_help=True)


def _base() -> Any:
    from suture.cli import scheduler_cmd

    return scheduler_cmd


def _now() -> int:
    return int(_base()._now())


def _when(ts: int | None) -> str:
    return str(_base()._when(ts))


def duration(text: str) -> int:
    """``3600``, ``90m``, ``12h``, ``30d`` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    scale = units.get(value[-1:], 0)
    number = value[:-1] if scale else value
    if not number.isdigit():
        raise CliError(f"{text!r}: a duration is seconds, or a number with s, m, h or d",
                       EXIT_USAGE)
    return int(number) * (scale or 1)


def read_password(from_stdin: bool, prompt: str = "password") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True))


def read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("new password (12 characters or more)", hide_input=True,
                            confirmation_prompt=True))


# --- signing in ------------------------------------------------------------------------------

def login(
    name: Annotated[str, typer.Argument(help="Your operator name.")],
    ttl: Annotated[str, typer.Option(help="How long the token lives (at most 7d).")] = "12h",
    password_stdin: PasswordStdinOpt = False,
    print_token: Annotated[bool, typer.Option(
        "--print", help="Print the token instead of writing the token file.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Sign in with your password: a token for the next commands, in the token file (mode
    0600) or printed for SUTURE_TOKEN."""
    from suture.cli.scheduler_auth import save_token
    from suture.scheduler.services import operators

    base = _base()
    with base._errors():
        password = read_password(password_stdin)
        _, sessions = base._sessions(config)
        with sessions() as session:
            issued = operators.login(session, name=name, password=password, now=_now(),
                                     ttl_s=duration(ttl))
        if print_token:
            _out.print(issued.token, highlight=False)
            return
        path = save_token(issued.token)
    _out.print(f"signed in as {name} until {_when(issued.expires_at)} (token in {path})",
               highlight=False)


def logout(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Revoke your token and remove the token file."""
    from suture.cli.scheduler_auth import forget_token
    from suture.scheduler.services import operators

    def go(settings: Any, session: Session, me: Principal) -> None:
        if me.token_id is not None:
            operators.revoke_token(session, token_id=me.token_id, actor=me, now=_now())

    _base()._run(config, None, go)
    forget_token()
    _out.print("signed out")


def whoami(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """Who your token says you are, your roles and what they allow."""
    from suture.scheduler.authz import permissions_of
    from suture.scheduler.services import operators

    def go(settings: Any, session: Session, me: Principal) -> dict[str, Any]:
        token = (operators.token_row(session, token_id=me.token_id)
                 if me.token_id is not None else None)
        return {"name": me.name, "roles": sorted(r.value for r in me.roles),
                "permissions": sorted(p.value for p in permissions_of(me.roles)),
                "via": me.via, "token_expires_at": token.expires_at if token else None}

    info = _base()._run(config, None, go)
    if as_json:
        emit_json(info)
        return
    _out.print(f"{info['name']}: {', '.join(info['roles']) or 'no role'} ({info['via']}, "
               f"until {_when(info['token_expires_at'])})", highlight=False)
    _out.print(f"may: {', '.join(info['permissions']) or 'nothing yet'}", highlight=False)


# --- accounts --------------------------------------------------------------------------------

def _roles(items: list[str] | None) -> list[str]:
    return [r.strip() for item in items or [] for r in item.split(",") if r.strip()]


def _account_json(account: Any) -> dict[str, Any]:
    return {"name": account.name, "roles": list(account.roles), "active": account.active,
            "has_password": account.password_hash is not None,
            "created_at": account.created_at, "created_by": account.created_by,
            "disabled_at": account.disabled_at, "locked_until": account.locked_until,
            "tenant": account.tenant}


def _token_json(t: Any) -> dict[str, Any]:
    return {"id": t.id, "operator": t.operator, "name": t.name, "created_at": t.created_at,
            "created_by": t.created_by, "expires_at": t.expires_at, "revoked_at": t.revoked_at,
            "last_used_at": t.last_used_at}


def operator_add(
    name: Annotated[str, typer.Argument(help="The account's name.")],
    role: Annotated[list[str] | None, typer.Option(
        help="A role (viewer, device_manager, release_manager, rollout_operator, approver, "
        "auditor, administrator); repeatable or comma-separated.")] = None,
    password: Annotated[bool, typer.Option(
        "--password/--no-password", help="Give it a local password (asked), or none: a "
        "service account with tokens only (`token create --for`).")] = True,
    password_stdin: PasswordStdinOpt = False,
    tenant: Annotated[str | None, typer.Option(
        help="The account's tenant (the vendor-run scheduler, `suture scheduler tenant "
        "add`): only its devices, rollouts and accounts are seen. Default: your own.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Make an operator account with its roles (administrators)."""
    from suture.scheduler.services import operators

    secret = read_new_password(password_stdin) if password else None
    account = _base()._run(config, Permission.OPERATOR_MANAGE, lambda s, session, me:
                           operators.add_operator(session, name=name, roles=_roles(role),
                                                  password=secret, actor=me, now=_now(),
                                                  tenant=tenant, mode=s.mode))
    if as_json:
        emit_json(_account_json(account))
        return
    _out.print(f"operator {name}: {', '.join(account.roles) or 'no role'}", highlight=False)


def operator_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """The accounts, their roles and state."""
    from suture.scheduler.services import operators

    rows = _base()._run(config, Permission.OPERATOR_READ,
                        lambda s, session, me: operators.list_operators(session,
                                                                        tenant=me.tenant))
    if as_json:
        emit_json([_account_json(a) for a in rows])
        return
    table = Table("name", "roles", "state", "password", "created", "by", title="operators")
    for a in rows:
        locked = a.locked_until is not None and a.locked_until > _now()
        table.add_row(a.name, ", ".join(a.roles), "active" if a.active else "disabled",
                      ("locked" if locked else "yes") if a.password_hash else "no",
                      _when(a.created_at), a.created_by)
    _out.print(table)


def operator_show(name: str, config: ConfigOpt = DEFAULT_CONFIG,
                  as_json: JsonOpt = False) -> None:
    """One account and its tokens (never a secret)."""
    from suture.scheduler.services import operators

    def go(settings: Any, session: Session, me: Principal) -> Any:
        return (operators.get_operator(session, name=name, tenant=me.tenant),
                operators.list_tokens(session, actor=me, operator=name))

    account, tokens = _base()._run(config, Permission.OPERATOR_READ, go)
    if as_json:
        emit_json({**_account_json(account), "tokens": [_token_json(t) for t in tokens]})
        return
    _out.print(f"{account.name}: {', '.join(account.roles) or 'no role'}; "
               f"{'active' if account.active else 'disabled'}", highlight=False)
    _out.print(_token_table(tokens))


def operator_roles(
    name: str,
    role: Annotated[list[str], typer.Option(
        help="The account's roles from now on (replaces them); repeatable or comma-separated.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Replace an account's roles (never your own)."""
    from suture.scheduler.services import operators

    account = _base()._run(config, Permission.OPERATOR_MANAGE, lambda s, session, me:
                           operators.set_roles(session, name=name, roles=_roles(role),
                                               actor=me, now=_now()))
    _out.print(f"operator {name}: {', '.join(account.roles) or 'no role'}", highlight=False)


def _set_active(name: str, active: bool, config: Path) -> None:
    from suture.scheduler.services import operators

    _base()._run(config, Permission.OPERATOR_MANAGE, lambda s, session, me:
                 operators.set_active(session, name=name, active=active, actor=me, now=_now()))
    _out.print(f"operator {name} {'enabled' if active else 'disabled; its tokens are revoked'}",
               highlight=False)


def operator_disable(name: str, config: ConfigOpt = DEFAULT_CONFIG, yes: YesOpt = False,
                     dry_run: DryRunOpt = False) -> None:
    """Disable an account: its tokens stop working and are revoked."""
    from suture.scheduler.services import operators

    if dry_run:
        tokens = _base()._run(config, Permission.OPERATOR_MANAGE, lambda s, session, me: [
            t for t in operators.list_tokens(session, actor=me, operator=name)
            if t.revoked_at is None and t.expires_at > _now()])
        _out.print(f"would disable {name} and revoke its {len(tokens)} active token(s)",
                   highlight=False)
        _out.print("dry run: nothing was changed", highlight=False)
        return
    confirm(f"Disable {name} and revoke its tokens?", yes=yes)
    _set_active(name, False, config)


def operator_enable(name: str, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Enable a disabled account (it signs in again; its old tokens stay revoked)."""
    _set_active(name, True, config)


def operator_password(
    name: Annotated[str | None, typer.Argument(
        help="Another account (administrators; its tokens are revoked). Default: yours.")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(
        help="Read the current password (for your own) then the new one, a line each, from "
        "stdin.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Change your password, or set another account's."""
    from suture.scheduler.services import operators

    def go(settings: Any, session: Session, me: Principal) -> str:
        target = name or me.name
        current = read_password(password_stdin, "current password") if target == me.name \
            else None
        operators.set_password(session, name=target, new_password=read_new_password(
            password_stdin), current_password=current, actor=me, now=_now())
        return target

    target = _base()._run(config, None, go)
    _out.print(f"password of {target} changed", highlight=False)


# --- tokens ----------------------------------------------------------------------------------

def _token_table(rows: list[Any]) -> Table:
    now = _now()
    table = Table("id", "operator", "name", "state", "expires", "last used", "created by",
                  title="tokens")
    for t in rows:
        state = "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active")
        table.add_row(str(t.id), t.operator, t.name, state, _when(t.expires_at),
                      _when(t.last_used_at), t.created_by)
    return table


def token_create(
    name: Annotated[str, typer.Option(help="What the token is for.")] = "token",
    ttl: Annotated[str, typer.Option(help="How long it lives (at most 365d).")] = "30d",
    for_: Annotated[str | None, typer.Option(
        "--for", help="Another account, e.g. a service account (administrators).")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """A new API token (shown once), for you or for a service account."""
    from suture.scheduler.services import operators

    issued = _base()._run(config, None, lambda s, session, me: operators.issue_token(
        session, operator=for_ or me.name, name=name, ttl_s=duration(ttl), actor=me,
        now=_now()))
    if as_json:
        emit_json({"token": issued.token, "id": issued.id, "operator": issued.operator,
                   "name": issued.name, "expires_at": issued.expires_at})
        return
    _out.print(f"token {issued.id} of {issued.operator} until {_when(issued.expires_at)}: "
               f"{issued.token}  (shown once)", highlight=False)


def token_list(
    all_: Annotated[bool, typer.Option("--all", help="Everyone's (operator:read).")] = False,
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False,
) -> None:
    """Your tokens (revoked and expired ones too)."""
    from suture.scheduler.services import operators

    rows = _base()._run(config, None, lambda s, session, me: operators.list_tokens(
        session, actor=me, operator=None if all_ else me.name))
    if as_json:
        emit_json([_token_json(t) for t in rows])
        return
    _out.print(_token_table(rows))


def token_revoke(token_id: int, config: ConfigOpt = DEFAULT_CONFIG, yes: YesOpt = False) -> None:
    """Revoke one of your tokens (administrators: anyone's); it stops working at once."""
    from suture.scheduler.services import operators

    confirm(f"Revoke token {token_id}?", yes=yes)
    row = _base()._run(config, None, lambda s, session, me: operators.revoke_token(
        session, token_id=token_id, actor=me, now=_now()))
    _out.print(f"token {row.id} of {row.operator} revoked", highlight=False)


# --- devices, rollouts -----------------------------------------------------------------------

def device_decommission(
    device_id: str,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    config: ConfigOpt = DEFAULT_CONFIG, yes: YesOpt = False, dry_run: DryRunOpt = False,
) -> None:
    """Take a device out of service for good: its credential stops working, its unfinished
    rollouts drop it, and no rollout targets it again."""
    from suture.scheduler.services import devices

    if dry_run:
        rollouts = _base()._run(config, Permission.DEVICE_DECOMMISSION, lambda s, session, me:
                                devices.unfinished_rollouts(session, device_id=device_id,
                                                            tenant=me.tenant))
        _out.print(f"would decommission {device_id}: its credential revoked, dropped from "
                   f"{len(rollouts)} unfinished rollout(s) {rollouts or ''}".rstrip(),
                   highlight=False)
        _out.print("dry run: nothing was changed", highlight=False)
        return
    confirm(f"Decommission {device_id} for good?", yes=yes)
    _base()._run(config, Permission.DEVICE_DECOMMISSION, lambda s, session, me:
                 devices.decommission_device(session, device_id=device_id, actor=me,
                                             now=_now(), reason=reason))
    _out.print(f"device {device_id} decommissioned", highlight=False)


def rollout_update(
    rollout_id: int,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    group: Annotated[list[str] | None, typer.Option(
        help="Target group (replaces the list); repeatable. Before start only.")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Target filter. Before start.")
                       ] = None,
    waves: Annotated[str | None, typer.Option(help="Wave sizes. Before start.")] = None,
    success_threshold: Annotated[float | None, typer.Option()] = None,
    error_threshold: Annotated[float | None, typer.Option()] = None,
    min_sample: Annotated[int | None, typer.Option()] = None,
    on_error: Annotated[str | None, typer.Option(help="pause or abort.")] = None,
    deadline: Annotated[str | None, typer.Option(
        help="ISO 8601 or unix seconds; 'none' removes it.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Change a rollout's targets (before it starts) or policy (also while paused): every
    approval is reset and you can no longer approve it."""
    from suture.scheduler.schemas import RolloutUpdate
    from suture.scheduler.services import rollouts

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if group:
        fields["target_groups"] = group
    if filter_ is not None:
        fields["target_filter"] = filter_
    if waves is not None:
        fields["waves"] = [w.strip() for w in waves.split(",") if w.strip()]
    for key, value in (("success_threshold", success_threshold),
                       ("error_threshold", error_threshold), ("error_min_sample", min_sample),
                       ("on_error", on_error)):
        if value is not None:
            fields[key] = value
    if deadline is not None:
        fields["deadline"] = None if deadline == "none" else _base()._parse_time(deadline)

    def go(settings: Any, session: Session, me: Principal) -> Any:
        ro = rollouts.update_rollout(session, rollout_id=rollout_id,
                                     change=RolloutUpdate(**fields), actor=me, now=_now())
        return ro

    ro = _base()._run(config, Permission.ROLLOUT_PLAN, go)
    _out.print(f"rollout {rollout_id}: {ro.state}; {ro.target_count} devices in "
               f"{ro.wave_count} waves; needs {ro.required_approvals} approval(s) again",
               highlight=False)


# --- audit -----------------------------------------------------------------------------------

def _send(lines: list[str], target: str) -> None:
    """Send syslog lines to ``udp://host:port`` (one datagram each) or ``tcp://host:port``
    (RFC 6587 octet counting)."""
    url = urlsplit(target)
    if url.scheme not in ("udp", "tcp") or not url.hostname or not url.port:
        raise CliError(f"--to {target!r}: udp://HOST:PORT or tcp://HOST:PORT", EXIT_USAGE)
    kind = socket.SOCK_DGRAM if url.scheme == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET6 if ":" in url.hostname else socket.AF_INET, kind) as sock:
        sock.settimeout(10)
        sock.connect((url.hostname, url.port))
        for line in lines:
            data = line.encode()
            sock.sendall(data if kind == socket.SOCK_DGRAM else b"%d %s" % (len(data), data))


def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or syslog (RFC 5424).")] = "jsonl",
    since: Annotated[int, typer.Option(help="Only records after this seq.")] = 0,
    out: Annotated[Path | None, typer.Option(
        help="Append to this file (default: stdout).")] = None,
    to: Annotated[str | None, typer.Option(
        help="Send syslog messages to udp://HOST:PORT or tcp://HOST:PORT.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Export the records for a SIEM, ending with a signed checkpoint of the last one."""
    from suture.scheduler.services import audit

    if to is not None and fmt != "syslog":
        raise CliError("--to sends syslog: add --format syslog", EXIT_USAGE)
    lines = _base()._run(config, Permission.AUDIT_READ, lambda s, session, me: list(
        audit.export_lines(session, since=since, fmt=fmt, now=_now())))
    with _base()._errors():
        if to is not None:
            _send(lines, to)
        elif out is not None:
            with out.open("a") as fh:
                fh.writelines(line + "\n" for line in lines)
        else:
            for line in lines:
                sys.stdout.write(line + "\n")
    if to is not None or out is not None:
        _out.print(f"{max(0, len(lines) - 1)} record(s) exported to {to or out}",
                   highlight=False)


def audit_checkpoint(
    out: Annotated[Path | None, typer.Option(
        help="Append the checkpoint to this file (default: the settings' checkpoint file).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Sign a checkpoint of the log's end now, and keep it outside the database."""
    from suture.scheduler.services import audit

    def go(settings: Any, session: Session, me: Principal) -> Any:
        return audit.checkpoint(session, now=_now()), out or settings.audit_checkpoint_path

    cp, path = _base()._run(config, Permission.AUDIT_READ, go)
    line = json.dumps(cp.to_json(), sort_keys=True)
    if path is None:
        sys.stdout.write(line + "\n")
        return
    with _base()._errors():
        audit.append_checkpoint_file(Path(path), cp)
    _out.print(f"checkpoint of record {cp.seq} appended to {path}", highlight=False)


def register_into(scheduler_app: typer.Typer, *, operator: typer.Typer, device: typer.Typer,
                  rollout: typer.Typer, audit: typer.Typer) -> None:
    """Attach these commands to the `suture scheduler` groups."""
    scheduler_app.command("login")(login)
    scheduler_app.command("logout")(logout)
    scheduler_app.command("whoami")(whoami)
    scheduler_app.add_typer(token_app, name="token")
    token_app.command("create")(token_create)
    token_app.command("list")(token_list)
    token_app.command("revoke")(token_revoke)
    operator.command("add")(operator_add)
    operator.command("list")(operator_list)
    operator.command("show")(operator_show)
    operator.command("roles")(operator_roles)
    operator.command("disable")(operator_disable)
    operator.command("enable")(operator_enable)
    operator.command("password")(operator_password)
    device.command("decommission")(device_decommission)
    rollout.command("update")(rollout_update)
    audit.command("export")(audit_export)
    audit.command("checkpoint")(audit_checkpoint)
