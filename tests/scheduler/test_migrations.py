"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sched_world import postgres_url
from sqlalchemy import Engine, column, create_engine, inspect, make_url, select, table, text
from sqlalchemy.orm import Session
from suture.scheduler import migrate
from suture.scheduler.db import make_engine
from suture.scheduler.models import BLOB_CHUNK_SIZE, Base, BlobChunk
from suture.scheduler.services.blobs import BlobRef, read_blob_bytes


def test_migrated_schema_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert migrate.current_revision(engine) == "0002"


def test_upgrade_is_idempotent(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (no revision applied yet)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
        yield eng
        eng.dispose()
        return
    admin = create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    name = f"suture_mig_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(make_url(postgres_url()).set(database=name)
                      .render_as_string(hide_password=False))
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_0002_moves_blob_bytes_into_chunks_and_back(blank_engine: Engine) -> None:
    migrate.upgrade(blank_engine, "0001")
    files = {hashlib.sha256(d).hexdigest(): d
             for d in (b"", b"envelope", os.urandom(BLOB_CHUNK_SIZE), os.urandom(200_001))}
    blobs = table("blobs", column("digest"), column("size"), column("data"))
    with blank_engine.begin() as conn:
        conn.execute(blobs.insert(), [{"digest": k, "size": len(v), "data": v}
                                      for k, v in files.items()])
    migrate.upgrade(blank_engine)
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
