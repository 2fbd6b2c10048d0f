"""The agent's schedule verification on the unix port: it accepts the scheduler's documents
and refuses one signed by another key, for another device, replayed, or whose window closed."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from typing import Any

from agent_env import DEVICE_DIR, DEVICE_ID
from suture import keys
from suture.keys import PrivateKey
from suture.scheduler import credentials, schedule_doc
from suture.scheduler.schedule_doc import Artifact, Schedule, sign_schedule

NOW = 1_767_225_600

VERIFY_BATCH = """
import json, sys, binascii, gc
from agent import schedule as S
from agent.errors import ScheduleError
f = open(sys.argv[1])
keys = [binascii.unhexlify(k) for k in json.loads(f.readline())]
out = []
for line in f:
    doc, dev, last, now = json.loads(line)
    try:
        s = S.verify(binascii.unhexlify(doc), keys, dev, last, now)
        out.append(["ok", s.number, s.action, s.in_window(now)])
    except ScheduleError as e:
        out.append([type(e).__name__])
    gc.collect()
print("RESULT " + json.dumps(out))
"""


def artifact() -> Artifact:
    return Artifact(release_id=7, component="app", sequence_number=4,
                    envelope_uri="http://127.0.0.1:1/api/v1/releases/7/envelope",
                    envelope_digest=b"\x11" * 32, envelope_size=402,
                    payload_uri="http://127.0.0.1:1/api/v1/releases/7/payload",
                    payload_digest=b"\x22" * 32, payload_size=183040)


def doc(key: PrivateKey, *, device: str = DEVICE_ID, number: int = 12, action: int = 2,
        window: tuple[int, int] | None = None) -> bytes:
    s = Schedule(device_id=device, number=number, issued_at=NOW, action=action,
                 next_poll=NOW + 90, poll_interval=90, rollout_id=3, artifact=artifact(),
                 not_before=window[0] if window else None,
                 not_after=window[1] if window else None)
    return sign_schedule(s, key)


def verify_all(run_mpy: Callable[..., Any], tmp_path: Any, key: PrivateKey,
               docs: list[tuple[bytes, str, int, int]]) -> list[list[Any]]:
    import json

    path = tmp_path / "cases.jsonl"
    lines = [json.dumps([keys.public_key_bytes(key.public_key()).hex()])]
    lines += [json.dumps([d.hex(), dev, last, now]) for d, dev, last, now in docs]
    path.write_text("\n".join(lines) + "\n")
    result: list[list[Any]] = run_mpy(VERIFY_BATCH, str(path))
    return result


def test_accepts_and_refuses(run_mpy: Callable[..., Any], tmp_path: Any,
                             scheduler_key: PrivateKey) -> None:
    other = keys.generate_private_key("ES256")
    window = (NOW - 60, NOW + 3600)
    cases = [
        (doc(scheduler_key), DEVICE_ID, -1, NOW),  # first schedule
        (doc(scheduler_key, number=12), DEVICE_ID, 12, NOW),  # same number: same document
        (doc(other), DEVICE_ID, -1, NOW),  # another key
        (doc(scheduler_key, device="bed-8"), DEVICE_ID, -1, NOW),  # another device
        (doc(scheduler_key, number=11), DEVICE_ID, 12, NOW),  # replayed, older number
        (doc(scheduler_key, window=(NOW - 7200, NOW - 3600)), DEVICE_ID, -1, NOW),  # closed
        (doc(scheduler_key, window=window), DEVICE_ID, -1, NOW),  # open window
        (doc(scheduler_key, window=(NOW + 600, NOW + 4200)), DEVICE_ID, -1, NOW),  # not yet
        (doc(scheduler_key) + b"\x00" * 2048, DEVICE_ID, -1, NOW),  # oversize
    ]
    r = verify_all(run_mpy, tmp_path, scheduler_key, cases)
    assert r[0] == ["ok", 12, 2, True]
    assert r[1] == ["ok", 12, 2, True]
    assert r[2][0] == "ScheduleSignatureError"
    assert r[3][0] == "ScheduleDeviceError"
    assert r[4][0] == "ScheduleReplayError"
    assert r[5][0] == "ScheduleWindowError"
    assert r[6] == ["ok", 12, 2, True]
    # accepted (it tells the device when to come back), but the install check says no
    assert r[7] == ["ok", 12, 2, False]
    assert r[8][0] == "ScheduleError"


def test_tampered_documents_never_verify(run_mpy: Callable[..., Any], tmp_path: Any,
                                         scheduler_key: PrivateKey) -> None:
    """Byte flips and truncations of a good document: each gives a named ScheduleError."""
    good = doc(scheduler_key)
    rng = random.Random(1234)
    cases = []
    for _ in range(150):
        b = bytearray(good)
        if rng.random() < 0.2:
            b = b[: rng.randrange(len(b))]
        else:
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        cases.append((bytes(b), DEVICE_ID, -1, NOW))
    results = verify_all(run_mpy, tmp_path, scheduler_key, cases)
    for (data, *_), res in zip(cases, results, strict=True):
        if data == good:
            continue
        assert res[0] != "ok" or res[1:] == ["ok", 12, 2, True][1:], res
        assert res[0] in ("ok", "ScheduleSignatureError", "ScheduleError",
                          "ScheduleDeviceError"), res
    refused = sum(1 for r in results if r[0] != "ok")
    assert refused >= 140


def test_schedule_keys_match_the_scheduler() -> None:
    """device/agent/schedule.py's key numbers are docs/formats/schedule.md's, as the
    scheduler defines them."""
    src = (DEVICE_DIR / "agent" / "schedule.py").read_text()
    agent = {m.group(1): int(m.group(2))
             for m in re.finditer(r"^K_([A-Z_]+) = const\((\d+)\)", src, re.M)}
    names = {"NUMBER": "SCHEDULE_NUMBER", "SEQUENCE": "SEQUENCE_NUMBER"}
    assert len(agent) >= 20
    for name, value in agent.items():
        assert getattr(schedule_doc, "K_" + names.get(name, name)) == value, name


def test_request_mac_matches_the_scheduler(run_mpy: Callable[..., Any]) -> None:
    secret = hashlib.sha256(b"device secret").digest()
    body = b'{"state":"idle"}'
    src = f"""
