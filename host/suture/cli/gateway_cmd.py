"""`suture gateway`: relay devices without IP (serial ports, QEMU boards over TCP) to the
scheduler."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict
from types import FrameType
from typing import Annotated

import typer

from suture.cli.errors import SutureCommand
from suture.gateway import GatewayError, LinkGateway, RequestRecord, SerialGateway

HELP = (
    "Relay devices without IP to the scheduler over the device link (docs/formats/device-"
    "link.md): COBS frames with request ids and CRC-32 over a serial line. Each request a "
    "device frames is made with HTTP(S) to the one scheduler given with --scheduler (any "
    "other URL is refused) and streamed back; lost or damaged frames are sent again, and a "
    "download cut by a restart resumes where the device's staging slot stopped.\n\n"
    "The gateway is not trusted by the devices: the scheduler's request MAC, the schedule's "
    "signature and the SUIT checks run end to end between each device and the scheduler.\n\n"
    "--port takes a serial device (/dev/ttyACM0) or a glob (/dev/ttyACM*, repeatable): every "
    "matching port is served, and a port that appears later or comes back (a board plugged "
    "in, a reset over USB) is served again. --tcp PORT also listens on 127.0.0.1:PORT for "
    "QEMU boards (-serial tcp:127.0.0.1:PORT). One log line per device request (--json: one "
    "JSON object per line). Runs until interrupted (Ctrl-C, SIGTERM) or for --duration "
    "seconds."
)


def register(app: typer.Typer) -> None:
    """Attach the `gateway` command to the root app."""
    summary = "Relay devices without IP (serial, QEMU) to the scheduler."
    app.command("gateway", help=HELP, short_help=summary, cls=SutureCommand)(gateway)


def gateway(
    scheduler: str = typer.Option(..., "--scheduler", help="The scheduler's base URL."),
    port: Annotated[list[str] | None, typer.Option(
        "--port", "-p", help="Serial port or glob to serve (repeatable).")] = None,
    tcp: int | None = typer.Option(None, "--tcp", min=0, max=65535,
                                   help="Also listen on 127.0.0.1:PORT (QEMU boards)."),
    baud: int = typer.Option(115200, "--baud", min=300, help="Serial baud rate."),
    duration: float | None = typer.Option(None, "--duration", min=0.1,
                                          help="Stop after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per log line."),
) -> None:
    port = port or []
    if not port and tcp is None:
        raise typer.BadParameter("give at least one --port or --tcp", param_hint="--port")
    lock = threading.Lock()
    # The log starts with the "start" line: what a port's thread reports before it (a port
    # found while the gateways start) is printed right after it.
    early: list[tuple[str, str, dict[str, object]]] = []
    started = False

    def write(lines: list[tuple[str, str, dict[str, object]]]) -> None:
        for name, line, values in lines:
            print(json.dumps({"event": name, **values}) if as_json else line, flush=True)

    def emit(event: str, text: str, **fields: object) -> None:
        nonlocal started
        with lock:
            if not started and event != "start":
                early.append((event, text, fields))
                return
            lines = [(event, text, fields)]
            if event == "start":
                started = True
                lines += early
                early.clear()
            write(lines)

    def on_request(rec: RequestRecord) -> None:
        emit("request", rec.text(), **rec.json())

    def on_port(path: str, what: str) -> None:
        emit("port", f"{path}: {what}", port=path, state=what)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    gateways: list[SerialGateway | LinkGateway] = []
    tcp_port: int | None = None
    try:
        if port:
            sg = SerialGateway(scheduler, port, baudrate=baud, log=on_request)
            sg.on_port = on_port
            gateways.append(sg.start())
        if tcp is not None:
            lg = LinkGateway(scheduler, tcp, log=on_request).start()
            tcp_port = lg.port
            gateways.append(lg)
    except GatewayError:
        for g in gateways:
            g.stop()
        with lock:
            write(early)  # what the ports said before the gateway gave up
        raise
    where = [*port, *([f"tcp 127.0.0.1:{tcp_port}"] if tcp_port is not None else [])]
    emit("start", f"gateway for {scheduler} on {', '.join(where)}", scheduler=scheduler,
         ports=port, tcp=tcp_port)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for g in gateways:
            g.stop()
    totals: dict[str, object] = {}
    for g in gateways:
        for k, v in asdict(g.stats).items():
            if isinstance(v, int):
                totals[k] = int(str(totals.get(k, 0))) + v
    emit("stop", "gateway stopped: " + ", ".join(f"{k} {v}" for k, v in totals.items()),
         **totals)
    sys.stdout.flush()
