"""Keys get an optional monthly spend limit and expiry; usage events record refused requests.

New nullable key columns (existing keys: no limit, no expiry); the two event columns are empty
for every request recorded before (they were all answered, or failed upstream without a code).
The index serves a limited key's month-to-date spend.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spend_limit_micro_usd", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=64), server_default=sa.text("''"), nullable=False))
        batch_op.add_column(sa.Column("requested_model", sa.String(length=200), server_default=sa.text("''"), nullable=False))
        batch_op.create_index("ix_usage_key_time", ["key_id", "time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_key_time")
        batch_op.drop_column("requested_model")
        batch_op.drop_column("error_code")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("spend_limit_micro_usd")
