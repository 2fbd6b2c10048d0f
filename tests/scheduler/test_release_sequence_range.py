"""The scheduler's release import verifies the envelope with suture.suit, whose limit on the
sequence number is u32 (the device journal's field): a release numbered 2^32 or more is refused
with nothing stored, 2^32 - 1 is imported."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from sched_world import AUDIT_KEY, World, make_envelope, sbom_path
from sqlalchemy import Engine, func, select
from suture.cose import sign1
from suture.keys import PrivateKey
from suture.scheduler.clock import ManualClock
from suture.scheduler.db import make_session_factory
from suture.scheduler.errors import ReleaseVerificationError
from suture.scheduler.models import Release
from suture.scheduler.services import releases
from suture.scheduler.services.schedules import ScheduleContext
from suture.suit.digest import digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope


@pytest.fixture
def world(sqlite_engine: Engine, clock: ManualClock, ctx: ScheduleContext,
          scheduler_key: PrivateKey, vendor_key: PrivateKey, tmp_path: Path) -> World:
    """The import is the suit library's verify, the same on both databases: SQLite only."""
    return World(make_session_factory(sqlite_engine, audit_key=AUDIT_KEY), clock, ctx,
                 scheduler_key, vendor_key, tmp_path)


def _import(world: World, envelope: bytes, payload: bytes, seq: int) -> Release:
    return releases.import_release(
        world.session(), envelope=envelope, payload=payload,
        sbom=sbom_path(world.tmp, seq).read_bytes(), notes=None,
        trust_anchors=[world.vendor_key.public_key()], actor=world.alice,
        now=world.clock.now())


def _renumbered(world: World, envelope: bytes, seq: int) -> bytes:
    """envelope with its sequence number replaced, signed again by the vendor key (below the
    builder, which refuses such a number)."""
    outer = dict(cbor2.loads(envelope).value)
    manifest = dict(cbor2.loads(outer[3]))
    manifest[2] = seq
    manifest_bstr = cbor2.dumps(manifest)
    digest = encode_digest(digest_wrapped(manifest_bstr))
    auth = encode_auth_wrapper(digest, [sign1(None, world.vendor_key, detached_payload=digest)])
    return encode_envelope(auth_wrapper=auth, manifest=manifest_bstr)


@pytest.mark.parametrize("seq", [2**32, 2**32 + 3])
def test_release_beyond_u32_is_refused(world: World, seq: int) -> None:
    envelope, payload = make_envelope(world.vendor_key, world.tmp, 7)
    with pytest.raises(ReleaseVerificationError, match=str(seq)):
        _import(world, _renumbered(world, envelope, seq), payload, 7)
    with world.session() as s:
        assert s.execute(select(func.count()).select_from(Release)).scalar_one() == 0


def test_release_u32_max_is_imported(world: World) -> None:
    envelope, payload = make_envelope(world.vendor_key, world.tmp, 2**32 - 1)
    assert _import(world, envelope, payload, 2**32 - 1).sequence_number == 2**32 - 1
