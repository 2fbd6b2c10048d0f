"""The agent's HTTP/1.1 response parser on the unix port, fuzzed with hypothesis: any bytes a
peer sends give a response within the ceilings or a named TransportError, never anything else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PARSE_BATCH = """
import json, sys, binascii
from agent.errors import TransportError
from agent.transport.http import HttpTransport

class Sock:
    def __init__(self, data, step):
        self.data = data
        self.pos = 0
        self.step = step
    def readinto(self, mv):
        n = min(len(mv), self.step, len(self.data) - self.pos)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n
    def close(self):
        pass

t = HttpTransport()
out = []
for line in open(sys.argv[1]):
    data, step = json.loads(line)
    try:
        r = t._response(Sock(binascii.unhexlify(data), step))
        body = r.read_all(4096)
        out.append(["ok", r.status, len(body)])
    except TransportError as e:
        out.append([type(e).__name__])
print("RESULT " + json.dumps(out))
"""

header_line = st.one_of(
    st.sampled_from([b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: x",
                     b"Transfer-Encoding: chunked", b"ETag: \"abc\"", b"no colon here",
                     b"Content-Range: bytes 0-4/5", b": empty name"]),
    st.binary(max_size=40).filter(lambda b: b"\r\n" not in b),
    st.builds(lambda n: b"X-Long: " + b"a" * n, st.integers(400, 700)),
)
structured = st.builds(
    lambda status, headers, body: status + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    + b"\r\n" + body,
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 206 Partial", b"HTTP/1.0 304 x",
                     b"HTTP/1.1 abc", b"HTTP/2 200", b"garbage", b"HTTP/1.1 599 "]),
    st.lists(header_line, max_size=40),
    st.binary(max_size=64),
)
response = st.tuples(st.one_of(structured, st.binary(max_size=300)), st.integers(1, 97))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.data_too_large])
@given(batch=st.lists(response, min_size=25, max_size=25))
def test_any_response_bytes(batch: list[tuple[bytes, int]], run_mpy_once: Callable[..., Any],
                            tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "cases.jsonl"
    path.write_text("".join(json.dumps([d.hex(), s]) + "\n" for d, s in batch))
    results = run_mpy_once(PARSE_BATCH, str(path))
    assert len(results) == len(batch)
    for (data, _), res in zip(batch, results, strict=True):
        assert res[0] in ("ok", "TransportError", "ResponseTooLarge", "HttpError"), res
        if res[0] == "ok":
            assert data.startswith(b"HTTP/1.")
            assert res[2] <= 4096
