"""A key's spend limit is held like project credit: a counter of the month's spend and of the
estimates in flight on the key's row, and one row per replica holding part of it.

Keys that have a limit get this month's charges counted from their usage events, so a limit
already reached stays reached after the upgrade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("month_spend_micro_usd", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("spend_month", sa.String(length=7), nullable=False, server_default=sa.text("''")))
        batch.add_column(sa.Column("spend_held_micro_usd", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    op.create_table(
        "key_spend_holds",
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("amount_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("holder", "key_id"),
    )
    now = dt.datetime.now(dt.timezone.utc)
    since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    op.get_bind().execute(sa.text(
        "UPDATE api_keys SET spend_month = :month, month_spend_micro_usd = COALESCE(("
        " SELECT SUM(e.charged_micro_usd) FROM usage_events e"
        " WHERE e.key_id = api_keys.id AND e.time >= :since), 0)"
        " WHERE spend_limit_micro_usd IS NOT NULL"
    ).bindparams(sa.bindparam("since", type_=sa.DateTime(timezone=True))),  # stored as the ORM stores it
        {"month": now.strftime("%Y-%m"), "since": since})


def downgrade() -> None:
    op.drop_table("key_spend_holds")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("spend_held_micro_usd")
        batch.drop_column("spend_month")
        batch.drop_column("month_spend_micro_usd")
