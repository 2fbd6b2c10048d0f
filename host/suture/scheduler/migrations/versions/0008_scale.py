"""Scheduler scale: the rollout entries' wave index also covers their state, so the counts per
wave and state (the status page, every advancement pass) are read from the index alone.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_rollout_devices_rollout_wave_state", "rollout_devices",
                    ["rollout_id", "wave", "state"], unique=False)
    op.drop_index("ix_rollout_devices_rollout_wave", table_name="rollout_devices")


def downgrade() -> None:
    op.create_index("ix_rollout_devices_rollout_wave", "rollout_devices",
                    ["rollout_id", "wave"], unique=False)
    op.drop_index("ix_rollout_devices_rollout_wave_state", table_name="rollout_devices")
