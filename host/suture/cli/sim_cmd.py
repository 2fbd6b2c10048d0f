"""`suture sim`: the ward simulator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live

from suture.cli.errors import SutureCommand

if TYPE_CHECKING:  # the ward (and the scheduler it runs) is imported by the command alone
    from suture.ward.run import WardConfig, WardResult, WardSnapshot

HELP = """Simulate a ward: a real scheduler (SQLite, in a temporary folder) and N simulated
devices (MicroPython unix-port processes, each with its own flash images, keys and
credential) running the update agent. Two releases of the example application are built and
signed; the second is rolled out in waves (1 device, then 25%, then the rest) to completion.
The live view shows waves, per-device state, downloads and errors; the summary reads each
device's version back from its flash images.

Faults: --power-cuts P cuts the power of a device process with probability P (at a random
flash operation); --network-faults P drops or slows connections through a loopback proxy;
--bad-release ships a release whose application fails its health check (the error threshold
pauses the rollout, the device reverts); --busy P keeps devices in clinical use for a while
(they defer the install); --clock-skew P starts devices with a clock hours to weeks wrong
(the scheduler's signed resync sets it).

--target qemu-mps2-an385 runs each device as a QEMU Cortex-M process with the real firmware
(stage0, MicroPython with the frozen loader, built with `make firmware` into build/firmware/)
behind one device-link gateway (TCP, one connection per device); the scheduler's clock runs at
the wall clock's pace there (polls every 10 s), and a power cut is either stage0's cut at a
boot or the QEMU process killed mid-download. --busy and --clock-skew are for simulated
devices only."""


def register(app: typer.Typer) -> None:
    """Attach the `sim` command to the root app."""
    summary = "Watch a simulated ward update itself (the main demo)."
    app.command("sim", help=HELP, short_help=summary, cls=SutureCommand)(sim)


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter("a probability in [0, 1]")
    return value


def sim(
    devices: int = typer.Option(12, "--devices", "-n", min=1, max=1000,
                                help="Number of simulated devices."),
    power_cuts: float = typer.Option(0.0, "--power-cuts", callback=_probability,
                                     help="Probability of a power cut per device boot."),
    network_faults: float = typer.Option(0.0, "--network-faults", callback=_probability,
                                         help="Probability that a connection is dropped or "
                                              "slowed."),
    bad_release: bool = typer.Option(False, "--bad-release",
                                     help="Roll out a release that fails its health check."),
    busy: float = typer.Option(0.0, "--busy", callback=_probability,
                               help="Probability that a device is in clinical use at first."),
    clock_skew: float = typer.Option(0.0, "--clock-skew", callback=_probability,
                                     help="Probability that a device's clock starts wrong."),
    seed: int = typer.Option(1, "--seed", help="Seed of the fault injection."),
    target: str = typer.Option("sim", "--target",
                               help="sim (MicroPython unix-port processes) or a QEMU board "
                                    "running the real firmware: qemu-mps2-an385."),
    timeout: float = typer.Option(300.0, "--timeout", min=10.0,
                                  help="Stop after this many seconds whatever the state."),
    clock_scale: float = typer.Option(20.0, "--clock-scale", min=1.0, max=200.0,
                                      help="Simulated seconds per real second."),
    payload_kib: int = typer.Option(0, "--payload-kib", min=0, max=1024,
                                    help="Extra data in each release, in KiB."),
    workdir: Annotated[Path | None, typer.Option(
        "--workdir", file_okay=False,
        help="Keep the ward (databases, flash images) here.")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="SUTURE_SIM_DATABASE_URL",
        help="The scheduler's database: an empty PostgreSQL database "
             "(postgresql+psycopg://user@host/db), migrated and filled by the ward. Default: "
             "SQLite in the ward's folder.")] = None,
    as_json: bool = typer.Option(False, "--json",
                                 help="Print one JSON object instead of the live view."),
) -> None:
    from suture.ward.run import WardConfig

    config = WardConfig(devices=devices, power_cuts=power_cuts, network_faults=network_faults,
                        bad_release=bad_release, busy=busy, clock_skew=clock_skew, seed=seed,
                        timeout_s=timeout,
                        clock_scale=clock_scale, payload_filler=payload_kib * 1024,
                        workdir=workdir, keep=workdir is not None, target=target,
                        database_url=database_url)
    if power_cuts or network_faults:
        config.error_threshold = 0.5
        config.error_min_sample = 3
    console = Console(stderr=as_json)
    result = _run(config, console, live=not as_json and console.is_terminal)
    data = result.to_json()
    if as_json:
        typer.echo(json.dumps(data))
    else:
        from suture.ward.view import summary

        console.print(summary(result), soft_wrap=True)  # the totals line stays whole
    if data["bricked"]:
        raise typer.Exit(1)


def progress_line(snap: WardSnapshot) -> str:
    """What a log (no terminal) shows of a snapshot: the phase, and in the rollout its state
    and wave; empty once the ward is done (the summary follows)."""
    if snap.phase == "done":
        return ""
    if snap.phase != "rollout" or not snap.rollout_state:
        return snap.phase
    wave = f", wave {snap.current_wave + 1} of {snap.wave_count}" if snap.wave_count else ""
    reason = f" ({snap.rollout_reason})" if snap.rollout_reason and \
        snap.rollout_state != "running" else ""
    return f"rollout {snap.rollout_state}{wave}{reason}"


def _run(config: WardConfig, console: Console, *, live: bool) -> WardResult:
    from suture.ward.run import run_ward
    from suture.ward.view import render

    if not live:
        last = [""]
        started = time.monotonic()
        shown_ui = [False]

        def note(snap: WardSnapshot) -> None:
            if snap.ui and not shown_ui[0] and not console.stderr:
                console.print(f"{time.monotonic() - started:6.1f} s  {snap.ui}", soft_wrap=True,
                              highlight=False, markup=False)
                shown_ui[0] = True
            line = progress_line(snap)
            if line and line != last[0] and not console.stderr:
                console.print(f"{time.monotonic() - started:6.1f} s  {line}", soft_wrap=True,
                              highlight=False, markup=False)
            last[0] = line or last[0]

        return run_ward(config, note)
    with Live(console=console, refresh_per_second=4, transient=False) as screen:
        return run_ward(config, lambda snap: screen.update(render(snap)))
