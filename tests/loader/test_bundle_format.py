"""The bundle format: the host builder and the device reader agree, refuse the same inputs, and
the device's canonical serialization of an installed bundle gives back the same bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from suture.bundle import BundleError, build_bundle, parse_bundle
from suture.sim.testing import Provisioned

names = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,10}", fullmatch=True)
paths = st.lists(names, min_size=1, max_size=3).map("/".join)


@given(st.dictionaries(paths, st.binary(max_size=64), max_size=10))
def test_roundtrip(files: dict[str, bytes]) -> None:
    prefixes = {p.rsplit("/", 1)[0] for p in files if "/" in p}
    if prefixes & set(files):
        return  # a path cannot be both a file and a directory
    assert parse_bundle(build_bundle(files)) == files


BAD_PATHS = ["", "/abs", "a//b", "../x", "a/./b", ".hidden", "sp ace", "x~new"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_refused(path: str) -> None:
    with pytest.raises(BundleError):
        build_bundle({path: b""})


@given(st.binary(max_size=80))
def test_parse_refuses_garbage(data: bytes) -> None:
    try:
        parse_bundle(data)
    except BundleError:
        return
    assert data[:4] == b"SUTB"


def test_device_serializes_installed_bundle_identically(
    make_device: Callable[..., Provisioned],
) -> None:
    files = {"main.py": b"def main():\n    print('APP 1')\n", "a/b/c.txt": b"x" * 700,
             "a/b.txt": b"", "z.bin": bytes(range(256))}
    data = build_bundle(files)
    p = make_device(app=data)
    r = p.device.run(["report"])
    rep = r.report()
    assert rep["app_digest"] == hashlib.sha256(data).hexdigest()
    assert rep["installed_digest"] == rep["app_digest"]


def test_device_refuses_bad_bundle(make_device: Callable[..., Provisioned]) -> None:
    good = build_bundle({"main.py": b"x"})
    p = make_device()
    bad_inputs = (
        good[:-1],
        good + b"\x00",
        b"SUTB\x02\x00\x00\x00",
        good.replace(b"main", b"..//"),
    )
    for bad in bad_inputs:
        name = p.board.put_file("bad.bundle", bad)
        r = p.device.run(["exec", p.board.put_file("v.py", VERIFY.encode()), name])
        assert r.ok, r.stdout
        assert r.result["err"] in ("BundleError", "SizeError"), bad


VERIFY = """
import hashlib
from loader import bundle
from loader.errors import LoaderError
from loader.simcli import FileStream
s = FileStream(args[0])
try:
    bundle.verify_stream(s, s.size(), hashlib.sha256(), bytearray(64))
    out["err"] = None
except LoaderError as e:
    out["err"] = type(e).__name__
"""
