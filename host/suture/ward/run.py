"""One ward run: scheduler, releases, devices, a staged rollout to its end, then the truth read
back from every device's flash images."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from suture import keys
from suture.scheduler.models import Device, RolloutDevice
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.device import build_loader
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.errors import WardConfigError, WardError
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.proxy import FaultProxy
from suture.ward.release import Release, build_release
from suture.ward.server import SchedulerSettings, WardScheduler

GROUP = "ward"
FINAL_ROLLOUT_STATES = ("completed", "paused", "aborted")
IN_FLIGHT = ("downloading", "installing", "trial")


@dataclass
class WardConfig:
    """Everything a ward run takes; defaults are `suture sim`'s."""

    devices: int = 12
    waves: tuple[str, ...] = ("1", "25%", "100%")
    seed: int = 1
    power_cuts: float = 0.0
    network_faults: float = 0.0
    bad_release: bool = False
    busy: float = 0.0
    busy_s: float = 30.0
    clock_skew: float = 0.0  # probability that a device's clock is wrong (1 hour to 30 days)
    payload_filler: int = 0
    clock_scale: float = 20.0
    poll_interval_s: int = 10
    error_threshold: float = 0.2
    error_min_sample: int = 1
    timeout_s: float = 300.0
    settle_s: float = 20.0
    workdir: Path | None = None
    keep: bool = False
    count_traffic: bool = False  # route through the proxy (without faults) to count bytes
    heap_sample: bool = False  # measure each device's live heap at every flash operation
    # "sim" (MicroPython unix-port processes) or a QEMU board running the real firmware
    # ("qemu-mps2-an385"): each device a QEMU process behind one LinkGateway (TCP)
    target: str = "sim"
    #: The scheduler's database: an empty PostgreSQL database (or SQLite URL) the ward
    #: migrates and fills; None: a SQLite file in the ward's folder.
    database_url: str | None = None

    @property
    def on_qemu(self) -> bool:
        return self.target != "sim"

    def check(self) -> None:
        problems = []
        if not 1 <= self.devices <= 1000:
            problems.append("--devices must be 1..1000")
        for name in ("power_cuts", "network_faults", "busy", "clock_skew"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"--{name.replace('_', '-')} must be a probability in [0, 1]")
        if self.clock_scale <= 0:
            problems.append("the clock scale must be positive")
        if self.timeout_s <= 0:
            problems.append("--timeout must be positive")
        if self.on_qemu:
            from suture.firmware.qemu_build import FIRMWARE_BOARDS

            if self.target not in FIRMWARE_BOARDS:
                problems.append(f"--target must be sim or one of {', '.join(FIRMWARE_BOARDS)}")
            if self.devices > 32:
                problems.append("--devices must be 1..32 on QEMU (one QEMU process each)")
            for name in ("busy", "clock_skew", "heap_sample"):
                if getattr(self, name):
                    problems.append(f"--{name.replace('_', '-')} is for simulated devices only")
        if problems:
            raise WardConfigError("; ".join(problems))


@dataclass
class WardSnapshot:
    """What the live view draws."""

    phase: str = "starting"
    rollout_state: str = ""
    rollout_reason: str = ""
    current_wave: int = 0
    wave_count: int = 0
    wave_sizes: list[int] = field(default_factory=list)
    entries: dict[str, tuple[int, str]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    devices: list[Any] = field(default_factory=list)
    proxy: Any = None
    #: Where the operator UI shows the ward, and a sign-in that watches it.
    ui: str = ""


@dataclass
class WardResult:
    config: WardConfig
    rollout_state: str
    rollout_reason: str
    duration_s: float
    target_version: int
    base_version: int
    per_device: list[dict[str, Any]]
    proxy_stats: dict[str, int] = field(default_factory=dict)
    rollout_s: float = 0.0  # from the rollout's start until the last device confirmed

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.per_device if d["outcome"] == outcome)

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": len(self.per_device),
            "updated": self.count("updated"),
            "reverted": self.count("reverted"),
            "failed": self.count("failed"),
            "not_updated": self.count("not updated"),
            "bricked": sum(1 for d in self.per_device if d["bricked"]),
            "rollout_state": self.rollout_state,
            "rollout_reason": self.rollout_reason,
            "duration_s": round(self.duration_s, 2),
            "rollout_s": round(self.rollout_s, 2),
            "target": self.config.target,
            "base_version": self.base_version,
            "target_version": self.target_version,
            "faults": {"power_cuts": self.config.power_cuts,
                       "network_faults": self.config.network_faults,
                       "bad_release": self.config.bad_release, "busy": self.config.busy},
            "proxy": self.proxy_stats,
            "per_device": self.per_device,
        }


