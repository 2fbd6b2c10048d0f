"""Operator accounts with roles and passwords, API tokens, approvals bound to what they
approved, decommissioned devices, a keyed audit log whose append-only rule also refuses
REPLACE/upsert, TRUNCATE and out-of-order inserts.

Operators from before this revision keep their account and token (the token now expires 30
days after the upgrade) but hold no role until an administrator grants one. Approvals from
before it bound nothing: they no longer count (their digest is empty). Audit records from
before it have no MAC: the audit key made at the next ``suture scheduler init`` covers the
records after them (``keyed_from_seq``), and its chain hash covers them too.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: How long an operator token from before this revision keeps working.
MIGRATED_TOKEN_TTL_S = 30 * 24 * 3600

_operators = sa.table("operators", sa.column("name", sa.String),
                      sa.column("token_hash", sa.String), sa.column("created_at", sa.BigInteger),
                      sa.column("roles", sa.JSON))
_tokens = sa.table("api_tokens", sa.column("id", sa.Integer), sa.column("operator", sa.String),
                   sa.column("name", sa.String),
                   sa.column("token_hash", sa.String), sa.column("created_at", sa.BigInteger),
                   sa.column("created_by", sa.String), sa.column("expires_at", sa.BigInteger))
_rollouts = sa.table("rollouts", sa.column("id", sa.Integer), sa.column("created_by", sa.String),
                     sa.column("authors", sa.JSON))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    conn = op.get_bind()
    old_tokens = conn.execute(sa.select(_operators.c.name, _operators.c.token_hash,
                                        _operators.c.created_at)).all()

    op.add_column("operators", sa.Column("roles", sa.JSON(), nullable=False,
                                         server_default=sa.text("'[]'")))
    op.add_column("operators", sa.Column("password_hash", sa.String(length=255), nullable=True))
    op.add_column("operators", sa.Column("created_by", sa.String(length=64), nullable=False,
                                         server_default=""))
    op.add_column("operators", sa.Column("disabled_at", sa.BigInteger(), nullable=True))
    op.add_column("operators", sa.Column("failed_logins", sa.Integer(), nullable=False,
                                         server_default="0"))
    op.add_column("operators", sa.Column("locked_until", sa.BigInteger(), nullable=True))
    # A plain ALTER (SQLite >= 3.35 drops a column in place): a batch copy would drop the table.
    op.drop_column("operators", "token_hash")

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["operator"], ["operators.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_operator", "api_tokens", ["operator"], unique=False)
    expires = int(time.time()) + MIGRATED_TOKEN_TTL_S
    if old_tokens:
        conn.execute(_tokens.insert(), [
            {"operator": name, "name": "migrated", "token_hash": digest, "created_at": created,
             "created_by": "migration 0003", "expires_at": expires}
            for name, digest, created in old_tokens])

    op.add_column("rollout_approvals", sa.Column("digest", sa.String(length=64), nullable=False,
                                                 server_default=""))
    op.add_column("rollouts", sa.Column("authors", sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))
    for rollout_id, created_by in conn.execute(sa.select(_rollouts.c.id,
                                                         _rollouts.c.created_by)).all():
        conn.execute(_rollouts.update().where(_rollouts.c.id == rollout_id)
                     .values(authors=[created_by]))
    op.add_column("devices", sa.Column("decommissioned_at", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("mac", sa.String(length=64), nullable=True))
    op.add_column("audit_head", sa.Column("mac", sa.String(length=64), nullable=True))

    for statement in _GUARDS.get(dialect, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    conn = op.get_bind()
    for statement in _DROP_GUARDS.get(dialect, ()):
        op.execute(statement)
    # Dropping a column of the append-only log: SQLite's in-place DROP COLUMN rewrites rows
    # without firing row triggers; PostgreSQL's is a catalogue change.
    op.drop_column("audit_head", "mac")
    op.drop_column("audit_log", "mac")
    op.drop_column("devices", "decommissioned_at")
    op.drop_column("rollouts", "authors")
    op.drop_column("rollout_approvals", "digest")
    newest = dict(conn.execute(
        sa.select(_tokens.c.operator, _tokens.c.token_hash).order_by(_tokens.c.id)
    ).tuples().all())
    op.drop_index("ix_api_tokens_operator", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.add_column("operators", sa.Column("token_hash", sa.String(length=64), nullable=False,
                                         server_default=""))
    for name, digest in newest.items():
        conn.execute(_operators.update().where(_operators.c.name == name)
                     .values(token_hash=digest))
    for column in ("locked_until", "failed_logins", "disabled_at", "created_by",
                   "password_hash", "roles"):
        op.drop_column("operators", column)


_GUARDS = {
    "sqlite": (
        # BEFORE INSERT fires before conflict resolution: INSERT OR REPLACE and upserts of an
        # existing seq are refused here, as is any insert that is not the next record.
        "CREATE TRIGGER audit_log_append_at_end BEFORE INSERT ON audit_log "
        "WHEN NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log) "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: only the next seq'); END",
        "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
        "WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: the head only moves on'); END",
        "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: the head stays'); END",
        "CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head "
        "WHEN (SELECT COUNT(*) FROM audit_head) > 0 "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: one head'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION audit_log_append_at_end() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.seq <> (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log) THEN "
        "RAISE EXCEPTION 'audit log is append-only: only the next seq'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER audit_log_append_at_end BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_at_end()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
        "CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP <> 'UPDATE' OR NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN "
        "RAISE EXCEPTION 'audit log is append-only: the head only moves on'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()",
        "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ),
}
_DROP_GUARDS = {
    "sqlite": ("DROP TRIGGER audit_log_append_at_end", "DROP TRIGGER audit_head_forward_only",
               "DROP TRIGGER audit_head_no_delete", "DROP TRIGGER audit_head_no_insert"),
    "postgresql": (
        "DROP TRIGGER audit_head_no_truncate ON audit_head",
        "DROP TRIGGER audit_head_forward_only ON audit_head",
        "DROP FUNCTION audit_head_forward_only()",
        "DROP TRIGGER audit_log_no_truncate ON audit_log",
        "DROP TRIGGER audit_log_append_at_end ON audit_log",
        "DROP FUNCTION audit_log_append_at_end()",
    ),
}
