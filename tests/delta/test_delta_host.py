"""The host's builder and applier: every patch applies to its target, whatever the edit and the
segment size; a patch that is cut, flipped or applied to another source is a DeltaError, never
another exception nor a wrong image (hypothesis)."""

from __future__ import annotations

import contextlib
import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture.delta import DeltaError, apply, build, make_delta
from suture.delta import format as fmt

SOURCE = bytes(random.Random(18).getrandbits(8) for _ in range(20000))


def _edit(data: bytes, at: int, cut: int, insert: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + insert + data[at + cut :]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    at=st.integers(0, 20000), cut=st.integers(0, 3000), insert=st.binary(max_size=3000),
    segment=st.sampled_from([4096, 8192, 32768]), wbits=st.integers(9, 15),
)
def test_every_patch_applies_to_its_target(
    at: int, cut: int, insert: bytes, segment: int, wbits: int
) -> None:
    target = _edit(SOURCE, at, cut, insert) or b"\x00"
    patch = build(SOURCE, target, segment_size=segment, window_bits=wbits)
    h = fmt.decode_header(patch)
    assert (h.target_size, h.segments) == (len(target), -(-len(target) // segment))
    assert apply(SOURCE, patch) == target


TARGET = _edit(SOURCE, 5000, 10, b"a one-line change\n")
PATCH = build(SOURCE, TARGET, segment_size=4096)


@settings(max_examples=300, deadline=None)
@given(i=st.integers(0, len(PATCH) - 1), mask=st.integers(1, 255))
def test_a_flipped_byte_is_refused(i: int, mask: int) -> None:
    """Refused, or (a flip in the padding bits of a deflate stream's last byte, which no
    decoder reads) the very same target: never another image. The device also checks the
    patch's own digest from the manifest."""
    bad = bytearray(PATCH)
    bad[i] ^= mask
    with contextlib.suppress(DeltaError):
        assert apply(SOURCE, bytes(bad)) == TARGET


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(DeltaError):
        apply(SOURCE, data)
    with pytest.raises(DeltaError):
        apply(SOURCE, PATCH[:96] + data)


@pytest.mark.parametrize("n", [0, 1, 95, 96, len(PATCH) // 2, len(PATCH) - 1])
def test_a_cut_patch_is_refused(n: int) -> None:
    with pytest.raises(DeltaError):
        apply(SOURCE, PATCH[:n])


def test_another_source_is_refused() -> None:
    with pytest.raises(DeltaError, match="source"):
        apply(SOURCE[:-1] + b"\x00", PATCH)


def test_a_release_describes_its_patch() -> None:
    target = _edit(SOURCE, 100, 0, b"x")
    d = make_delta(SOURCE, target)
    comp = d.component(["app"], "https://u/app.delta")
    assert comp["digest"] == hashlib.sha256(target).hexdigest()
    assert comp["delta"]["digest"] == hashlib.sha256(d.patch).hexdigest()
    assert comp["delta"]["source-size"] == len(SOURCE)
    assert len(d.patch) < len(target) // 20


def test_images_that_cannot_be_patched() -> None:
    with pytest.raises(DeltaError, match="empty"):
        build(SOURCE, b"")
    with pytest.raises(DeltaError, match="segment size"):
        build(SOURCE, SOURCE, segment_size=1000)
    with pytest.raises(DeltaError, match="window"):
        build(SOURCE, SOURCE, window_bits=16)