Tick = Callable[[WardSnapshot], None]


def run_ward(config: WardConfig, on_tick: Tick | None = None) -> WardResult:
    """Run a whole ward; ``on_tick`` is called about four times a second with a snapshot."""
    config.check()
    own_tmp = config.workdir is None
    root = Path(tempfile.mkdtemp(prefix="suture-ward-")) if own_tmp else config.workdir
    assert root is not None
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _run(config, root, on_tick or (lambda _s: None))
    finally:
        if own_tmp and not config.keep:
            shutil.rmtree(root, ignore_errors=True)


def _run(cfg: WardConfig, root: Path, tick: Tick) -> WardResult:
    started = time.monotonic()
    rng = random.Random(cfg.seed)  # noqa: S311 (reproducible simulation, not cryptography)
    snap = WardSnapshot()
    firmware = None
    if cfg.on_qemu:
        snap.phase = "building the firmware"
        tick(snap)
        firmware = _qemu_firmware(cfg.target)
        vendor_key = firmware.vendor_key  # the key the firmware trusts
        # a QEMU device's clock runs at the wall clock's pace (its time comes from resyncs)
        clock = ScaledClock(1.0)
        poll_s = max(10, cfg.poll_interval_s)
        options = SchedulerSettings(poll_interval_s=poll_s, poll_jitter_s=2)
    else:
        vendor_key = keys.generate_private_key("ES256")
        clock = ScaledClock(cfg.clock_scale)
        options = SchedulerSettings(poll_interval_s=cfg.poll_interval_s,
                                    poll_jitter_s=max(1, cfg.poll_interval_s // 5))
    sched = WardScheduler(root / "scheduler", clock, vendor_key, options,
                          database_url=cfg.database_url)
    proxy = None
    if cfg.network_faults > 0 or cfg.count_traffic:
        proxy = FaultProxy(sched.port, cfg.network_faults, seed=cfg.seed)
        sched.public_url = proxy.url
        snap.proxy = proxy.stats
    snap.phase = "building releases"
    tick(snap)
    base = build_release(1, vendor_key, filler=cfg.payload_filler)
    target = build_release(2, vendor_key, fault="unhealthy" if cfg.bad_release else "",
                           filler=cfg.payload_filler)
    signed = {hashlib.sha256(r.payload).hexdigest() for r in (base, target)}
    gateway = None
    fleet: list[Any]
    if firmware is not None:
        from suture.boards import load_board
        from suture.gateway import LinkGateway
        from suture.ward.qemu_fleet import QemuWardDevice

        gateway_log = (root / "gateway.log").open("a", encoding="utf-8")

        def log_request(rec: Any, t0: float = started) -> None:
            gateway_log.write(f"{time.monotonic() - t0:9.3f} {rec.text()}\n")
            gateway_log.flush()

        gateway = LinkGateway(sched.public_url, log=log_request)
        board = load_board(cfg.target)
        fleet = [QemuWardDevice(f"bed-{i + 1:03d}", root / "devices" / f"bed-{i + 1:03d}",
                                board, firmware, gateway.port,
                                random.Random(rng.random()))  # noqa: S311
                 for i in range(cfg.devices)]
    else:
        lib = build_loader(root / "mpy")
        geometry = ward_geometry(len(target.payload))
        fleet = [SimulatedDevice(f"bed-{i + 1:03d}", root / "devices" / f"bed-{i + 1:03d}",
                                 geometry, vendor_key, lib,
                                 random.Random(rng.random()))  # noqa: S311
                 for i in range(cfg.devices)]
    snap.devices = [d.view for d in fleet]
    sched.start()
    observer, password = sched.ui_account()
    snap.ui = f"operator UI: {sched.url}/  (sign in as {observer}, password {password})"
    if proxy is not None:
        proxy.start()
    if gateway is not None:
        gateway.start()
    try:
        release_id = _import(sched, target, vendor_key)
        snap.phase = "provisioning devices"
        tick(snap)
        _provision(sched, fleet, base, cfg.target, workers=2 if cfg.on_qemu else 4)
        rollout_id = _rollout(sched, cfg, release_id, clock.now())
        faults = Faults(power_cuts=cfg.power_cuts, busy=cfg.busy, busy_s=cfg.busy_s,
                        heap_sample=cfg.heap_sample)
        busy_until = {}
        for d in fleet:
            if not cfg.on_qemu and rng.random() < cfg.busy:
                d.set_busy(True)
                busy_until[d.device_id] = clock.now() + cfg.busy_s * (0.5 + rng.random())
        snap.phase = "rollout"
        rollout_started = time.monotonic()
        for d in fleet:
            d.target = target.version
            spec = clock.device_spec()
            if cfg.clock_skew and rng.random() < cfg.clock_skew:
                d.view.clock_skew_s = rng.choice((-1, 1)) * rng.randint(3600, 30 * 86400)
                spec += f",{d.view.clock_skew_s}"
            d.start(spec, faults)
        _watch(sched, cfg, rollout_id, fleet, busy_until, clock, snap, tick, started)
        snap.phase = "stopping devices"
        tick(snap)
        for d in fleet:
            d.request_stop()
        for d in fleet:
            d.join(30)
        snap.phase = "reading flash images"
        tick(snap)
        # QEMU devices answer through their REPL, and the scheduler must still be there for
        # an agent that reports while it is asked
        per_device = _truth(sched, fleet, snap, target.version, base.version, signed)
    finally:
        for d in fleet:
            d.request_stop()
        for d in fleet:
            d.join(30)
        if firmware is not None:
            for d in fleet:
                d.dev.power_off()
        if gateway is not None:
            gateway.stop()
        if proxy is not None:
            proxy.stop()
        sched.stop()
    duration = time.monotonic() - started
    stats: dict[str, int] = {}
    if proxy is not None:
        stats = {"connections": proxy.stats.connections, "dropped": proxy.stats.dropped,
                 "slowed": proxy.stats.slowed,
                 "bytes_to_scheduler": proxy.stats.bytes_to_scheduler,
                 "bytes_to_devices": proxy.stats.bytes_to_devices}
    if gateway is not None:
        stats.update({"gateway_requests": gateway.stats.requests,
                      "gateway_bytes_to_devices": gateway.stats.bytes_to_devices,
                      "gateway_frames_resent": gateway.stats.frames_resent,
                      "gateway_damaged": gateway.stats.damaged})
    done = [d.view.updated_at for d in fleet if d.view.updated_at is not None]
    rollout_s = max(done) - rollout_started if done else 0.0
    snap.phase = "done"
    tick(snap)
    return WardResult(cfg, snap.rollout_state, snap.rollout_reason, duration, target.version,
                      base.version, per_device, stats, rollout_s)


def _qemu_firmware(board_name: str) -> Any:
    from suture.boards import load_board
    from suture.firmware.qemu_build import QemuFirmwareError, prepare_firmware

    try:
        return prepare_firmware(load_board(board_name), str(VENDOR_ID), str(CLASS_ID))
    except (QemuFirmwareError, OSError) as e:
        raise WardError(f"the firmware for {board_name} does not build: {e}") from e


def _import(sched: WardScheduler, release: Release, vendor_key: keys.PrivateKey) -> int:
    anchor = vendor_key.public_key()
    r = releases.import_release(sched.sessions(), envelope=release.envelope,
                                payload=release.payload, sbom=release.sbom,
                                notes=f"example application #{release.version}",
                                trust_anchors=[anchor], actor=sched.team.release_manager)
    return int(r.id)


def _provision(sched: WardScheduler, fleet: list[Any], base: Release, board: str,
               workers: int) -> None:
    root_secret = bytes.fromhex(sched.root_secret)
    sched_key = keys.public_key_bytes(sched.signing_key.public_key())
    for d in fleet:
        _, cred = devices.add_device(
            sched.sessions(),
            create=DeviceCreate(id=d.device_id, board=board, vendor_id=str(VENDOR_ID),
                                class_id=str(CLASS_ID), ward="ward-sim", groups=[GROUP],
                                installed={"app": base.version}),
            root_secret=root_secret, actor=sched.team.device_manager, now=sched.clock.now())
        d.secret = bytes.fromhex(cred.secret_hex)

    def one(d: Any) -> None:
        d.provision(base.payload, base.version, scheduler_url=sched.public_url,
                    secret=d.secret, scheduler_key=sched_key)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, fleet))


