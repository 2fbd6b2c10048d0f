"""TLS that authenticates the scheduler (device/agent/transport/http.py), on the unix port's
mbedTLS: the agent accepts a server whose certificate chains to the CA pinned in NVM (net.ca)
and names the URL's host, and refuses a certificate of another CA, one for another host name,
an https URL without a pinned CA, and a pinned CA that is not a certificate. Then the real
scheduler, `suture scheduler serve --tls-cert/--tls-key`, answers the agent's signed poll over
HTTPS, and an agent pinning another CA never gets to send it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_env import DEVICE_DIR
from cryptography.hazmat.primitives.serialization import Encoding
from suture.scheduler.schedule_doc import K_DEVICE_ID
from tls_certs import make_ca, server_files, tls_server

GET = """
import sys, json
sys.path.insert(0, args[0])
from agent.transport.http import HttpTransport
from agent.errors import TransportError
for name, url, ca in json.loads(open(args[1]).read()):
    t = HttpTransport(timeout_s=10, ca=bytes.fromhex(ca) if ca else None)
    try:
        r = t.request("GET", url)
        out[name] = [r.status, r.read_all(64).decode()]
        r.close()
    except TransportError as e:
        out[name] = ["refused", str(e)]
"""


def _run_cases(run_mpy: Callable[..., Any], tmp_path: Path,
               cases: list[tuple[str, str, bytes | None]]) -> dict[str, list[Any]]:
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps([[n, u, c.hex() if c else ""] for n, u, c in cases]))
    src = "out = {}\nargs = __import__('sys').argv[1:]\n" + GET + \
        "\nprint('RESULT ' + json.dumps(out))\n"
    result: dict[str, list[Any]] = run_mpy(src, str(DEVICE_DIR), str(spec))
    return result


def test_the_pinned_ca_decides(run_mpy: Callable[..., Any], tmp_path: Path) -> None:
    ca, rogue = make_ca("hospital scheduler CA"), make_ca("somebody else")
    good = server_files(ca, "localhost", tmp_path / "good")
    misnamed = server_files(ca, "elsewhere.test", tmp_path / "misnamed")
    impostor = server_files(rogue, "localhost", tmp_path / "impostor")
    with tls_server(*good) as p_good, tls_server(*misnamed) as p_misnamed, \
            tls_server(*impostor) as p_impostor:
        got = _run_cases(run_mpy, tmp_path, [
            ("right CA", f"https://localhost:{p_good}/x", ca.der),
            ("another CA's server", f"https://localhost:{p_impostor}/x", ca.der),
            ("pinning the other CA", f"https://localhost:{p_good}/x", rogue.der),
            ("certificate for another host", f"https://localhost:{p_misnamed}/x", ca.der),
            ("no pinned CA", f"https://localhost:{p_good}/x", None),
            ("pinned CA not a certificate", f"https://localhost:{p_good}/x", b"0\x03\x02\x01\x00"),
        ])
    assert got["right CA"] == [200, "hello"]
    for case in ("another CA's server", "pinning the other CA", "certificate for another host",
                 "no pinned CA", "pinned CA not a certificate"):
        assert got[case][0] == "refused", (case, got[case])
    assert "net.ca" in got["no pinned CA"][1]
    assert len(ca.der) <= 512  # fits one NVM record


SUTURE = Path(sys.executable).parent / "suture"
PASSWORD = "a long local password"
POLL = """
import sys, json
sys.path.insert(0, args[0])
from agent.client import SchedulerClient
from agent.platform import Clock
from agent.transport.http import HttpTransport
from agent.errors import TransportError
spec = json.loads(open(args[1]).read())
for name, ca in (("pinned", spec["ca"]), ("other CA", spec["rogue"])):
    c = SchedulerClient(HttpTransport(ca=bytes.fromhex(ca)), spec["url"], "pump-1",
                        bytes.fromhex(spec["secret"]), Clock())
    try:
        status, doc, etag = c.get_schedule()
        out[name] = [status, doc.hex()]
    except TransportError as e:
        out[name] = ["refused", str(e)]
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """`suture scheduler ...` in-process, in a fresh folder (tmp_path), with its own token."""
    from suture.cli.main import app
    from typer.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("SUTURE_TOKEN", "SUTURE_TOKEN_FILE", "SUTURE_SCHEDULER_CONFIG",
                 "SUTURE_SCHEDULER_DEVICE_ROOT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        result = runner.invoke(app, ["scheduler", *args], input=stdin)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_scheduler_serves_https_and_the_agent_polls_it(run_mpy: Callable[..., Any],
                                                          cli: Callable[..., str],
                                                          tmp_path: Path) -> None:
    from suture.keys import load_public_key
    from suture.scheduler.schedule_doc import verify_schedule

    ca, rogue = make_ca("hospital scheduler CA"), make_ca("somebody else")
    chain, key = server_files(ca, "localhost", tmp_path / "tls")
    port = _free_port()
    url = f"https://localhost:{port}"
    cli("init", "--admin", "root", "--password-stdin", "--public-url", url,
        stdin=PASSWORD + "\n")
    cli("login", "root", "--password-stdin", stdin=PASSWORD + "\n")
    cli("operator", "add", "dm", "--role", "device_manager", "--password-stdin",
        stdin=PASSWORD + "\n")
    cli("login", "dm", "--password-stdin", stdin=PASSWORD + "\n")
    # an https public URL without TLS options, or half of them: refused with what to do
    assert "--tls-key" in cli("serve", "--tls-cert", str(chain), ok=False)
    cli("device", "add", "pump-1", "--board", "sim",
         "--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
         "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45", "--secret-out", "pump-1.secret")
    secret = (tmp_path / "pump-1.secret").read_text().strip()
    proc = subprocess.Popen([str(SUTURE), "scheduler", "serve", "--port", str(port),
                             "--tls-cert", str(chain), "--tls-key", str(key)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")})
    try:
        trust = ssl.create_default_context(cadata=ca.cert.public_bytes(Encoding.PEM).decode())
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        spec = tmp_path / "poll.json"
        spec.write_text(json.dumps({"url": url, "secret": secret, "ca": ca.der.hex(),
                                    "rogue": rogue.der.hex()}))
        src = "out = {}\nargs = __import__('sys').argv[1:]\n" + POLL + \
            "\nprint('RESULT ' + json.dumps(out))\n"
        got = run_mpy(src, str(DEVICE_DIR), str(spec))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert got["pinned"][0] == 200, got
    doc = verify_schedule(bytes.fromhex(got["pinned"][1]),
                          load_public_key(tmp_path / "scheduler-key.pub.pem"))
    assert doc[K_DEVICE_ID] == "pump-1"
    assert got["other CA"][0] == "refused"


def test_serve_refuses_tls_with_an_http_public_url(cli: Callable[..., str],
                                                  tmp_path: Path) -> None:
    ca = make_ca("hospital scheduler CA")
    chain, key = server_files(ca, "localhost", tmp_path / "tls")
    cli("init", "--admin", "root", "--password-stdin", stdin=PASSWORD + "\n")
    out = cli("serve", "--tls-cert", str(chain), "--tls-key", str(key), ok=False)
    assert "https://" in out


def test_board_provision_pins_the_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`suture board provision --tls-ca`: PEM or DER read as the DER the board pins; an https
    scheduler URL without it, or a file that is no certificate, is refused before the board is
    touched."""
    from suture import keys
    from suture.cli.board_cmd import _tls_ca
    from suture.cli.main import app
    from suture.sim.testing import example_app
    from typer.testing import CliRunner

    ca = make_ca("hospital scheduler CA")
    pem = tmp_path / "ca.pem"
    pem.write_bytes(ca.cert.public_bytes(Encoding.PEM))
    der = tmp_path / "ca.der"
    der.write_bytes(ca.der)
    assert _tls_ca(pem, "https://sched.test") == _tls_ca(der, None) == ca.der
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bundle").write_bytes(example_app(1))
    keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "vendor.pem")
    base = ["board", "provision", "sim", "--app", "app.bundle", "--vendor-key",
            "vendor.pub.pem", "--device", str(tmp_path / "dev"), "--scheduler-url",
            "https://sched.test:8640", "--operator-token", "sto_x"]
    runner = CliRunner()
    missing = runner.invoke(app, base)
    assert missing.exit_code != 0
    assert "--tls-ca" in missing.output
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot one\n")
    junk = runner.invoke(app, [*base, "--tls-ca", "junk.pem"])
    assert junk.exit_code != 0
    assert "not an X.509 certificate" in junk.output
    assert not (tmp_path / "dev").exists()
