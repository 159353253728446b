"""Usage batches carry a token, written in the batch's own transaction: a batch retried after
a commit whose answer was lost (the connection cut mid-COMMIT) is found written, never billed
twice. Rows older than a day are deleted by the writer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_batches",
        sa.Column("token", sa.String(40), primary_key=True),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_batches_written_at", "usage_batches", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_batches_written_at", table_name="usage_batches")
    op.drop_table("usage_batches")
