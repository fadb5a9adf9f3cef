"""webhooks: a job's webhook, the workspace default, and the delivery outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing jobs and workspaces have none.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook", sa.JSON(), nullable=True))
    with op.batch_alter_table("image_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_webhook", sa.JSON(), nullable=True))

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_us", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_job", ["job_id", "sequence"], unique=False)
        batch_op.create_index(
            "ix_webhook_deliveries_due", ["state", "next_attempt_us"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_due")
        batch_op.drop_index("ix_webhook_deliveries_job")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("image_settings", schema=None) as batch_op:
        batch_op.drop_column("default_webhook")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("webhook")
