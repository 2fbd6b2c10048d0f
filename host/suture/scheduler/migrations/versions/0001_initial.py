"""Initial schema: devices, releases, rollouts, audit log; the audit log is append-only.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("board", sa.String(length=64), nullable=False),
        sa.Column("vendor_id", sa.String(length=64), nullable=False),
        sa.Column("class_id", sa.String(length=64), nullable=False),
        sa.Column("ward", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("criticality", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("installed", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("credential_generation", sa.Integer(), nullable=False),
        sa.Column("credential_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("last_counter", sa.BigInteger(), nullable=False),
        sa.Column("schedule_number", sa.BigInteger(), nullable=False),
        sa.Column("schedule_decision", sa.String(length=64), nullable=False),
        sa.Column("schedule_document", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "operators",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "device_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.create_index("ix_device_events_device_at", ["device_id", "at"], unique=False)

    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.String(length=64), nullable=False),
        sa.Column("class_id", sa.String(length=64), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("sequence_number", sa.BigInteger(), nullable=False),
        sa.Column("envelope_digest", sa.String(length=64), nullable=False),
        sa.Column("envelope_size", sa.BigInteger(), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("payload_size", sa.BigInteger(), nullable=False),
        sa.Column("sbom_digest", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("must_pass_through", sa.Boolean(), nullable=False),
        sa.Column("requires", sa.JSON(), nullable=False),
        sa.Column("recalled", sa.Boolean(), nullable=False),
        sa.Column("recalled_at", sa.BigInteger(), nullable=True),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["envelope_digest"],
            ["blobs.digest"],
        ),
        sa.ForeignKeyConstraint(
            ["payload_digest"],
            ["blobs.digest"],
        ),
        sa.ForeignKeyConstraint(
            ["sbom_digest"],
            ["blobs.digest"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "class_id", "component", "sequence_number"),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("target_groups", sa.JSON(), nullable=False),
        sa.Column("target_filter", sa.Text(), nullable=False),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("order", sa.String(length=16), nullable=False),
        sa.Column("success_threshold", sa.Float(), nullable=False),
        sa.Column("error_threshold", sa.Float(), nullable=False),
        sa.Column("error_min_sample", sa.Integer(), nullable=False),
        sa.Column("on_error", sa.String(length=8), nullable=False),
        sa.Column("window_cron", sa.String(length=128), nullable=True),
        sa.Column("window_duration_s", sa.Integer(), nullable=True),
        sa.Column("window_tz", sa.String(length=64), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=True),
        sa.Column("download_only", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_count", sa.Integer(), nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("revert_on_abort", sa.Boolean(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rollout_approvals",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rollout_id", "operator"),
    )
    op.create_table(
        "rollout_devices",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step_release_id", sa.Integer(), nullable=True),
        sa.Column("busy_skips", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["step_release_id"],
            ["releases.id"],
        ),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )
    with op.batch_alter_table("rollout_devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollout_devices_device_state", ["device_id", "state"], unique=False
        )
        batch_op.create_index(
            "ix_rollout_devices_rollout_wave", ["rollout_id", "wave"], unique=False
        )
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.BigInteger),
            sa.column("hash", sa.String),
        ),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )
    for statement in _APPEND_ONLY.get(op.get_bind().dialect.name, ()):
        op.execute(statement)


def downgrade() -> None:
    for statement in _DROP_APPEND_ONLY.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    with op.batch_alter_table("rollout_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_rollout_devices_rollout_wave")
        batch_op.drop_index("ix_rollout_devices_device_state")

    op.drop_table("rollout_devices")
    op.drop_table("rollout_approvals")
    op.drop_table("rollouts")
    op.drop_table("releases")
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.drop_index("ix_device_events_device_at")

    op.drop_table("device_events")
    op.drop_table("operators")
    op.drop_table("devices")
    op.drop_table("blobs")
    op.drop_table("audit_log")
    op.drop_table("audit_head")


# The audit log refuses UPDATE and DELETE at the database level too.
_APPEND_ONLY = {
    "sqlite": (
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    ),
}
_DROP_APPEND_ONLY = {
    "sqlite": ("DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"),
    "postgresql": (
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "DROP FUNCTION audit_log_append_only()",
    ),
}
