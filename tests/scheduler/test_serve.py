"""`suture scheduler serve`: a real uvicorn on loopback answers a device's signed poll."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from suture.keys import load_public_key
from suture.scheduler import credentials
from suture.scheduler.schedule_doc import K_DEVICE_ID, verify_schedule

SUTURE = Path(sys.executable).parent / "suture"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(tmp: Path, *args: str) -> str:
    out = subprocess.run([str(SUTURE), "scheduler", *args], cwd=tmp,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200", "SUTURE_OPERATOR": "alice"})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_serve_answers_a_signed_poll(tmp_path: Path) -> None:
    _cli(tmp_path, "init")
    out = _cli(tmp_path, "device", "add", "pump-1", "--board", "sim", "--vendor-id", "v",
               "--class-id", "c", "--secret-out", "pump-1.secret")
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
