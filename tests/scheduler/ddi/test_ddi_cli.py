"""`suture scheduler ddi`: the tokens issued on the command line let a DDI client poll
(docs/ddi.md, "Connect a device")."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sched_world import CLASS_ID, VENDOR_ID, cli_accounts
from suture.cli.main import app
from suture.scheduler.api.app import create_app
from suture.scheduler.config import load_settings
from typer.testing import CliRunner


def test_target_and_gateway_tokens_from_the_command_line(cli: CliRunner, tmp_path: Path
                                                         ) -> None:
    tokens = cli_accounts(cli, app)

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens[as_]})
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return str(result.output)

    run("device", "add", "gw-1", "--board", "sim", "--vendor-id", VENDOR_ID, "--class-id",
        CLASS_ID, "--group", "ward-3")
    issued = json.loads(run("ddi", "target-token", "issue", "gw-1", "--tenant", "WARD7",
                            "--json"))
    assert (issued["device_id"], issued["tenant"], issued["kind"]) == ("gw-1", "WARD7", "linux")
    out = run("ddi", "gateway-token", "issue", "WARD7", "--token-out", "gateway.token")
    assert "token written to gateway.token" in out
    assert (tmp_path / "gateway.token").stat().st_mode & 0o777 == 0o600
    gateway = (tmp_path / "gateway.token").read_text().strip()
    assert "needs device:credential" in run("ddi", "target-token", "issue", "gw-1", code=1,
                                            as_="vera")
    assert "tenant" in run("ddi", "gateway-token", "issue", "no such tenant!", code=2)
    assert "no device" in run("ddi", "target-token", "issue", "nobody", code=1)

    with TestClient(create_app(load_settings(tmp_path / "scheduler.env"))) as client:
        for auth in (f"TargetToken {issued['token']}", f"GatewayToken {gateway}"):
            r = client.get("/WARD7/controller/v1/gw-1", headers={"Authorization": auth})
            assert r.status_code == 200, r.text
            assert r.json()["_links"]["configData"]["href"].endswith(
                "/WARD7/controller/v1/gw-1/configData")
        assert client.get("/DEFAULT/controller/v1/gw-1", headers={
            "Authorization": f"TargetToken {issued['token']}"}).status_code == 401
