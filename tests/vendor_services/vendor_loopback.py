"""The vendor's services on loopback for tests that talk to them over real HTTP: a free port and
``create_app(settings)`` under uvicorn on it, as ``suture vendor serve`` runs them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from suture.vendor_services.app import create_app
from suture.vendor_services.settings import VendorSettings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(settings: VendorSettings, port: int) -> Iterator[None]:
    """``create_app(settings)`` under uvicorn on 127.0.0.1:``port`` until the block ends."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the vendor's services did not start on loopback"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
