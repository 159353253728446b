"""Usage events count input tokens written to a prompt cache (Anthropic's Messages API).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows already there wrote no cache: they get 0. The default is then dropped, as the model
    # sets the value on every insert (and the other counters have no server default either).
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("usage_events") as batch:
        batch.alter_column("cache_write_tokens", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("cache_write_tokens")