def _rollout(sched: WardScheduler, cfg: WardConfig, release_id: int, now: int) -> int:
    spec = RolloutCreate(name="ward update", release_id=release_id, target_groups=[GROUP],
                         waves=list(cfg.waves), error_threshold=cfg.error_threshold,
                         error_min_sample=cfg.error_min_sample, on_error="pause")
    r = rollouts.create_rollout(sched.sessions(), spec=spec, actor=sched.team.rollout_operator,
                                now=now)
    approve_and_start(sched.sessions, sched.team, r.id, now=now)
    return int(r.id)


def _poll_status(sched: WardScheduler, rollout_id: int, snap: WardSnapshot) -> None:
    status = rollouts.rollout_status(sched.sessions(), rollout_id=rollout_id)
    snap.rollout_state = status.rollout.state
    snap.rollout_reason = status.rollout.status_reason
    snap.current_wave = status.rollout.current_wave
    snap.wave_count = status.rollout.wave_count
    snap.wave_sizes = [w.size for w in status.waves]
    session = sched.sessions()
    with session.begin():
        rows = session.execute(select(RolloutDevice).where(
            RolloutDevice.rollout_id == rollout_id)).scalars().all()
        snap.entries = {e.device_id: (e.wave, e.state) for e in rows}


def _watch(sched: WardScheduler, cfg: WardConfig, rollout_id: int,
           fleet: list[Any], busy_until: dict[str, float], clock: ScaledClock,
           snap: WardSnapshot, tick: Tick, started: float) -> None:
    settle_from: float | None = None
    while True:
        now = time.monotonic()
        snap.elapsed_s = now - started
        for d in fleet:
            until = busy_until.get(d.device_id)
            if until is not None and clock.now() >= until:
                d.set_busy(False)
                del busy_until[d.device_id]
        _poll_status(sched, rollout_id, snap)
        tick(snap)
        if now - started > cfg.timeout_s:
            snap.rollout_reason = (snap.rollout_reason + "; " if snap.rollout_reason else "") + \
                f"the simulation stopped after {cfg.timeout_s:.0f} s"
            return
        if snap.rollout_state in FINAL_ROLLOUT_STATES:
            busy_devices = [d for d in fleet if d.view.state in IN_FLIGHT and
                            snap.entries.get(d.device_id, (0, ""))[1] not in ("pending",)]
            if settle_from is None:
                settle_from = now
            if not busy_devices or now - settle_from > cfg.settle_s:
                return
        if all(d.view.state == "crashed" for d in fleet):
            return
        time.sleep(0.25)


