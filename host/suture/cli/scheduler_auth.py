"""Who a `suture scheduler` command acts as: the operator its API token proves.

Every command that reads or changes the scheduler's data authenticates first, through the same
service (``services/operators.authenticate_token``) and role table as the HTTP API; no command
takes an operator's name on trust. The token comes from, in order:

1. ``SUTURE_TOKEN`` (a service account's token, CI);
2. the token file ``suture scheduler login`` wrote: ``SUTURE_TOKEN_FILE``, else
   ``$XDG_CONFIG_HOME/suture/scheduler-token`` (``~/.config/suture/scheduler-token``), mode
   0600 in a 0700 folder; a file others can read is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.orm import Session

from suture.scheduler.authz import Principal
from suture.scheduler.errors import AuthenticationError
from suture.scheduler.services import operators

TOKEN_ENV = "SUTURE_TOKEN"  # noqa: S105 (the variable's name)
TOKEN_FILE_ENV = "SUTURE_TOKEN_FILE"  # noqa: S105 (the variable's name)


def token_file() -> Path:
    named = os.environ.get(TOKEN_FILE_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "suture" / "scheduler-token"


def read_token() -> str:
    """The token this command acts with; ``AuthenticationError`` when there is none."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = token_file()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AuthenticationError(
            "not signed in: run `suture scheduler login NAME` (or set SUTURE_TOKEN to an API "
            "token)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthenticationError(f"{path} can be read by others: refusing it "
                                  f"(chmod 600 {path}, then sign in again)")
    return path.read_text().strip()


def save_token(token: str) -> Path:
    """Write the token file (0600, its folder 0700), replacing the previous one."""
    path = token_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.replace(tmp, path)
    return path


def forget_token() -> bool:
    """Remove the token file; whether there was one."""
    try:
        token_file().unlink()
    except FileNotFoundError:
        return False
    return True


def signed_in(session: Session, now: int) -> Principal:
    """The operator the token proves, with its roles now."""
    return operators.authenticate_token(session, token=read_token(), now=now)
