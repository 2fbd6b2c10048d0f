"""The device link: a 256 KiB download through the gateway over a pty, against loopback HTTP.

Figures (all measured in this run, against one real scheduler on loopback):
(a) the device's agent (unix port) fetching a 256 KiB payload with its SchedulerClient
    (signed ranged GET, the body read into one 1 KiB buffer), over HTTP straight to the
    scheduler and over the device link (a pty, the relay, `SerialGateway`, the scheduler):
    KiB/s of each (best of 3), and the link's as a ratio to HTTP's;
(b) bytes on the pty (both ways) per payload byte, and frames the device asked for again;
(c) the device's live heap peak (after a collection, every 16 KiB; the whole heap in use:
    agent modules, transport buffers, response) while it reads 64 KiB (a ranged GET) and
    256 KiB through the link, and their ratio (~1: memory does not grow with the payload);
    the same over HTTP.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from suture import keys
from suture.gateway import SerialGateway
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.testing import CLASS_ID, VENDOR_ID, run_script
from suture.ward.clock import ScaledClock
from suture.ward.release import build_release
from suture.ward.server import WardScheduler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from link_harness import PtyLine  # noqa: E402

KIB = 1024
PAYLOAD = 256 * KIB
RUNS = 3

FETCH = """
import sys, time, gc, json
from agent.client import SchedulerClient
from agent.platform import Clock
cfg = json.load(open(sys.argv[1]))
if cfg["link"]:
    from agent.transport.link import LinkTransport, from_spec
    t = LinkTransport(from_spec(cfg["link"]))
else:
    from agent.transport.http import HttpTransport
    t = HttpTransport()
c = SchedulerClient(t, cfg["base"], cfg["device"], bytes.fromhex(cfg["secret"]), Clock())
buf = bytearray(1024)
out = []
for url, start in cfg["gets"]:
    gc.collect()
    peak = gc.mem_alloc()
    t0 = time.ticks_ms()
    r = c.get(url, start)
    n = 0
    k = 0
    while True:
        got = r.readinto(buf)
        if not got:
            break
        n += got
        k += 1
        if k % 16 == 0:
            gc.collect()
            peak = max(peak, gc.mem_alloc())
    r.close()
    ms = time.ticks_diff(time.ticks_ms(), t0)
    out.append({"bytes": n, "ms": ms, "heap": peak,
                "resends": getattr(t, "resends", 0)})
print("RESULT " + json.dumps(out))
"""


def _setup(root: Path) -> tuple[WardScheduler, str, str, str, int]:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(root / "scheduler", ScaledClock(1.0), vendor)
    sched.start()
    _, cred = devices.add_device(
        sched.sessions(),
        create=DeviceCreate(id="bench-1", board="sim", vendor_id=str(VENDOR_ID),
                            class_id=str(CLASS_ID), ward="bench", groups=["bench"],
                            installed={"app": 1}),
        root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
        now=sched.clock.now())
    overhead = len(build_release(2, vendor).payload)
    rel = build_release(2, vendor, filler=PAYLOAD - overhead)
    r = releases.import_release(sched.sessions(), envelope=rel.envelope, payload=rel.payload,
                                sbom=rel.sbom, notes="bench", trust_anchors=[vendor.public_key()],
                                actor=sched.team.release_manager)
    url = f"{sched.public_url}/api/v1/releases/{r.id}/payload"
    rel_id = int(r.id)
    now = sched.clock.now()
    ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
        name="bench", release_id=rel_id, target_groups=["bench"], waves=["100%"]),
        actor=sched.team.rollout_operator, now=now)
    approve_and_start(sched.sessions, sched.team, ro.id, now=now)
    return sched, "bench-1", cred.secret_hex, url, len(rel.payload)


def _fetch(root: Path, sched: WardScheduler, device: str, secret: str,
           gets: list[tuple[str, int]], link: str | None) -> list[dict[str, Any]]:
    cfg = {"link": link, "base": sched.public_url, "device": device, "secret": secret,
           "gets": gets}
    (root / "fetch.json").write_text(json.dumps(cfg))
    result: list[dict[str, Any]] = run_script(FETCH, str(root / "fetch.json"),
                                              micropypath=[REPO / "device"], cwd=root,
                                              heapsize="192K", timeout=600)
    return result


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        sched, device, secret, url, size = _setup(root)
        whole = [(url, 0)]
        both = [(url, size - 64 * KIB), (url, 0)]  # 64 KiB (a ranged GET), then 256 KiB
        try:
            http = [_fetch(root, sched, device, secret, both, None) for _ in range(RUNS)]
            line = PtyLine().start()
            tty = "tty:" + line.device_path
            try:
                with SerialGateway(sched.public_url, [line.gateway_path]) as gw:
                    before = sum(line.bytes.values())
                    first = _fetch(root, sched, device, secret, whole, tty)
                    wire = sum(line.bytes.values()) - before
                    link = [first] + [_fetch(root, sched, device, secret, whole, tty)
                                      for _ in range(RUNS - 1)]
                    heap = _fetch(root, sched, device, secret, both, tty)
                    damaged = gw.stats.damaged
            finally:
                line.close()
        finally:
            sched.stop()
    assert first[0]["bytes"] == size
    http_ms = min(r[-1]["ms"] for r in http)
    link_ms = min(r[0]["ms"] for r in link)
    http_kib_s = size / KIB / (http_ms / 1000)
    link_kib_s = size / KIB / (link_ms / 1000)
    return {
        "payload_bytes": size,
        "http_loopback_kib_per_s": round(http_kib_s, 1),
        "link_pty_kib_per_s": round(link_kib_s, 1),
        "link_to_http_throughput_ratio": round(link_kib_s / http_kib_s, 3),
        "link_wire_bytes_per_payload_byte": round(wire / size, 4),
        "link_frames_resent": first[0]["resends"],
        "link_frames_damaged": damaged,
        "device_heap_peak_64kib_bytes": heap[0]["heap"],
        "device_heap_peak_256kib_bytes": heap[1]["heap"],
        "device_heap_peak_ratio_256_to_64": round(heap[1]["heap"] / max(1, heap[0]["heap"]),
                                                  3),
        "http_device_heap_peak_64kib_bytes": http[0][0]["heap"],
        "http_device_heap_peak_256kib_bytes": http[0][1]["heap"],
    }
