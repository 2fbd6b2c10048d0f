"""The device's parsers of encrypted releases under hypothesis: SUIT_Encryption_Info
(loader.suit_encryption.open_payload) mutated from the drafts' examples and generated from
scratch, and the NVM record of the decryption keys (loader.encrypted.parse_keys). Each input
gets a decryptor or one of the documented errors (docs/formats/suit-encryption.md), never
another exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXT = Path(__file__).resolve().parents[1] / "vectors" / "suit-ext"
INFOS = [(EXT / f"enc-encryption-info-{n}.cbor").read_bytes()
         for n in ("aes-kw-aes-ctr", "aes-kw-aes-gcm", "es-ecdh-aes-ctr", "es-ecdh-aes-gcm")]
DOCUMENTED = {"ok", "SuitError", "CborError", "KeyUnwrapError", "EncryptionUnsupported"}

OPEN_ALL = """
import sys, json
from loader import suit_encryption, encrypted
from loader.errors import LoaderError
keys = [("kw", None, b"c" * 16), ("kw", b"kid-1", b"b" * 32), ("ecdh", None, 0x1234567)]
out = []
for line in open(sys.argv[1]):
    kind, data = line.split()
    data = bytes.fromhex(data)
    try:
        if kind == "info":
            d = suit_encryption.open_payload(data, keys)
            d.update(b"x" * 40)
        else:
            encrypted.parse_keys(data)
        out.append("ok")
    except LoaderError as e:
        out.append(type(e).__name__)
    except Exception as e:
        out.append("CRASH " + type(e).__name__ + " " + str(e))
print("RESULT " + json.dumps(out))
"""

leaf = (st.integers(-70000, 70000) | st.binary(max_size=40) | st.none() | st.booleans()
        | st.text(max_size=4))
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.integers(-5, 6), inner, max_size=4),
                     max_leaves=12)
algs = st.sampled_from([1, 2, 3, -65534, -65533, -65532, -3, -4, -5, -29, -30, -31, 7, 0])


@st.composite
def infos(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 2))
    if choice == 0:  # a published example with bytes flipped, cut or appended
        data = bytearray(draw(st.sampled_from(INFOS)))
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
        return bytes(data)
    recipient = st.lists(st.just(b"") | st.builds(lambda a: cbor2.dumps({1: a}), algs) | value,
                         min_size=3, max_size=3).map(
        lambda r: [r[0], {1: draw(algs), 4: b"kid-1", -1: draw(value)}, r[2]])
    body = [draw(st.just(b"") | st.builds(lambda a: cbor2.dumps({1: a}), algs) | value),
            draw(st.builds(lambda a, iv: {1: a, 5: iv}, algs, st.binary(max_size=17)) | value),
            draw(st.none() | value),
            draw(st.lists(recipient | value, max_size=3) | value)]
    if choice == 1:
        return cbor2.dumps(cbor2.CBORTag(96, body))
    return cbor2.dumps(draw(value))


records = st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=6),
                             st.sampled_from([0, 15, 16, 32, 33])), max_size=4).map(
    lambda entries: b"".join(bytes((k, len(kid))) + kid + bytes((n,)) + b"k" * n
                             for k, kid, n in entries)) | st.binary(max_size=80)


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(st.tuples(st.just("info"), infos()) | st.tuples(st.just("keys"), records),
                      min_size=60, max_size=60))
def test_malformed_encryption_info_and_key_records_get_documented_errors(
    run_mpy: Callable[..., Any], tmp_path: Path, batch: list[tuple[str, bytes]]
) -> None:
    path = tmp_path / "cases.txt"
    path.write_text("".join(f"{kind} {data.hex() or '00'}\n" for kind, data in batch))
    got = run_mpy(OPEN_ALL, str(path), heapsize="256K")
    assert len(got) == len(batch)
    assert set(got) <= DOCUMENTED, [g for g in got if g not in DOCUMENTED]


def test_the_documented_errors_are_what_the_parsers_say(
    run_mpy: Callable[..., Any], tmp_path: Path
) -> None:
    """Crafted cases, so that the fuzz test's set of outcomes is not vacuous."""
    gcm = cbor2.loads(INFOS[1])
    unknown_alg = cbor2.dumps(cbor2.CBORTag(96, [cbor2.dumps({1: 7}), {5: b"i" * 12}, None,
                                                  gcm.value[3]]))
    aes192_kw = cbor2.dumps(cbor2.CBORTag(96, [gcm.value[0], gcm.value[1], None,
                                                [[b"", {1: -4}, b"w" * 32]]]))
    cases = [
        ("info", INFOS[1], "KeyUnwrapError"),  # the example's KEK is not among the keys
        ("info", unknown_alg, "EncryptionUnsupported"),
        ("info", aes192_kw, "KeyUnwrapError"),
        ("info", cbor2.dumps([1, 2]), "SuitError"),
        ("info", cbor2.dumps(cbor2.CBORTag(96, [b"", {1: [1], 5: b"i" * 12}, None,
                                                gcm.value[3]])), "SuitError"),  # alg a list
        ("info", b"\xff", "CborError"),
        ("keys", bytes((1, 0, 16)) + b"k" * 16, "ok"),
        ("keys", bytes((1, 0, 20)) + b"k" * 20, "SuitError"),
        ("keys", bytes((2, 1)), "SuitError"),
    ]
    path = tmp_path / "cases.txt"
    path.write_text("".join(f"{kind} {data.hex()}\n" for kind, data, _ in cases))
    assert run_mpy(OPEN_ALL, str(path), heapsize="256K") == [want for _, _, want in cases]