def _truth(sched: WardScheduler, fleet: list[Any], snap: WardSnapshot,
           target: int, base: int, signed: set[str]) -> list[dict[str, Any]]:
    """Each device's outcome, from its flash (the simulator) or its REPL (QEMU): bricked when
    it cannot say, or its files do not match its installed record, or that record matches no
    signed release."""
    session = sched.sessions()
    with session.begin():
        reported = {d.id: dict(d.installed or {}) for d in
                    session.execute(select(Device)).scalars()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        flash = list(pool.map(lambda d: d.flash_report(), fleet))
    out = []
    for d, rep in zip(fleet, flash, strict=True):
        journal = d.journal()
        ever_trial = any(r.version == target and r.state.name == "TRIAL" for r in journal)
        reverted = any(r.state.name == "REVERTED" for r in journal) and ever_trial
        version = rep.get("installed_version")
        state = rep.get("state")
        bricked = "error" in rep or rep.get("app_digest") != rep.get("installed_digest") \
            or not version or rep.get("installed_digest") not in signed
        entry = snap.entries.get(d.device_id, (None, "not targeted"))
        if version == target and state == "CONFIRMED":
            outcome = "updated"
        elif reverted:
            outcome = "reverted"
        elif entry[1] == "failed":
            outcome = "failed"
        else:
            outcome = "not updated"
        out.append({
            "id": d.device_id,
            "flash_version": version,
            "reported_version": reported.get(d.device_id, {}).get("app"),
            "journal_state": state,
            "wave": entry[0],
            "entry_state": entry[1],
            "outcome": outcome,
            "bricked": bool(bricked),
            "resets": d.view.resets,
            "power_cuts": d.view.power_cuts,
            "crashes": d.view.crashes,
            "external_erases": d.external_erases(),
            "host_cpu_s": round(d.cpu_s, 2) if hasattr(d, "cpu_s") else None,
            "heap_peak": d.view.heap_peak or None,
            "refused_schedules": d.view.refused,
            "clock_skew_s": d.view.clock_skew_s,
            "clock_resyncs": d.view.resyncs,
            "errors": list(d.view.errors) + ([str(rep["error"])] if "error" in rep else []),
        })
    return out