import json
from agent.mac import hmac_sha256, hexlify
from agent.client import SchedulerClient
class C:
    def now(self): return 1767225600
    def now_us(self): return 17
c = SchedulerClient(None, "http://x", "bed-7", bytes.fromhex("{secret.hex()}"), C())
h1 = c.sign("GET", "/api/v1/devices/bed-7/schedule")
h2 = c.sign("POST", "/api/v1/devices/bed-7/reports", {body!r})
print("RESULT " + json.dumps([h1, h2]))
"""
    h1, h2 = run_mpy(src)
    want1 = credentials.sign_request(secret, method="GET", path="/api/v1/devices/bed-7/schedule",
                                     device_id="bed-7", time=1767225600, counter=17)
    want2 = credentials.sign_request(secret, method="POST", path="/api/v1/devices/bed-7/reports",
                                     device_id="bed-7", time=1767225600, counter=18, body=body)
    assert h1 == want1
    assert h2 == want2


def test_counter_strictly_increases(run_mpy: Callable[..., Any]) -> None:
    src = """
import json
from agent.client import Counter
class C:
    def now_us(self): return 1000
c = Counter(C())
print("RESULT " + json.dumps([c.next() for _ in range(3)]))
"""
    assert run_mpy(src) == [1000, 1001, 1002]


def test_resync_from_the_scheduler_sets_the_clock_and_the_counter(
        run_mpy: Callable[..., Any]) -> None:
    """A 401 whose resync MAC verifies (device secret, over the refused request's counter)
    sets the clock and the counter and the request goes out once more; a forged one, or one
    for another request, changes nothing and the 401 stands."""
    secret = hashlib.sha256(b"device secret").digest()
    server_time = 1_800_000_000
    floor = 1_799_000_000_000_000  # µs-based counters the scheduler accepted before
    other = hashlib.sha256(b"someone else").digest()
    # The fake transport MACs the resync with `key` over the counter it receives (or `bound`).
    src_cases = [("good", secret.hex(), None), ("forged", other.hex(), None),
                 ("other request", secret.hex(), 12345)]
    src = f"""
import json
from agent.client import SchedulerClient
from agent.mac import hmac_sha256, hexlify
from agent.platform import Clock

class R:
    def __init__(self, status, headers):
        self.status = status
        self.headers = headers
    def close(self):
        pass

class T:
    def __init__(self, key, bound):
        self.key = bytes.fromhex(key)
        self.bound = bound
        self.seen = []
    def request(self, method, url, headers, body):
        self.seen.append(dict(headers))
        if len(self.seen) > 1:
            return R(200, {{}})
        ctr = self.bound if self.bound is not None else int(headers["Suture-Counter"])
        text = "\\n".join(("suture-resync-v1", "bed-7", str(ctr), "{server_time}", "{floor}"))
        return R(401, {{"suture-server-time": "{server_time}", "suture-counter-floor": "{floor}",
                       "suture-resync-mac": hexlify(hmac_sha256(self.key, text.encode()))}})

out = {{}}
for name, key, bound in {src_cases!r}:
    clock = Clock("0,1,-1000000000")  # the device thinks it is about 1000000000 s earlier
    t = T(key, bound)
    c = SchedulerClient(t, "http://x", "bed-7", bytes.fromhex("{secret.hex()}"), clock)
    r = c._request("GET", "http://x/api/v1/devices/bed-7/schedule")
    out[name] = {{"status": r.status, "requests": len(t.seen), "resyncs": c.resyncs,
                  "times": [int(h["Suture-Time"]) for h in t.seen],
                  "counters": [int(h["Suture-Counter"]) for h in t.seen],
                  "now": clock.now()}}
print("RESULT " + json.dumps(out))
"""
    got = run_mpy(src)
    good = got["good"]
    assert (good["status"], good["requests"], good["resyncs"]) == (200, 2, 1)
    assert good["times"][0] < server_time - 900_000_000  # the wrong clock went out first
    assert abs(good["times"][1] - server_time) <= 2  # then the scheduler's
    assert good["counters"][1] > floor
    assert abs(good["now"] - server_time) <= 2
    for name in ("forged", "other request"):
        bad = got[name]
        assert (bad["status"], bad["requests"], bad["resyncs"]) == (401, 1, 0), name
        assert bad["now"] < server_time - 900_000_000, name
