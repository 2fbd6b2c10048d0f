"""Tenants (the vendor-run scheduler): the registered tenants, each operator's, rollout's and
audit record's tenant, and one biscuit per device, rollout and release (a device that passes
through earlier releases downloads each of them from the vendor).

Everything from before this revision belongs to the ``DEFAULT`` tenant, the only one of a
hospital's own scheduler; a device belongs to the tenant its ``tenant`` column names once that
tenant is registered. The biscuits kept are those of each rollout's own release.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TENANT_COLUMNS = ("operators", "rollouts", "audit_log")
_COPY_ASIDE = ("CREATE TABLE device_biscuits_copy AS SELECT rollout_id, device_id, token, "
               "revocation_id, not_before, expires_at, issued_at FROM device_biscuits")
_COPY_ASIDE_OWN_RELEASE = (
    "CREATE TABLE device_biscuits_copy AS SELECT rollout_id, device_id, token, revocation_id, "
    "not_before, expires_at, issued_at FROM device_biscuits WHERE device_biscuits.release_id = "
    "(SELECT r.release_id FROM rollouts r WHERE r.id = device_biscuits.rollout_id)")
_COPY_BACK = ("INSERT INTO device_biscuits (rollout_id, device_id, token, revocation_id, "
              "not_before, expires_at, issued_at) SELECT rollout_id, device_id, token, "
              "revocation_id, not_before, expires_at, issued_at FROM device_biscuits_copy")
_COPY_BACK_WITH_RELEASE = (
    "INSERT INTO device_biscuits (rollout_id, device_id, token, revocation_id, not_before, "
    "expires_at, issued_at, release_id) SELECT c.rollout_id, c.device_id, c.token, "
    "c.revocation_id, c.not_before, c.expires_at, c.issued_at, r.release_id "
    "FROM device_biscuits_copy c JOIN rollouts r ON r.id = c.rollout_id")


def _biscuit_table(name: str, *, with_release: bool) -> None:
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("revocation_id", sa.String(length=128), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
    ]
    if with_release:
        columns += [sa.Column("release_id", sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(["release_id"], ["releases.id"]),
                    sa.PrimaryKeyConstraint("rollout_id", "device_id", "release_id")]
    else:
        columns.append(sa.PrimaryKeyConstraint("rollout_id", "device_id"))
    op.create_table(name, *columns)


def _rebuild_biscuits(*, with_release: bool) -> None:
    """Copy the biscuits aside, make the table again with the other key, copy them back
    (the rollout's own release is the one a biscuit of the old table is for)."""
    op.execute(_COPY_ASIDE if with_release else _COPY_ASIDE_OWN_RELEASE)
    op.drop_table("device_biscuits")
    _biscuit_table("device_biscuits", with_release=with_release)
    op.execute(_COPY_BACK_WITH_RELEASE if with_release else _COPY_BACK)
    op.drop_table("device_biscuits_copy")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    for table in _TENANT_COLUMNS:
        op.add_column(table, sa.Column("tenant", sa.String(length=64), nullable=False,
                                       server_default="DEFAULT"))
    _rebuild_biscuits(with_release=True)


def downgrade() -> None:
    _rebuild_biscuits(with_release=False)
    # Plain ALTERs (SQLite >= 3.35 drops a column in place): a batch copy would drop tables
    # that other tables' foreign keys name.
    for table in _TENANT_COLUMNS:
        op.drop_column(table, "tenant")
    op.drop_table("tenants")
