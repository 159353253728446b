"""Request rate limits per project and per key: a nullable requests-per-minute column on each.

NULL keeps every existing row as it was: a key follows the configured default
([core] rate_limit_rpm, off unless set) and a project has no project-wide limit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (batch mode only rebuilds a SQLite table when it must).
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("rate_limit_rpm", sa.Integer(), nullable=True))
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("rate_limit_rpm", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("rate_limit_rpm")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("rate_limit_rpm")
