"""The device link's parsers fuzzed with hypothesis: the device's (framer and transport, on the
unix port, batches of cases per process) and the gateway's (frame reader and session,
in-process). Any bytes give frames, counted damage, a response or the documented errors:
never another exception, never a hang."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from link_harness import REPO
from suture.gateway.frames import (
    ACK,
    BODY,
    END,
    NONE,
    REQUEST,
    STATUS,
    TYPES,
    FrameError,
    FrameReader,
    LinkFrame,
    decode_frame,
)
from suture.gateway.server import GatewayStats, LinkSession, RequestRecord, Upstream
from suture.sim.testing import run_script

DEVICE_DIR = REPO / "device"

FUZZ = """
import sys, json, binascii
sys.path.insert(0, sys.argv[2])
from agent.errors import TransportError
from agent.transport.link import Framer, LinkTransport, FRAME, TIMEOUT

class Link:
    def __init__(self, data, step):
        self.data = data
        self.pos = 0
        self.step = step
        self.sent = 0
    def write(self, b):
        self.sent += len(b)
    def readinto(self, mv, timeout_ms):
        n = min(len(mv), self.step, len(self.data) - self.pos)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

out = []
for line in open(sys.argv[1]):
    mode, data, step, rid = json.loads(line)
    data = binascii.unhexlify(data)
    if mode == "frames":
        f = Framer(Link(data, step))
        frames = 0
        while True:
            r = f.recv(0)
            if r == TIMEOUT:
                break
            if r == FRAME:
                frames += 1
                assert f.plen <= 1024
        out.append(["ok", frames, f.damaged])
    else:
        t = LinkTransport(Link(data, step), timeout_ms=0)
        t.rid = rid
        try:
            r = t.request("GET", "http://s/x", {"A": "b"})
            body = r.read_all(4096)
            out.append(["ok", r.status, len(body)])
        except TransportError as e:
            out.append([type(e).__name__])
print("RESULT " + json.dumps(out))
"""


def frame(kind: int, rid: int, seq: int, payload: bytes) -> bytes:
    return LinkFrame(kind, rid, seq, payload).encode()


def _mutate(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for pos, val in cuts:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


# a gateway's answer to request id 7: a head, body frames, an end, with noise around them
answer = st.builds(
    lambda status, body, extra, cuts: _mutate(
        b"".join([frame(STATUS, 7, 0, status), *[frame(BODY, 7, i + 1, b)
                                                   for i, b in enumerate(body)],
                  frame(END, 7, len(body) + 1, b""), *extra]), cuts),
    st.sampled_from([b"200\ncontent-length: 3\n", b"200\n", b"x\n", b"304\n", b"\xff\n",
                     b"206\ncontent-length: abc\n", b"200\ncontent-length: 1\n"]),
    st.lists(st.binary(max_size=40), max_size=4),
    st.lists(st.builds(frame, st.sampled_from(sorted(TYPES)), st.sampled_from([7, 8]),
                       st.integers(0, 6), st.binary(max_size=20)), max_size=3),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
)
stream = st.one_of(st.binary(max_size=600), answer)
case = st.tuples(st.sampled_from(["frames", "request"]), stream, st.integers(1, 300))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.data_too_large])
@given(batch=st.lists(case, min_size=30, max_size=30))
def test_device_parser(batch: list[tuple[str, bytes, int]], tmp_path_factory: Any) -> None:
    tmp = Path(tmp_path_factory.mktemp("fuzz"))
    cases = tmp / "cases.jsonl"
    cases.write_text("".join(json.dumps([m, d.hex(), s, 6]) + "\n" for m, d, s in batch))
    results = run_script(FUZZ, str(cases), str(DEVICE_DIR), micropypath=[DEVICE_DIR], cwd=tmp,
                         heapsize="1M", timeout=120)
    assert len(results) == len(batch)
    for (mode, data, _), res in zip(batch, results, strict=True):
        if mode == "frames":
            assert res[0] == "ok"
            assert res[1] + res[2] <= data.count(0)  # at most one result per delimiter
        else:
            assert res[0] in ("ok", "TransportError", "ResponseTooLarge"), res
            if res[0] == "ok":
                assert res[2] <= 4096


@settings(max_examples=300, deadline=None)
@given(data=stream, step=st.integers(1, 300))
def test_gateway_reader(data: bytes, step: int) -> None:
    reader = FrameReader()
    items = [x for i in range(0, len(data), step) for x in reader.feed(data[i : i + step])]
    assert len(items) <= data.count(0)
    for x in items:
        if isinstance(x, LinkFrame):
            assert decode_frame(x.encode()[:-1]) == x
        else:
            assert isinstance(x, FrameError)
            assert x.reason in ("cobs", "short", "long", "crc", "type")
    assert reader.damaged == sum(isinstance(x, FrameError) for x in items)


class _Sink:
    name = "fuzz"

    def __init__(self) -> None:
        self.out = bytearray()

    def read(self) -> bytes:
        raise EOFError

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        pass


device_frame = st.builds(
    LinkFrame, st.sampled_from([REQUEST, BODY, END, ACK, STATUS, NONE]), st.integers(0, 3),
    st.integers(0, 4),
    st.one_of(st.binary(max_size=30), st.sampled_from([
        b"GET http://127.0.0.1:9/api/x\n", b"POST http://evil/x\nA: b\n", b"\x04\x01", b"",
        b"GET http://127.0.0.1:9\n"])))


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(device_frame, max_size=25))
def test_gateway_session(frames: list[LinkFrame]) -> None:
    """Any sequence of well-formed frames from a device: the session answers with frames or
    nothing, and never forwards outside its scheduler (port 9: nothing listens)."""
    up = Upstream("http://127.0.0.1:9/api", timeout_s=0.5)
    sink = _Sink()
    log: list[RequestRecord] = []
    session = LinkSession(sink, up, GatewayStats(), threading.Lock(), log.append)
    try:
        for f in frames:
            session.on_frame(f)
    finally:
        session._drop_current("abandoned")
        up.close()
    reader = FrameReader()
    answers = list(reader.feed(bytes(sink.out)))
    assert all(isinstance(a, LinkFrame) and a.kind in (STATUS, BODY, END, NONE)
               for a in answers)
    for rec in log:
        assert rec.status in (0, 403, 502), rec
