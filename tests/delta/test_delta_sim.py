"""Delta updates on the simulated board, end to end: a patch from the installed application
staged, verified against the target digest and installed like a full update; a patch for
another source refused before anything is written; a corrupt patch caught (FAILED, nothing
installed); the full payload then installs (the fallback). docs/formats/delta.md runs these
tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from delta_helpers import delta_for, sign_delta
from suture.sim.testing import Provisioned, example_app, sign_payload

V1 = example_app(1, filler=20000)
V2 = example_app(2, filler=20000)  # one line of main.py and lib/util.py changed; data shifted


def _stage_delta(p: Provisioned, patch: bytes, envelope: bytes, name: str = "d") -> list[str]:
    env = p.board.put_file(f"{name}.suit", envelope)
    pay = p.board.put_file(f"{name}.delta", patch)
    return ["stage", env, pay]


def test_delta_installs_like_a_full_update(make_device: Callable[..., Provisioned]) -> None:
    p = make_device(app=V1)
    d = delta_for(V1, V2)
    assert len(d.patch) < len(V2) // 4
    r = p.device.run(_stage_delta(p, d.patch, sign_delta(d, 2, p.key)))
    assert r.ok, r.stdout + r.stderr
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.state.name, rec.digest) == ("STAGED", d.target_digest)
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.ok, r.stdout
    rep = r.report()
    assert (rep["state"], rep["installed_version"]) == ("TRIAL", 2)
    assert "APP 2" in r.stdout


def test_wrong_source_is_refused_before_any_write(make_device: Callable[..., Provisioned]) -> None:
    p = make_device(app=V1)
    other = example_app(1, filler=20001)
    d = delta_for(other, V2)
    cmd = _stage_delta(p, d.patch, sign_delta(d, 2, p.key))
    before = p.board.snapshot()
    r = p.device.run(cmd)
    assert not r.ok
    assert "source image" in r.stdout + r.stderr
    assert r.ops_count == 0  # not one erase or program: no journal record, no backup
    assert p.board.snapshot() == before


def test_corrupt_patch_is_caught_then_full_payload_installs(
    make_device: Callable[..., Provisioned],
) -> None:
    p = make_device(app=V1)
    d = delta_for(V1, V2)
    bad = bytearray(d.patch)
    bad[len(bad) // 2] ^= 0x40  # inside a segment's zlib stream
    r = p.device.run(_stage_delta(p, bytes(bad), sign_delta(d, 2, p.key)))
    assert not r.ok
    rec = p.board.current_record()
    assert rec is not None
    assert rec.state.name == "FAILED"
    assert rec.progress in (31, 35)  # DigestError or DeltaError
    r = p.device.run(["boot"], ["app"], ["report"])
    assert r.report()["installed_version"] == 1
    assert "APP 1" in r.stdout
    # the fallback: the full payload of the same release
    env = p.board.put_file("v2.suit", sign_payload(V2, 2, p.key))
    r = p.device.run(["stage", env, p.board.put_file("v2.bundle", V2)])
    assert r.ok, r.stdout
    r = p.device.run(["boot"], ["app"], ["report"])
    assert (r.report()["state"], r.report()["installed_version"]) == ("TRIAL", 2)


def _flip(at: int) -> Callable[[bytes], bytes]:
    def flip(patch: bytes) -> bytes:
        bad = bytearray(patch)
        bad[at % len(bad)] ^= 0x01
        return bytes(bad)

    return flip


def _cut(patch: bytes) -> bytes:
    return patch[:-1]


def _longer(patch: bytes) -> bytes:
    return patch + b"\0"


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "header": _flip(30),  # the source digest: the header's CRC fails
    "table": _flip(100),  # the first segment's offset: the table's CRC fails
    "last segment": _flip(-8),
    "cut short": _cut,
    "one byte more": _longer,
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_every_corruption_is_caught(make_device: Callable[..., Provisioned], how: str) -> None:
    p = make_device(app=V1)
    d = delta_for(V1, V2)
    r = p.device.run(_stage_delta(p, CORRUPTIONS[how](d.patch), sign_delta(d, 2, p.key)))
    assert not r.ok
    rec = p.board.current_record()
    assert rec is not None
    assert (rec.state.name, rec.progress in (30, 31, 35)) == ("FAILED", True), rec
    r = p.device.run(["boot"], ["app"], ["report"])
    assert (r.report()["state"], r.report()["installed_version"]) == ("FAILED", 1)
    assert "APP 1" in r.stdout
