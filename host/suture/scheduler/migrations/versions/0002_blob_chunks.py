"""Blob bytes move into 64 KiB chunks (``blob_chunks``): a download streams its range.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 64 * 1024  # models.BLOB_CHUNK_SIZE when this revision was written

_blobs = sa.table("blobs", sa.column("digest", sa.String), sa.column("data", sa.LargeBinary))
_chunks = sa.table("blob_chunks", sa.column("digest", sa.String), sa.column("seq", sa.Integer),
                   sa.column("data", sa.LargeBinary))


def upgrade() -> None:
    op.create_table(
        "blob_chunks",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("digest", "seq"),
    )
    conn = op.get_bind()
    digests = conn.execute(sa.select(_blobs.c.digest)).scalars().all()
    for digest in digests:  # one blob in memory at a time
        data = conn.execute(sa.select(_blobs.c.data).where(_blobs.c.digest == digest)).scalar_one()
        rows = [{"digest": digest, "seq": i, "data": bytes(data[off : off + CHUNK])}
                for i, off in enumerate(range(0, len(data), CHUNK))]
        if rows:
            conn.execute(_chunks.insert(), rows)
    # A plain ALTER (SQLite >= 3.35 drops a column in place): a batch copy of the table would
    # have to drop `blobs`, which the foreign keys of releases and blob_chunks forbid.
    op.drop_column("blobs", "data")


def downgrade() -> None:
    op.add_column("blobs", sa.Column("data", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    for digest in conn.execute(sa.select(_blobs.c.digest)).scalars().all():
        parts = conn.execute(sa.select(_chunks.c.data).where(_chunks.c.digest == digest)
                             .order_by(_chunks.c.seq)).scalars().all()
        conn.execute(_blobs.update().where(_blobs.c.digest == digest)
                     .values(data=b"".join(parts)))
    op.drop_table("blob_chunks")  # `data` stays nullable: SQLite cannot tighten it in place
