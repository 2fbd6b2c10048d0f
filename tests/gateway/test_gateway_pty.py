"""The simulated board (unix port) updates itself through the gateway over a pty against the
real scheduler: a clean line, then faults on the link (frames dropped, duplicated, corrupted,
truncated, delayed and reordered) and the gateway restarted mid-download. The staging slot is
never corrupted: the loader installs only a payload whose digest the signed manifest names,
and the device ends on version 2, confirmed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from link_harness import LinkFaults, PtyLine, enrol, roll_out, run_until_confirmed, start_ward
from suture.gateway import RequestRecord, SerialGateway
from suture.keys import PrivateKey
from suture.ward.fleet import SimulatedDevice


@pytest.fixture
def line() -> Iterator[PtyLine]:
    line = PtyLine(seed=11).start()
    yield line
    line.close()


def test_update_through_the_gateway(tmp_path: Path, loader_lib: Path, signing_key: PrivateKey,
                                    line: PtyLine) -> None:
    ward = start_ward(tmp_path, signing_key)
    log: list[RequestRecord] = []
    try:
        dev = enrol(ward, "bed-gw-1", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        with SerialGateway(ward.sched.public_url, [line.gateway_path], log=log.append) as gw:
            roll_out(ward)
            assert run_until_confirmed(ward, dev, 120), dev.view
        assert gw.stats.requests >= 4
        assert gw.stats.refused == 0
        assert gw.stats.bytes_to_devices >= len(ward.target.payload)
        assert any(r.path.endswith("/payload") and r.status in (200, 206) for r in log)
        assert all(r.device == "bed-gw-1" for r in log)
    finally:
        ward.sched.stop()


def _no_bad_staging(dev: SimulatedDevice) -> None:
    """The loader never found a staged payload that did not match its manifest, and the
    device never crashed."""
    assert dev.view.crashes == 0, dev.view.errors
    text = " ".join(dev.view.errors).lower()
    assert "digest" not in text, dev.view.errors
    report = dev.flash_report()
    assert report.get("state") == "CONFIRMED", report
    assert report.get("installed_version") == 2, report
    assert report.get("app_digest") == report.get("installed_digest"), report


@pytest.mark.parametrize("seed", [5, 23])
def test_update_through_a_faulty_link(tmp_path: Path, loader_lib: Path,
                                      signing_key: PrivateKey, seed: int) -> None:
    faults = LinkFaults(drop=0.03, duplicate=0.03, corrupt=0.03, truncate=0.03, delay=0.03)
    line = PtyLine(faults, seed=seed).start()
    ward = start_ward(tmp_path, signing_key, filler=48 * 1024)
    try:
        dev = enrol(ward, "bed-gw-2", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        line.enabled.set()
        with SerialGateway(ward.sched.public_url, [line.gateway_path]) as gw:
            roll_out(ward)
            assert run_until_confirmed(ward, dev, 150), (dev.view, faults.counts)
        for kind in ("drop", "duplicate", "corrupt", "truncate", "delay"):
            assert faults.counts.get(kind, 0) > 0, faults.counts  # each fault really happened
        assert gw.stats.damaged + gw.stats.frames_resent > 0
        _no_bad_staging(dev)
    finally:
        ward.sched.stop()
        line.close()


def test_gateway_restarted_and_device_reset_mid_download(tmp_path: Path, loader_lib: Path,
                                                         signing_key: PrivateKey) -> None:
    line = PtyLine(seed=3).start()
    ward = start_ward(tmp_path, signing_key, filler=96 * 1024)
    gateways: list[SerialGateway] = []
    try:
        dev = enrol(ward, "bed-gw-3", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        gateways.append(SerialGateway(ward.sched.public_url, [line.gateway_path]).start())
        roll_out(ward)
        restarted_at: list[int] = []

        def restart(d: SimulatedDevice) -> None:
            done, size = d.view.progress
            if not restarted_at and size and done > size // 3:
                gateways[-1].stop()  # killed mid-download, then a new one on the same port
                restarted_at.append(done)
                gateways.append(SerialGateway(ward.sched.public_url,
                                              [line.gateway_path]).start())

        assert run_until_confirmed(ward, dev, 150, during=restart, power_cuts=0.5), dev.view
        assert restarted_at, "the download ended before the gateway could be restarted"
        # the second gateway sent only what the first had not: the download resumed
        assert gateways[1].stats.bytes_to_devices < len(ward.target.payload)
        _no_bad_staging(dev)
    finally:
        for g in gateways:
            g.stop()
        ward.sched.stop()
        line.close()


def test_cli_gateway_on_a_pty(tmp_path: Path, loader_lib: Path, signing_key: PrivateKey,
                              line: PtyLine) -> None:
    """`suture gateway --port PTY --scheduler URL --json`: the board updates through it, one
    JSON line per device request, a summary when it is stopped."""
    ward = start_ward(tmp_path, signing_key)
    suture = Path(sys.executable).parent / "suture"
    proc = subprocess.Popen(
        [str(suture), "gateway", "--port", line.gateway_path, "--scheduler",
         ward.sched.public_url, "--json"], stdout=subprocess.PIPE, text=True)
    try:
        dev = enrol(ward, "bed-gw-4", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        roll_out(ward)
        assert run_until_confirmed(ward, dev, 120), dev.view
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        ward.sched.stop()
    assert proc.returncode == 0
    events = [json.loads(x) for x in out.splitlines()]
    assert events[0]["event"] == "start"
    assert events[-1]["event"] == "stop"
    assert events[-1]["requests"] >= 4
    requests = [e for e in events if e["event"] == "request"]
    assert {e["device"] for e in requests} == {"bed-gw-4"}
    assert any(e["path"].endswith("/payload") and e["outcome"] == "done" for e in requests)
    assert any(e["path"].endswith("/reports") and e["status"] == 200 for e in requests)
