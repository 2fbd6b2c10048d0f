"""Fixtures for the agent tests on the MicroPython unix port: the compiled loader with the
agent's sources importable, a fake scheduler over loopback HTTP, and provisioned devices."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_env import AGENT_RUN, DEVICE_DIR, DEVICE_ID, FakeScheduler
from suture import keys
from suture.keys import PrivateKey
from suture.sim.board import small_geometry
from suture.sim.testing import Provisioned, provision, run_script


@pytest.fixture(scope="session")
def vendor_key() -> PrivateKey:
    return keys.generate_private_key("ES256")


@pytest.fixture(scope="session")
def scheduler_key() -> PrivateKey:
    return keys.generate_private_key("ES256")


def _mpy_runner(loader_lib: Path, tmp_path: Path) -> Callable[..., Any]:
    def run(source: str, *args: str, timeout: float = 120) -> Any:
        return run_script(source, *args, micropypath=[loader_lib, DEVICE_DIR], cwd=tmp_path,
                          heapsize="256K", timeout=timeout)

    return run


@pytest.fixture
def run_mpy(loader_lib: Path, tmp_path: Path) -> Callable[..., Any]:
    """Run MicroPython source with the loader and the agent importable; the script prints one
    ``RESULT <json>`` line, which is returned."""
    return _mpy_runner(loader_lib, tmp_path)


@pytest.fixture(scope="module")
def run_mpy_once(loader_lib: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[..., Any]:
    """``run_mpy`` for tests driven by hypothesis (a fixture that is not reset per example)."""
    return _mpy_runner(loader_lib, tmp_path_factory.mktemp("mpy-run"))


@pytest.fixture
def fake_scheduler() -> Iterator[FakeScheduler]:
    state = FakeScheduler()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, dict(self.headers)))
            if self.path.endswith("/schedule"):
                self._send(200, state.schedule, {"ETag": '"s1"'})
            elif self.path.endswith("/envelope"):
                self._send(200, state.envelope)
            elif self.path.endswith("/payload"):
                self._payload()
            else:
                self._send(404, b"")

        def _payload(self) -> None:
            data = state.payload
            start = 0
            rng = self.headers.get("Range")
            if rng:
                start = int(rng.split("=")[1].rstrip("-"))
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.stall_after is not None and not state.stalled.is_set():
                self.wfile.write(body[: state.stall_after])
                self.wfile.flush()
                state.stalled.set()
                if not state.drop:
                    state.release.wait(60)
                self.close_connection = True
                return
            self.wfile.write(body)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            state.requests.append(("POST", self.path, dict(self.headers)))
            if self.path.endswith("/suit-reports"):
                state.suit_reports.append(body)
                self._send(200, b'{"accepted": true, "id": 1, "duplicate": false}',
                           {"Content-Type": "application/json"})
                return
            state.raw_reports.append(body)
            state.reports.append(json.loads(body))
            answer = state.report_answer
            if answer is None:
                answer = json.dumps({"accepted": True, "schedule_number": 1,
                                     "schedule_changed": False}).encode()
            self._send(200, answer, {"Content-Type": "application/json"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def agent_device(tmp_path: Path, loader_lib: Path, vendor_key: PrivateKey,
                 scheduler_key: PrivateKey, fake_scheduler: FakeScheduler) -> Provisioned:
    """A device with the example application #1 confirmed and the agent's identity in NVM."""
    geometry = small_geometry(internal_size=128 * 1024, slot_size=128 * 1024, nvm_sectors=8)
    dev = provision(tmp_path / "dev", geometry, vendor_key, lib=loader_lib, heapsize=256 * 1024)
    records = {
        "id.device": DEVICE_ID.encode(),
        "id.credential": bytes(range(32)),
        "id.scheduler": fake_scheduler.url.encode(),
        "trust.scheduler": keys.public_key_bytes(scheduler_key.public_key()),
    }
    result = dev.device.run(*[["nvm-put", k, v.hex(), "1"] for k, v in records.items()])
    assert result.ok, result.stdout + result.stderr
    (dev.board.workdir / "agent_run.py").write_text(AGENT_RUN)
    return dev
