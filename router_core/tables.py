"""The routing store's tables. Metadata only: no column may ever hold request content."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    balance_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    free_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    # Part of the balance held by core replicas as leases (see router_core/credits.py).
    # Invariant kept by conditional updates: leased <= balance, except for settled overshoot.
    leased_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    # Requests per minute of all the project's keys together; NULL: no project-wide limit.
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A tombstone: set when the project's account is deleted. Its keys are revoked in the same
    # transaction and no key can be created in it afterwards.
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CreditLease(Base):
    """One replica's lease of one project's balance, so a crashed replica's lease can be reclaimed."""

    __tablename__ = "credit_leases"

    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    renewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Requests per minute of this key; NULL: the configured default ([core] rate_limit_rpm), 0: none.
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What the key may spend per calendar month (UTC); None: no limit of its own.
    spend_limit_micro_usd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A limited key's spend, kept with its usage events' charges in each usage write, and the
    # estimates of its requests in flight on every replica (router_core/key_spend.py). Admission
    # is one conditional UPDATE: limit - month_spend (of spend_month, "YYYY-MM") - held >= estimate.
    month_spend_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    spend_month: Mapped[str] = mapped_column(String(7), default="", server_default=text("''"))
    spend_held_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class KeySpendHold(Base):
    """One replica's holds on one key's spend limit, so a crashed replica's holds can be reclaimed."""

    __tablename__ = "key_spend_holds"

    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    renewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CreditEntry(Base):
    """The credit ledger: every credit, refund debit and adjustment, once per idempotency key."""

    __tablename__ = "credit_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UsageEvent(Base):
    """One row per request, answered or refused: who, which model and channel, how many tokens,
    what it cost, and for a failure the error code the client got. Never content."""

    __tablename__ = "usage_events"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    project_id: Mapped[str] = mapped_column(String(36))
    key_id: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(40))
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    ttfb_ms: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str] = mapped_column(String(64), default="", server_default=text("''"))
    requested_model: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))

    __table_args__ = (Index("ix_usage_project_time", "project_id", "time"),
                      Index("ix_usage_key_time", "key_id", "time"))


class UsageBatch(Base):
    """A usage batch that was written: its token commits with its events and charges, so a
    retry after an unclear commit finds it and writes nothing twice. Kept a day."""

    __tablename__ = "usage_batches"

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    written_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ResponseOwner(Base):
    """Which project created a response the provider stores (Responses API): ids only.

    OpenAI and xAI keep Responses API objects under the channel's provider key, which every
    project shares; this row is what lets `previous_response_id` be honoured for its owner only.
    """

    __tablename__ = "response_owners"

    response_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
