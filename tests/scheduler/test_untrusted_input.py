"""Parsers of untrusted input, fuzzed: device headers, Range headers, report bodies, settings."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_world import CLASS_ID, VENDOR_ID, Api
from suture.scheduler import credentials
from suture.scheduler.api.ranges import ByteRange, UnsatisfiableRangeError, parse_range
from suture.scheduler.config import Settings
from suture.scheduler.errors import AuthenticationError

header_text = st.one_of(st.none(), st.text(max_size=80),
                        st.from_regex(r"\A[0-9]{1,25}\Z"), st.from_regex(r"\A[0-9a-f]{60,70}\Z"))


@settings(max_examples=300, deadline=None)
@given(header_text, header_text, header_text, header_text)
def test_device_headers_only_raise_authentication_errors(d: str | None, t: str | None,
                                                         c: str | None, m: str | None) -> None:
    try:
        req = credentials.parse_headers(d, t, c, m)
    except AuthenticationError:
        return
    assert 0 < req.counter < 2**63
    assert len(req.mac) == 64


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"\Abytes=[0-9]{0,6}-[0-9]{0,6}\Z")),
       st.integers(min_value=0, max_value=200_000))
def test_range_parser_stays_in_bounds(header: str, size: int) -> None:
    try:
        r = parse_range(header, size)
    except UnsatisfiableRangeError:
        return
    if r is not None:
        assert isinstance(r, ByteRange)
        assert 0 <= r.start <= r.end < size


def test_range_examples() -> None:
    assert parse_range("bytes=0-99", 1000) == ByteRange(0, 99)
    assert parse_range("bytes=900-", 1000) == ByteRange(900, 999)
    assert parse_range("bytes=-100", 1000) == ByteRange(900, 999)
    assert parse_range("bytes=10-5", 1000) is None
    assert parse_range("bytes=0-1,5-6", 1000) is None  # one range only: send it whole
    with pytest.raises(UnsatisfiableRangeError):
        parse_range("bytes=1000-", 1000)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
report_like = st.fixed_dictionaries(
    {}, optional={"state": st.sampled_from(["idle", "staged", "bogus", ""]),
                  "progress": st.one_of(st.integers(), st.text(max_size=5)),
                  "installed": st.dictionaries(st.text(max_size=70), st.integers(), max_size=3),
                  "rollout_id": st.integers(), "error": json_values, "busy": json_values,
                  "extra": json_values})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(report_like.map(lambda d: json.dumps(d).encode()),
                      st.binary(max_size=300)))
def test_fuzzed_reports_never_fail_the_server(api: Api, body: bytes) -> None:
    if not api.counters:
        r = api.client.post("/api/v1/devices", headers=api.op, json={
            "id": "pump-1", "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID})
        assert r.status_code == 201
        api.counters["pump-1"] = 0
    before = api.client.get("/api/v1/devices/pump-1", headers=api.op).json()
    r = api.device_post("pump-1", "/api/v1/devices/pump-1/reports", body)
    assert r.status_code in (200, 413, 422), r.text
    if r.status_code != 200:
        after = api.client.get("/api/v1/devices/pump-1", headers=api.op).json()
        assert after == before


def test_settings_refuse_default_and_weak_secrets() -> None:
    with pytest.raises(ValueError, match="default"):
        Settings(environment="production")
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(device_root_secret="00" * 16)
    with pytest.raises(ValueError, match="hex"):
        Settings(device_root_secret="zz" * 32)
    assert Settings(environment="development").root_secret_bytes() != b""
    assert len(Settings(device_root_secret="ab" * 32).root_secret_bytes()) == 32
