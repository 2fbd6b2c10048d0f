"""Content-addressed file storage in the database: envelopes, payloads and SBOMs, kept in
``BLOB_CHUNK_SIZE`` rows so that every scheduler node can serve any byte range while holding
one chunk in memory at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.errors import NotFoundError
from suture.scheduler.models import BLOB_CHUNK_SIZE, Blob, BlobChunk

#: Chunks read per short transaction while streaming (256 KiB).
CHUNKS_PER_READ = 4


@dataclass(frozen=True)
class BlobRef:
    """A stored file: its SHA-256 (hex) and size."""

    digest: str
    size: int


def put_blob(session: Session, data: bytes) -> str:
    """Store ``data`` (once per content) in the caller's transaction; returns its digest."""
    digest = hashlib.sha256(data).hexdigest()
    if session.get(Blob, digest) is None:
        session.add(Blob(digest=digest, size=len(data)))
        session.flush()  # the parent row before its chunks (foreign key)
        session.add_all(
            BlobChunk(digest=digest, seq=seq, data=data[off : off + BLOB_CHUNK_SIZE])
            for seq, off in enumerate(range(0, len(data), BLOB_CHUNK_SIZE))
        )
    return digest


def blob_ref(session: Session, digest: str, what: str) -> BlobRef:
    blob = session.get(Blob, digest)
    if blob is None:
        raise NotFoundError(f"{what} missing")
    return BlobRef(digest, blob.size)


def iter_range(sessions: sessionmaker[Session], ref: BlobRef, start: int,
               end: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``end`` (inclusive) of a blob, ``CHUNKS_PER_READ`` chunks per short
    transaction (a response streams for as long as the client reads: no connection is held
    meanwhile)."""
    if not 0 <= start <= end < ref.size:
        raise ValueError(f"range {start}-{end} outside a blob of {ref.size} bytes")
    first, last = start // BLOB_CHUNK_SIZE, end // BLOB_CHUNK_SIZE
    for batch in range(first, last + 1, CHUNKS_PER_READ):
        upto = min(batch + CHUNKS_PER_READ - 1, last)
        with sessions() as session:
            rows = session.execute(
                select(BlobChunk.seq, BlobChunk.data)
                .where(BlobChunk.digest == ref.digest, BlobChunk.seq.between(batch, upto))
                .order_by(BlobChunk.seq)
            ).all()
        if [seq for seq, _ in rows] != list(range(batch, upto + 1)):
            raise NotFoundError(f"blob {ref.digest[:12]}: chunks {batch}..{upto} incomplete")
        for seq, data in rows:
            base = seq * BLOB_CHUNK_SIZE
            yield bytes(data[max(start - base, 0) : end - base + 1])


def read_blob_bytes(session: Session, ref: BlobRef) -> bytes:
    """The whole blob (for small files: envelopes, SBOMs, and tests)."""
    parts = session.execute(
        select(BlobChunk.data).where(BlobChunk.digest == ref.digest).order_by(BlobChunk.seq)
    ).scalars().all()
    data = b"".join(bytes(p) for p in parts)
    if len(data) != ref.size:
        raise NotFoundError(f"blob {ref.digest[:12]}: {len(data)} of {ref.size} bytes stored")
    return data
