"""A loopback TCP proxy that injects network faults between the devices and the scheduler:
with probability ``p`` a connection is either dropped part-way through the response, or
slowed down (small chunks with delays). Threads, one pair per connection; stops by itself
with :meth:`FaultProxy.stop`."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from dataclasses import dataclass

from suture.ward.server import free_socket

CHUNK = 4096


@dataclass
class ProxyStats:
    connections: int = 0
    dropped: int = 0
    slowed: int = 0
    bytes_to_scheduler: int = 0
    bytes_to_devices: int = 0


class FaultProxy:
    def __init__(self, target_port: int, p: float, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError("fault probability must be in [0, 1]")
        self.target = ("127.0.0.1", target_port)
        self.p = p
        self.rng = random.Random(seed)  # noqa: S311 (fault injection, not cryptography)
        self.lock = threading.Lock()
        self.sock = free_socket()
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.stats = ProxyStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="fault-proxy")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()

    def _plan(self) -> tuple[str, int]:
        with self.lock:
            self.stats.connections += 1
            if self.rng.random() >= self.p:
                return "pass", 0
            if self.rng.random() < 0.6:
                self.stats.dropped += 1
                return "drop", self.rng.randint(0, 6000)
            self.stats.slowed += 1
            return "slow", self.rng.randint(5, 30)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            mode, arg = self._plan()
            threading.Thread(target=self._serve, args=(client, mode, arg), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str, arg: int) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        client.settimeout(30)
        upstream.settimeout(30)
        up = threading.Thread(target=self._pipe, args=(client, upstream, "pass", 0, True),
                              daemon=True)
        up.start()
        self._pipe(upstream, client, mode, arg, False)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()
        upstream.close()
        up.join(1)

    def _pipe(self, src: socket.socket, dst: socket.socket, mode: str, arg: int,
              upward: bool) -> None:
        sent = 0
        try:
            while not self._stop.is_set():
                size = 512 if mode == "slow" else CHUNK
                data = src.recv(size)
                if not data:
                    break
                if mode == "drop" and sent + len(data) > arg:
                    dst.sendall(data[: max(0, arg - sent)])
                    return
                if mode == "slow":
                    time.sleep(arg / 1000)
                dst.sendall(data)
                sent += len(data)
                with self.lock:
                    if upward:
                        self.stats.bytes_to_scheduler += len(data)
                    else:
                        self.stats.bytes_to_devices += len(data)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
