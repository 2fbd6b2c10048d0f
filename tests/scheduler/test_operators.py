"""Operator accounts: argon2 passwords and sign-in, tokens that are listed, expire and are
revoked, roles read at every request, administrators that cannot raise themselves; and the
CLI, which acts only as the operator its token proves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sched_world import ADMIN, CLASS_ID, VENDOR_ID, Api, World, cli_accounts
from suture.cli.main import app
from suture.scheduler.authz import Role
from suture.scheduler.errors import AuthenticationError, ConflictError, ForbiddenError
from suture.scheduler.models import Operator
from suture.scheduler.services import audit, operators
from typer.testing import CliRunner

DEVICE_IDS = ("--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
              "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45")

PASSWORD = "twelve chars or more"


def _with_password(world: World, name: str = "erin", roles: tuple[str, ...] = ("viewer",)
                   ) -> None:
    operators.add_operator(world.session(), name=name, roles=roles, password=PASSWORD,
                           actor=world.op(ADMIN), now=world.clock.now())


def test_passwords_are_argon2id_and_sign_in_issues_an_expiring_token(world: World,
                                                                     api: Api) -> None:
    _with_password(world)
    with world.session() as s:
        stored = s.get(Operator, "erin")
        assert stored is not None
        assert stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
    r = api.client.post("/api/v1/auth/login",
                        json={"name": "erin", "password": PASSWORD, "ttl_s": 600})
    assert r.status_code == 200, r.text
    token, expires = r.json()["token"], r.json()["expires_at"]
    assert expires == world.clock.now() + 600
    me = api.client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "erin"
    assert me.json()["roles"] == ["viewer"]
    assert "device:write" not in me.json()["permissions"]
    world.clock.advance(601)
    assert api.client.get("/api/v1/auth/whoami",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 401
    listed = api.client.get("/api/v1/operators", headers=api.as_(ADMIN)).json()
    assert {"name", "roles", "has_password"} <= set(listed[0])
    assert not any("hash" in key for row in listed for key in row)


def test_wrong_passwords_lock_the_account(world: World) -> None:
    _with_password(world)
    refused = "operator name or password not recognised"
    with pytest.raises(AuthenticationError, match=refused):
        operators.login(world.session(), name="nobody", password=PASSWORD, now=world.clock.now())
    for _ in range(operators.MAX_FAILED_LOGINS):
        with pytest.raises(AuthenticationError, match=refused):
            operators.login(world.session(), name="erin", password="not the password",
                            now=world.clock.now())
    with pytest.raises(AuthenticationError, match="locked"):
        operators.login(world.session(), name="erin", password=PASSWORD, now=world.clock.now())
    world.clock.advance(operators.LOCKOUT_S + 1)
    assert operators.login(world.session(), name="erin", password=PASSWORD,
                           now=world.clock.now()).operator == "erin"
    actions = [r.action for r in audit.recent(world.session(), limit=20)]
    assert actions.count("operator.login_failed") == operators.MAX_FAILED_LOGINS
    assert actions[-1] == "operator.login"


def test_tokens_are_listed_revoked_and_end_with_their_account(world: World, api: Api) -> None:
    issued = operators.issue_token(world.session(), operator="bob", name="laptop", ttl_s=3600,
                                   actor=world.op("bob"), now=world.clock.now())
    bob = {"Authorization": f"Bearer {issued.token}"}
    mine = api.client.get("/api/v1/tokens", headers=bob).json()
    assert {t["name"] for t in mine} == {"tests", "laptop"}
    assert not any("hash" in key or key == "token" for t in mine for key in t)
    # alice may not revoke bob's token; bob may
    assert api.client.delete(f"/api/v1/tokens/{issued.id}", headers=api.op).status_code == 404
    assert api.client.delete(f"/api/v1/tokens/{issued.id}", headers=bob).status_code == 200
    assert api.client.get("/api/v1/auth/whoami", headers=bob).status_code == 401
    # a disabled account's tokens stop at once and stay revoked when it is enabled again
    admin = world.op(ADMIN)
    assert api.client.get("/api/v1/rollouts", headers=api.as_("carol")).status_code == 200
    operators.set_active(world.session(), name="carol", active=False, actor=admin,
                         now=world.clock.now())
    assert api.client.get("/api/v1/rollouts", headers=api.as_("carol")).status_code == 401
    operators.set_active(world.session(), name="carol", active=True, actor=admin,
                         now=world.clock.now())
    assert api.client.get("/api/v1/rollouts", headers=api.as_("carol")).status_code == 401
    # logout revokes the token it came with
    new = operators.issue_token(world.session(), operator="carol", name="again", ttl_s=600,
                                actor=admin, now=world.clock.now())
    carol = {"Authorization": f"Bearer {new.token}"}
    assert api.client.post("/api/v1/auth/logout", headers=carol).status_code == 200
    assert api.client.get("/api/v1/auth/whoami", headers=carol).status_code == 401


def test_roles_count_at_every_request(world: World, api: Api) -> None:
    assert api.client.get("/api/v1/audit", headers=api.op).status_code == 200
    operators.set_roles(world.session(), name="alice", roles=[Role.DEVICE_MANAGER.value],
                        actor=world.op(ADMIN), now=world.clock.now())
    refused = api.client.get("/api/v1/audit", headers=api.op)
    assert refused.status_code == 403
    assert "needs audit:read, granted by auditor" in refused.json()["message"]


def test_administrators_cannot_raise_themselves_or_lock_everyone_out(world: World) -> None:
    admin = world.op(ADMIN)
    with pytest.raises(ForbiddenError, match="nobody changes their own roles"):
        operators.set_roles(world.session(), name=ADMIN, roles=["administrator", "approver"],
                            actor=admin, now=world.clock.now())
    with pytest.raises(ConflictError, match="last active administrator"):
        operators.set_active(world.session(), name=ADMIN, active=False, actor=admin,
                             now=world.clock.now())
    with pytest.raises(ConflictError, match="an administrator exists"):
        operators.bootstrap_administrator(world.session(), name="eve", password=None,
                                          now=world.clock.now())
    with pytest.raises(ForbiddenError, match="needs operator:manage"):
        operators.add_operator(world.session(), name="sock", roles=["approver"], password=None,
                               actor=world.alice, now=world.clock.now())
    with pytest.raises(ForbiddenError, match="needs operator:manage"):
        operators.issue_token(world.session(), operator="bob", name="stolen", ttl_s=600,
                              actor=world.alice, now=world.clock.now())
    # every grant is in the audit log, for the auditor
    operators.set_roles(world.session(), name="vera", roles=["approver"], actor=admin,
                        now=world.clock.now())
    last = audit.recent(world.session(), limit=1)[0]
    assert (last.actor, last.action, last.subject) == (ADMIN, "operator.roles", "vera")
    assert json.loads(last.detail) == {"before": ["viewer"], "after": ["approver"]}


def test_password_changes(world: World) -> None:
    _with_password(world)
    token = operators.login(world.session(), name="erin", password=PASSWORD,
                            now=world.clock.now()).token
    erin = operators.authenticate_token(world.session(), token=token, now=world.clock.now())
    with pytest.raises(AuthenticationError, match="current password"):
        operators.set_password(world.session(), name="erin", new_password="another long one",
                               current_password="wrong", actor=erin, now=world.clock.now())
    operators.set_password(world.session(), name="erin", new_password="another long one",
                           current_password=PASSWORD, actor=erin, now=world.clock.now())
    with pytest.raises(ForbiddenError):
        operators.set_password(world.session(), name="bob", new_password="twelve+ chars!",
                               actor=erin, now=world.clock.now())
    # an administrator's reset revokes the account's tokens
    operators.set_password(world.session(), name="erin", new_password="reset by admin!",
                           actor=world.op(ADMIN), now=world.clock.now())
    with pytest.raises(AuthenticationError):
        operators.authenticate_token(world.session(), token=token, now=world.clock.now())
    assert all(t.revoked_at is not None for t in operators.list_tokens(
        world.session(), actor=world.op(ADMIN), operator="erin"))
    with pytest.raises(Exception, match="at least 12"):
        operators.set_password(world.session(), name="erin", new_password="short",
                               actor=world.op(ADMIN), now=world.clock.now())


def test_a_stolen_token_cannot_outlive_itself(world: World) -> None:
    """A token that makes a token for its own account gets one that ends with it; a token of a
    service account cannot give that account a password."""
    short = operators.issue_token(world.session(), operator="bob", name="short", ttl_s=600,
                                  actor=world.op(ADMIN), now=world.clock.now())
    holder = operators.authenticate_token(world.session(), token=short.token,
                                          now=world.clock.now())
    made = operators.issue_token(world.session(), operator="bob", name="long",
                                 ttl_s=operators.MAX_TOKEN_TTL_S, actor=holder,
                                 now=world.clock.now())
    assert made.expires_at == short.expires_at
    with pytest.raises(ForbiddenError, match="signs in with tokens only"):
        operators.set_password(world.session(), name="bob", new_password=PASSWORD,
                               actor=holder, now=world.clock.now())


# --- the CLI -------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("SUTURE_TOKEN", raising=False)
    monkeypatch.delenv("SUTURE_TOKEN_FILE", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["scheduler", "init"]).exit_code == 0
    return runner


def _invoke(cli: CliRunner, *args: str, token: str | None = None,
            stdin: str | None = None) -> tuple[int, str]:
    result = cli.invoke(app, ["scheduler", *args], input=stdin,
                        env={"SUTURE_TOKEN": token or ""})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_the_cli_takes_no_name_on_trust(cli: CliRunner, tmp_path: Path) -> None:
    """`rollout approve N --as nobody-registered` used to count as a second approver."""
    tokens = cli_accounts(cli, app)
    code, out = _invoke(cli, "device", "add", "vent-1", "--board", "sim", "--vendor-id",
                        VENDOR_ID, "--class-id", CLASS_ID, "--criticality", "4",
                        "--group", "icu", token=tokens["alice"])
    assert code == 0, out
    code, out = _invoke(cli, "rollout", "approve", "1", "--as", "nobody-registered",
                        token=tokens["bob"])
    assert code == 2
    assert "No such option" in out
    code, out = _invoke(cli, "rollout", "approve", "1")
    assert code != 0
    assert "not signed in" in out
    code, out = _invoke(cli, "rollout", "approve", "1", token="sto_made-up")
    assert code != 0
    assert "not recognised" in out
    code, out = _invoke(cli, "rollout", "list", token=tokens[ADMIN])
    assert code != 0
    assert "root (administrator) may not do this: it needs rollout:read" in out
    code, out = _invoke(cli, "device", "add", "pump-2", "--board", "sim", *DEVICE_IDS,
                        token=tokens["bob"])
    assert code != 0
    assert "needs device:write" in out


def test_cli_login_token_file_and_accounts(cli: CliRunner, tmp_path: Path) -> None:
    tokens = cli_accounts(cli, app)
    code, out = _invoke(cli, "operator", "add", "erin", "--role", "approver,viewer",
                        "--password-stdin", token=tokens[ADMIN], stdin=PASSWORD + "\n")
    assert code == 0, out
    code, out = _invoke(cli, "login", "erin", "--password-stdin", stdin="wrong password\n")
    assert code != 0
    assert "not recognised" in out
    code, out = _invoke(cli, "login", "erin", "--password-stdin", "--ttl", "2h",
                        stdin=PASSWORD + "\n")
    assert code == 0, out
    token_file = tmp_path / "config" / "suture" / "scheduler-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.parent.stat().st_mode & 0o777 == 0o700
    code, out = _invoke(cli, "whoami")
    assert "erin: approver, viewer" in out
    os.chmod(token_file, 0o644)
    code, out = _invoke(cli, "whoami")
    assert code != 0
    assert "can be read by others" in out
    os.chmod(token_file, 0o600)
    code, out = _invoke(cli, "operator", "list", "--json", token=tokens[ADMIN])
    listed = {a["name"]: a for a in json.loads(out)}
    assert listed["erin"]["roles"] == ["approver", "viewer"]
    assert listed["erin"]["has_password"] is True
    code, out = _invoke(cli, "token", "list", "--json")
    [login_token] = json.loads(out)
    code, out = _invoke(cli, "token", "revoke", str(login_token["id"]), "--yes")
    assert code == 0, out
    code, out = _invoke(cli, "whoami")
    assert code != 0
    assert "revoked" in out
    code, out = _invoke(cli, "operator", "roles", "erin", "--role", "viewer",
                        token=tokens[ADMIN])
    assert "operator erin: viewer" in out
    code, out = _invoke(cli, "operator", "disable", "erin", "--yes", token=tokens[ADMIN])
    assert code == 0, out
    code, out = _invoke(cli, "login", "erin", "--password-stdin", stdin=PASSWORD + "\n")
    assert code != 0
    code, out = _invoke(cli, "operator", "roles", ADMIN, "--role", "approver",
                        token=tokens[ADMIN])
    assert "nobody changes their own roles" in out
