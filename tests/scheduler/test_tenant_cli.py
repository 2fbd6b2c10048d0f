"""The vendor-run scheduler through the CLI: the vendor's administrator registers a hospital
(`tenant add`) and its first administrator (`operator add --tenant`), who signs in and makes
the hospital's accounts; each tenant's operators list and see their own devices and accounts
only. A hospital's own scheduler (mode `hospital`) refuses tenants."""

from __future__ import annotations

import json
from pathlib import Path

from sched_world import ADMIN, CLASS_ID, VENDOR_ID, cli_accounts
from suture.cli.main import app
from typer.testing import CliRunner

HOSPITAL_PASSWORD = "st mary's first admin"


def test_the_vendor_registers_a_hospital_and_its_operators(cli: CliRunner) -> None:
    tokens = cli_accounts(cli, app)

    def run(*args: str, as_: str = ADMIN, code: int = 0, stdin: str | None = None) -> str:
        result = cli.invoke(app, ["scheduler", *args], input=stdin,
                            env={"SUTURE_TOKEN": tokens.get(as_, "")})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return str(result.output)

    out = run("tenant", "add", "st-mary", code=1)
    assert "vendor-run" in out  # a hospital's own scheduler has no tenants
    with Path("scheduler.env").open("a") as fh:
        fh.write("SUTURE_SCHEDULER_MODE=vendor-run\n")
    added = json.loads(run("tenant", "add", "st-mary", "--display-name", "St Mary's",
                           "--json"))
    assert (added["name"], added["display_name"]) == ("st-mary", "St Mary's")
    account = json.loads(run("operator", "add", "mary-admin", "--role", "administrator",
                             "--tenant", "st-mary", "--password-stdin", "--json",
                             stdin=HOSPITAL_PASSWORD + "\n"))
    assert account["tenant"] == "st-mary"
    # The vendor's administrator does not act on the hospital's account once made.
    assert "no operator" in run("token", "create", "--for", "mary-admin", code=1)
    tokens["mary-admin"] = run("login", "mary-admin", "--password-stdin", "--print",
                               as_="nobody", stdin=HOSPITAL_PASSWORD + "\n").strip()
    run("operator", "add", "mary-planner", "--no-password", "--role", "device_manager",
        as_="mary-admin")
    tokens["mary-planner"] = json.loads(run("token", "create", "--for", "mary-planner",
                                            "--json", as_="mary-admin"))["token"]
    for device, who in (("mary-1", "mary-planner"), ("own-1", "alice")):
        run("device", "add", device, "--board", "esp32-s3", "--vendor-id", VENDOR_ID,
            "--class-id", CLASS_ID, "--group", "ward-3", as_=who)
    mine = json.loads(run("device", "list", "--json", as_="mary-planner"))
    assert [d["id"] for d in mine] == ["mary-1"]
    assert [d["id"] for d in json.loads(run("device", "list", "--json", as_="alice"))
            ] == ["own-1"]
    assert "no device 'mary-1'" in run("device", "show", "mary-1", as_="alice", code=1)
    accounts = json.loads(run("operator", "list", "--json", as_="mary-admin"))
    assert {a["name"] for a in accounts} == {"mary-admin", "mary-planner"}
    assert [t["name"] for t in json.loads(run("tenant", "list", "--json", as_="mary-admin"))
            ] == ["st-mary"]
