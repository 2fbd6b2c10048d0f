"""`suture scheduler serve`: a real uvicorn on loopback answers a device's signed poll, reports
its database's health, and takes changed trust anchors from the settings file while it runs
(other changed settings: named as waiting for a restart)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from suture.keys import generate_private_key, key_id, load_public_key, write_key_pair
from suture.scheduler import credentials
from suture.scheduler.schedule_doc import K_DEVICE_ID, verify_schedule

DEVICE_IDS = ("--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
              "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45")

SUTURE = Path(sys.executable).parent / "suture"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PASSWORD = "a long local password"


def _cli(tmp: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([str(SUTURE), "scheduler", *args], cwd=tmp, input=stdin,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200",
                              "XDG_CONFIG_HOME": str(tmp / "config")})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_serve_answers_a_signed_poll(tmp_path: Path) -> None:
    first, second = generate_private_key("ES256"), generate_private_key("ES256")
    write_key_pair(first, tmp_path / "vendor-a.pem")
    write_key_pair(second, tmp_path / "vendor-b.pem")
    _cli(tmp_path, "init", "--trust-anchor", "vendor-a.pub.pem", "--admin", "root",
         "--password-stdin", stdin=PASSWORD + "\n")
    _cli(tmp_path, "login", "root", "--password-stdin", stdin=PASSWORD + "\n")
    token_file = tmp_path / "config" / "suture" / "scheduler-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    _cli(tmp_path, "operator", "add", "alice", "--role", "device_manager,viewer",
         "--password-stdin", stdin=PASSWORD + "\n")
    _cli(tmp_path, "login", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert "alice: device_manager, viewer" in _cli(tmp_path, "whoami")
    out = _cli(tmp_path, "device", "add", "pump-1", "--board", "sim", *DEVICE_IDS,
               "--secret-out", "pump-1.secret")
    assert "secret written" in out
    secret = bytes.fromhex((tmp_path / "pump-1.secret").read_text().strip())
    port = _free_port()
    proc = subprocess.Popen([str(SUTURE), "scheduler", "serve", "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "suture scheduler"
        path = "/api/v1/devices/pump-1/schedule"
        headers = credentials.sign_request(secret, method="GET", path=path, device_id="pump-1",
                                           time=int(time.time()), counter=1)
        r = httpx.get(base + path, headers=headers)
        assert r.status_code == 200
        assert "date" in r.headers  # devices set their clock from it
        doc = verify_schedule(r.content, load_public_key(tmp_path / "scheduler-key.pub.pem"))
        assert doc[K_DEVICE_ID] == "pump-1"
        assert httpx.get(base + path, headers=headers).status_code == 401  # replayed

        health = httpx.get(base + "/healthz").json()
        assert health["status"] == "ok"
        assert health["database"] == {"ok": True, "dialect": "sqlite", "schema": "0014",
                                      "expected_schema": "0014"}
        auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}

        def anchors() -> list[str | None]:
            info = httpx.get(base + "/api/v1/scheduler", headers=auth).json()
            return [a["key_id"] for a in info["trust_anchors"]]

        assert anchors() == [key_id(first.public_key()).hex()]
        # A new vendor key while the service runs: taken at once (no restart), and audited.
        _cli(tmp_path, "init", "--trust-anchor", "vendor-b.pub.pem")
        assert anchors() == [key_id(second.public_key()).hex()]
        # A setting the service cannot take while it runs: named, until a restart.
        _cli(tmp_path, "init", "--public-url", "http://10.0.0.1:8640")
        health = httpx.get(base + "/healthz").json()
        assert (health["status"], health["restart_required"]) == ("degraded", ["public_url"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
