"""The simulated board (unix port) updates itself through the gateway over a pty against the
real scheduler: a clean line, then faults on the link (frames dropped, duplicated, corrupted,
truncated, delayed and reordered) and the gateway restarted mid-download. The staging slot is
never corrupted: the loader installs only a payload whose digest the signed manifest names,
and the device ends on version 2, confirmed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from link_harness import PtyLine, enrol, roll_out, run_until_confirmed, start_ward
from suture.gateway import RequestRecord, SerialGateway
from suture.keys import PrivateKey


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
