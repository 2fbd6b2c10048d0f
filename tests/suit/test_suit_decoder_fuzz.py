"""Fuzzing the decoder and verifier: only SuitError ever escapes, in bounded time and memory.

Inputs: random bytes, mutations of valid envelopes, random CBOR in every position of an
otherwise valid structure, deep nesting and huge declared lengths. Every input that decodes is
also summarised (JSON) and rendered, so inspect cannot crash on it either.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from suit_samples import envelope_bytes, example_manifest
from suture import keys
from suture.suit import (
    MAX_MANIFEST_BYTES,
    SuitError,
    SuitLimitError,
    create_envelope,
    decode_envelope,
    envelope_summary,
    sever_envelope,
    sign_envelope,
    verify_envelope,
)
from suture.suit.description import COMPONENT_KEYS
from suture.suit.inspect import render

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "suit"
EXAMPLE_KEY = keys.load_public_key(VECTORS / "draft-examples-pubkey.pem")
SEEDS = [
    (VECTORS / f"{name}.cbor").read_bytes()
    for name in ("draft-example0", "draft-example1", "draft-example2", "draft-example2-severed")
]
# Per-input ceiling: generous for a loaded 2-core CI machine, far below anything unbounded.
MAX_SECONDS_PER_INPUT = 2.0
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exercise(data: bytes) -> None:
    """Decode, verify, summarise and render; only SuitError may escape."""
    started = time.perf_counter()
    try:
        env = decode_envelope(data)
    except SuitError:
        env = None
    if env is not None:
        json.dumps(envelope_summary(env))
        render(env, Console(file=io.StringIO(), width=100))
    with contextlib.suppress(SuitError):
        verify_envelope(data, EXAMPLE_KEY)
    assert time.perf_counter() - started < MAX_SECONDS_PER_INPUT


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    exercise(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 9))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            # An interesting CBOR head: huge lengths, tags, indefinite markers, big simple values.
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",
                        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
                        b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",
                        b"\x7a\xff\xff\xff\xff",
                        b"\xd8\x1c\x81",
                        b"\xd8\x1d\x00",
                        b"\xc1\x00",
                        b"\x9f",
                        b"\xff",
                        b"\xf8\xff",
                        b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
                        b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff",
                    ]
                )
            )
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_envelopes(data: bytes) -> None:
    exercise(data)


leaves = st.one_of(
    st.integers(-(2**64), 2**64 - 1),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys_ = st.one_of(st.integers(-30, 40), st.text(max_size=6))
    return st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(keys_, children, max_size=6),
        children.map(cbor2.dumps),  # bstr-wrapped CBOR, as SUIT nests it
    )


cbor_values = st.recursive(leaves, _containers, max_leaves=40)
commands = st.lists(
    st.tuples(
        st.sampled_from([1, 2, 3, 5, 6, 12, 14, 15, 18, 19, 20, 21, 22, 23, 24, 31, 32, 99]),
        cbor_values,
    ),
    min_size=1,
    max_size=6,
).map(lambda pairs: cbor2.dumps([x for pair in pairs for x in pair]))
parameters = st.dictionaries(
    st.sampled_from([1, 2, 3, 5, 12, 13, 14, 18, 21, 22, 23, 24, -1, 77]), cbor_values, max_size=5
)


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """An almost valid envelope with random values in chosen places."""
    manifest: dict[Any, Any] = example_manifest()
    target = draw(
        st.sampled_from(["manifest", "common", "sequence", "parameters", "envelope", "text"])
    )
    if target == "manifest":
        manifest[draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 16, 20, 23, 42]))] = draw(
            cbor_values
        )
    elif target == "common":
        common = {2: [[b"\x00"], [b"\x01"]], 4: draw(commands)}
        common[draw(st.sampled_from([1, 2, 4, 5]))] = draw(cbor_values)
        manifest[3] = cbor2.dumps(common)
    elif target == "sequence":
        manifest[draw(st.sampled_from([7, 8, 9, 16, 20]))] = draw(commands)
    elif target == "parameters":
        params = draw(parameters)
        manifest[7] = cbor2.dumps([12, draw(st.sampled_from([0, True, [0], 5])), 20, params, 3, 15])
    elif target == "text":
        manifest[23] = cbor2.dumps(
            draw(
                st.dictionaries(
                    st.one_of(st.text(max_size=5), st.integers(0, 5)), cbor_values, max_size=3
                )
            )
        )
    extra: dict[Any, Any] = {}
    blocks: list[bytes] = []
    if target == "envelope":
        extra = draw(
            st.dictionaries(
                st.one_of(st.integers(0, 30), st.text(max_size=4)), cbor_values, max_size=4
            )
        )
        blocks = draw(st.lists(cbor_values.map(cbor2.dumps), max_size=3))
    data = envelope_bytes(manifest, blocks=blocks)
    if extra:
        outer = cbor2.loads(data)
        value = dict(outer.value)
        value.update(extra)
        data = cbor2.dumps(cbor2.CBORTag(107, value))
    return data


@FUZZ
@given(structured())
def test_random_values_in_every_position(data: bytes) -> None:
    exercise(data)


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(1, 20_000),
    opener=st.sampled_from([b"\x81", b"\xa1\x00", b"\xd8\x6b", b"\xd2", b"\x9f"]),
)
def test_deep_nesting(depth: int, opener: bytes) -> None:
    exercise(opener * depth + b"\x00")
    exercise(b"\xd8\x6b\xa1\x03" + opener * depth + b"\x00")


def test_deeply_nested_bstr_wrapping() -> None:
    inner: bytes = cbor2.dumps([3, 15])
    for _ in range(200):
        inner = cbor2.dumps([32, inner])
    manifest = example_manifest()
    manifest[7] = inner
    with pytest.raises(SuitError, match="nested deeper"):
        decode_envelope(envelope_bytes(manifest))


@pytest.mark.parametrize(
    "head",
    [
        b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",  # bstr of 2^63-1 bytes
        b"\x7b\x00\x00\x00\x01\x00\x00\x00\x00",  # text of 4 GiB
        b"\x9b\x7f\xff\xff\xff\xff\xff\xff\xff",  # array of 2^63-1 items
        b"\xbb\x00\x00\x00\x00\xff\xff\xff\xff",  # map of 2^32-1 pairs
    ],
)
def test_huge_declared_lengths_cost_nothing(head: bytes) -> None:
    for data in (head, b"\xd8\x6b\xa2\x02" + head, envelope_bytes(example_manifest())[:-4] + head):
        tracemalloc.start()
        started = time.perf_counter()
        with pytest.raises(SuitError):
            decode_envelope(data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < 0.5
        assert peak < 1024 * 1024


def test_many_small_items_stay_bounded() -> None:
    """A manifest just under the size ceiling, all tiny items, decodes in bounded memory; one
    just over it is refused before any decoding."""
    manifest = example_manifest()
    manifest[99] = [0] * 250_000
    data = envelope_bytes(manifest)
    tracemalloc.start()
    env = decode_envelope(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(env.manifest.extensions[99]) == 250_000
    assert peak < 64 * 1024 * 1024
    manifest[99] = [0] * (MAX_MANIFEST_BYTES + 1)
    with pytest.raises(SuitLimitError, match="over the limit"):
        decode_envelope(envelope_bytes(manifest))


VENDOR = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
json_values = st.recursive(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.text(max_size=12),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
        st.sampled_from(["app.bin", "hex:00", "hex:zz", "install", "text", VENDOR, "#x"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)
component_keys = st.sampled_from([*sorted(COMPONENT_KEYS), "other"])
top_keys = st.sampled_from(
    [
        "sequence-number",
        "reference-uri",
        "vendor-id",
        "class-id",
        "severable",
        "text",
        "components",
        "other",
    ]
)


@st.composite
def descriptions(draw: st.DrawFn) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sequence-number": 1,
        "vendor-id": VENDOR,
        "class-id": VENDOR,
        "components": [{"id": ["app"], "file": "app.bin"}],
    }
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            base[draw(top_keys)] = draw(json_values)
        else:
            base["components"] = (
                [dict(base["components"][0])]
                if isinstance(base.get("components"), list)
                and base["components"]
                and isinstance(base["components"][0], dict)
                else [{}]
            )
            base["components"][0][draw(component_keys)] = draw(json_values)
    return base


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    (folder / "app.bin").write_bytes(b"image bytes")
    return folder


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(description=descriptions())
def test_random_descriptions_raise_only_suit_error(
    images: Path, description: dict[str, Any]
) -> None:
    key = FUZZ_SIGNING_KEY
    try:
        data = create_envelope(description, key, base_dir=images)
    except SuitError:
        return
    assert verify_envelope(data, key.public_key()).verified


FUZZ_SIGNING_KEY = keys.generate_private_key("ES256")


@FUZZ
@given(mutated())
def test_sign_and_sever_raise_only_suit_error(data: bytes) -> None:
    with contextlib.suppress(SuitError):
        signed = sign_envelope(data, FUZZ_SIGNING_KEY, append=True)
        assert verify_envelope(signed, FUZZ_SIGNING_KEY.public_key()).verified
    for member in (["text"], ["install", "text"], ["payload-fetch"], ["x"]):
        with contextlib.suppress(SuitError):
            sever_envelope(data, member)
