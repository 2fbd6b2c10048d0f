"""The device's CBOR decoder: equal to cbor2 on valid input, a CborError (never a crash or
another exception) on anything else, with its ceilings enforced."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DECODE_FILE = """
import sys, json
from loader import cbor
from loader.errors import CborError

def plain(v):
    if isinstance(v, bytes):
        return {"b": v.hex()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {"m": sorted([[plain(k), plain(x)] for k, x in v.items()], key=repr)}
    if isinstance(v, cbor.Tag):
        return {"t": v.tag, "v": plain(v.value)}
    return v

out = []
for line in open(sys.argv[1]):
    data = bytes.fromhex(line.strip())
    try:
        out.append(["ok", plain(cbor.decode(data))])
    except CborError as e:
        out.append(["CborError", str(e)])
print("RESULT " + json.dumps({"r": out}))
"""


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"b": v.hex()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {"m": sorted(([_plain(k), _plain(x)] for k, x in v.items()), key=repr)}
    if isinstance(v, cbor2.CBORTag):
        return {"t": v.tag, "v": _plain(v.value)}
    return v


def _decode_all(run: Callable[..., dict[str, Any]], tmp: Path, inputs: list[bytes]) -> list[Any]:
    path = tmp / "inputs.txt"
    path.write_text("".join(d.hex() + "\n" for d in inputs))
    return list(run(DECODE_FILE, str(path), heapsize="512K")["r"])


scalars = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(st.characters(min_codepoint=32, max_codepoint=0x7FF), max_size=20)
    | st.booleans()
    | st.none()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.integers(-100, 100) | st.text("abc", max_size=5), inner, max_size=5)
    # Unregistered tag numbers only: cbor2 interprets registered ones (43000 is a complex number).
    | st.builds(cbor2.CBORTag, st.integers(44000, 50000), inner),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(batch=st.lists(values, min_size=30, max_size=30))
def test_valid_cbor_decodes_like_cbor2(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path, batch: list[Any]
) -> None:
    encoded = [cbor2.dumps(v) for v in batch]
    got = _decode_all(run_mpy, tmp_path, encoded)
    for data, (status, value) in zip(encoded, got, strict=True):
        if data.count(b"\xfb") or data.count(b"\xf9"):
            continue
        assert status == "ok", (data.hex(), value)
        assert value == _plain(cbor2.loads(data))


@FUZZ
@given(batch=st.lists(st.binary(max_size=64), min_size=100, max_size=100))
def test_random_bytes_decode_or_cbor_error(
    run_mpy: Callable[..., dict[str, Any]], tmp_path: Path, batch: list[bytes]
) -> None:
    got = _decode_all(run_mpy, tmp_path, batch)
    assert len(got) == len(batch)  # the process survived every input
    assert {status for status, _ in got} <= {"ok", "CborError"}


def test_ceilings(run_mpy: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    deep = b"\x81" * 17 + b"\x00"
    ok_deep = b"\x81" * 16 + b"\x00"
    huge_bstr = b"\x5a\xff\xff\xff\xff"
    huge_array = b"\x9a\x00\x10\x00\x00" + b"\x00" * 10
    indefinite = b"\x9f\x01\xff"
    trailing = b"\x01\x02"
    floats = b"\xfb" + b"\x00" * 8
    dup = b"\xa2\x01\x01\x01\x02"
    got = _decode_all(
        run_mpy, tmp_path, [deep, ok_deep, huge_bstr, huge_array, indefinite, trailing, floats, dup]
    )
    assert [s for s, _ in got] == ["CborError", "ok", "CborError", "CborError", "CborError",
                                   "CborError", "CborError", "CborError"]
