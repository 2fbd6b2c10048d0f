"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import hashlib
import os
import time

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, column, inspect, select, table, text
from sqlalchemy.orm import Session
from suture.scheduler import migrate
from suture.scheduler.models import BLOB_CHUNK_SIZE, Base, BlobChunk
from suture.scheduler.services.blobs import BlobRef, read_blob_bytes


def test_migrated_schema_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    # and each table's key in the models' column order (which compare_metadata does not see)
    found = inspect(engine)
    for name, model in Base.metadata.tables.items():
        assert found.get_pk_constraint(name)["constrained_columns"] == [
            c.name for c in model.primary_key.columns], name
    assert migrate.current_revision(engine) == migrate.head_revision() == "0014"


def test_upgrade_is_idempotent(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_0002_moves_blob_bytes_into_chunks_and_back(blank_engine: Engine) -> None:
    migrate.upgrade(blank_engine, "0001")
    files = {hashlib.sha256(d).hexdigest(): d
             for d in (b"", b"envelope", os.urandom(BLOB_CHUNK_SIZE), os.urandom(200_001))}
    blobs = table("blobs", column("digest"), column("size"), column("data"))
    with blank_engine.begin() as conn:
        conn.execute(blobs.insert(), [{"digest": k, "size": len(v), "data": v}
                                      for k, v in files.items()])
    migrate.upgrade(blank_engine, "0002")
    assert migrate.current_revision(blank_engine) == "0002"
    with Session(blank_engine) as session:
        for digest, data in files.items():
            ref = BlobRef(digest, len(data))
            assert read_blob_bytes(session, ref) == data
        seqs = session.execute(select(BlobChunk.seq).where(
            BlobChunk.digest == hashlib.sha256(files_big := max(files.values(), key=len))
            .hexdigest()).order_by(BlobChunk.seq)).scalars().all()
    assert seqs == list(range(-(-len(files_big) // BLOB_CHUNK_SIZE)))
    migrate.downgrade(blank_engine, "0001")
    with blank_engine.connect() as conn:
        back = dict(conn.execute(select(blobs.c.digest, blobs.c.data)).tuples().all())
    assert {k: bytes(v) for k, v in back.items()} == files


def test_0003_keeps_operators_and_their_tokens(blank_engine: Engine) -> None:
    """An operator of 0002 keeps its token (now expiring) and holds no role until one is
    granted; a rollout's creator becomes its first author; an old approval binds nothing."""
    from suture.scheduler.services import operators

    migrate.upgrade(blank_engine, "0002")
    old_token = "sto_from-before-roles"
    ops = table("operators", column("name"), column("token_hash"), column("created_at"),
                column("active"))
    blobs = table("blobs", column("digest"), column("size"))
    rels = table("releases", *(column(c) for c in (
        "id", "vendor_id", "class_id", "component", "sequence_number", "envelope_digest",
        "envelope_size", "payload_digest", "payload_size", "notes", "must_pass_through",
        "requires", "recalled", "imported_at", "imported_by")))
    ros = table("rollouts", *(column(c) for c in (
        "id", "name", "release_id", "target_groups", "target_filter", "waves", "order",
        "success_threshold", "error_threshold", "error_min_sample", "on_error", "window_tz",
        "download_only", "state", "current_wave", "wave_count", "target_count",
        "required_approvals", "revert_on_abort", "status_reason", "created_by", "created_at",
        "version")))
    approvals = table("rollout_approvals", column("rollout_id"), column("operator"), column("at"))
    digest = hashlib.sha256(b"x").hexdigest()
    with blank_engine.begin() as conn:
        conn.execute(ops.insert(), [{"name": "alice", "created_at": 1, "active": True,
                                     "token_hash": hashlib.sha256(old_token.encode()).hexdigest()}])
        conn.execute(blobs.insert(), [{"digest": digest, "size": 1}])
        conn.execute(rels.insert(), [{
            "id": 1, "vendor_id": "v", "class_id": "c", "component": "app",
            "sequence_number": 2, "envelope_digest": digest, "envelope_size": 1,
            "payload_digest": digest, "payload_size": 1, "notes": "", "must_pass_through": False,
            "requires": "[]", "recalled": False, "imported_at": 1, "imported_by": "alice"}])
        conn.execute(ros.insert(), [{
            "id": 1, "name": "r", "release_id": 1, "target_groups": '["g"]',
            "target_filter": "", "waves": '["100%"]', "order": "oldest-first",
            "success_threshold": 0.9, "error_threshold": 0.2, "error_min_sample": 5,
            "on_error": "pause", "window_tz": "UTC", "download_only": False,
            "state": "awaiting_approval", "current_wave": 0, "wave_count": 1,
            "target_count": 1, "required_approvals": 1, "revert_on_abort": False,
            "status_reason": "", "created_by": "alice", "created_at": 1, "version": 1}])
        conn.execute(approvals.insert(), [{"rollout_id": 1, "operator": "bob", "at": 2}])
    migrate.upgrade(blank_engine)
    with Session(blank_engine) as session:
        me = operators.authenticate_token(session, token=old_token, now=int(time.time()))
        assert (me.name, me.roles) == ("alice", frozenset())
    with blank_engine.connect() as conn:
        assert conn.execute(text("SELECT authors FROM rollouts")).scalar_one() in (
            '["alice"]', ["alice"])
        assert conn.execute(text("SELECT digest FROM rollout_approvals")).scalar_one() == ""
        expires = conn.execute(text("SELECT expires_at FROM api_tokens")).scalar_one()
    assert 29 * 86400 < expires - time.time() <= 30 * 86400
    migrate.downgrade(blank_engine, "0002")
    with blank_engine.connect() as conn:
        assert conn.execute(text("SELECT token_hash FROM operators")).scalar_one() == \
            hashlib.sha256(old_token.encode()).hexdigest()
    migrate.upgrade(blank_engine)
    assert migrate.current_revision(blank_engine) == "0014"
