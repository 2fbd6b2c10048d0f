"""The vendor's grant in a schedule (key 21) on the device: the agent takes the biscuit it
carries for the vendor's /direct/ downloads, ignores a grant without one, and refuses a key 21
that is not the format's map."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from agent_env import DEVICE_ID
from suture import cose, keys
from suture.keys import PrivateKey, key_id
from suture.scheduler.schedule_doc import K_GRANT, Grant, Schedule, sign_schedule
from test_schedule import NOW, artifact

BEARER = f"""
DEVICE, NOW = {DEVICE_ID!r}, {NOW}
import json, sys, binascii
from agent import schedule as S
from agent.errors import ScheduleError
f = open(sys.argv[1])
keys = [binascii.unhexlify(json.loads(f.readline()))]
out = []
for line in f:
    try:
        s = S.verify(binascii.unhexlify(json.loads(line)), keys, DEVICE, -1, NOW)
        out.append(["ok", s.artifact.bearer])
    except ScheduleError as e:
        out.append([type(e).__name__, str(e)])
print("RESULT " + json.dumps(out))
"""


def _signed(key: PrivateKey, grant: Any) -> bytes:
    m = Schedule(device_id=DEVICE_ID, number=1, issued_at=NOW, action=1, next_poll=NOW + 90,
                 poll_interval=90, rollout_id=3, artifact=artifact()).to_map()
    if grant is not None:
        m[K_GRANT] = grant
    return cose.sign1(cbor2.dumps(m, canonical=True), key, kid=key_id(key.public_key()),
                      tagged=True)


def test_the_agent_reads_the_grant(run_mpy: Callable[..., Any], tmp_path: Path,
                                   scheduler_key: PrivateKey) -> None:
    ref = "https://updates.vendor.example/gnap/continue/abc"
    with_biscuit = sign_schedule(
        Schedule(device_id=DEVICE_ID, number=1, issued_at=NOW, action=1, next_poll=NOW + 90,
                 poll_interval=90, rollout_id=3, artifact=artifact(),
                 grant=Grant(ref, "En0KEwoEdGVzdBgDIgkKBwgKEgMYgAgSJAgAEiB")), scheduler_key)
    cases = [with_biscuit, _signed(scheduler_key, {1: ref}), _signed(scheduler_key, None),
             _signed(scheduler_key, b"a grant"), _signed(scheduler_key, {2: "biscuit"}),
             _signed(scheduler_key, {1: ref, 2: b"raw"})]
    path = tmp_path / "cases.jsonl"
    lines = [json.dumps(keys.public_key_bytes(scheduler_key.public_key()).hex())]
    path.write_text("\n".join([*lines, *(json.dumps(c.hex()) for c in cases)]) + "\n")
    out = run_mpy(BEARER, str(path))
    assert out[0] == ["ok", "En0KEwoEdGVzdBgDIgkKBwgKEgMYgAgSJAgAEiB"]
    assert out[1] == ["ok", None]
    assert out[2] == ["ok", None]
    for refused in out[3:]:
        assert refused[0] == "ScheduleError", refused
    assert "grant" in out[3][1]
    assert "biscuit" in out[5][1]
