"""The account app's client of the core: AdminService and the read-only MeteringService.

Every call carries the service credential as `authorization: Bearer <token>` metadata. gRPC
errors become the few exceptions below, so views never handle a grpc.RpcError.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from account.settings import Secret
from onekey.v1 import admin_pb2, admin_pb2_grpc, metering_pb2, metering_pb2_grpc, router_pb2, router_pb2_grpc

logger = logging.getLogger(__name__)


class CoreError(Exception):
    """The core refused or failed a call; the message is safe to show."""


class CoreUnavailable(CoreError):
    """The core cannot be reached (down, or too slow)."""


class CoreNotFound(CoreError):
    """The core does not know the project or key."""


class CoreRefused(CoreError):
    """The core refused what was asked (a taken key name, a bad limit); the message says why."""


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    balance_micro_usd: int
    free_requests: int


@dataclass(frozen=True)
class CreditInfo:
    """One entry of a project's credit ledger (negative: a debit, such as a refund)."""

    time: dt.datetime
    amount_micro_usd: int
    reason: str


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    spend_limit_micro_usd: int | None = None
    expires_at: dt.datetime | None = None

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class UsageRow:
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    charged_micro_usd: int
    errors: int = 0


@dataclass(frozen=True)
class UsageEvent:
    """One request as the core metered it: metadata only."""

    request_id: str
    time: dt.datetime
    model: str
    endpoint: str
    stream: bool
    status: int
    input_tokens: int
    output_tokens: int
    charged_micro_usd: int
    latency_ms: int
    key_id: str = ""
    ttfb_ms: int = 0
    cost_micro_usd: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    provider: str = ""
    channel: str = ""
    error_code: str = ""
    requested_model: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """One catalog model; prices in micro-USD per million tokens."""

    id: str
    provider: str
    name: str
    input_price: int
    output_price: int
    cached_input_price: int
    context_window: int
    status: str
    status_note: str
    endpoints: tuple[str, ...]  # the routes its provider speaks (native)
    test_model: bool = False   # a free sandbox model answered by OneKey itself
    price_source: str = ""     # the price package and its version, or "operator file"
    translated_endpoints: tuple[str, ...] = ()  # the routes served by translating to a native one


@dataclass(frozen=True)
class EventFilter:
    """Which events to list: status "ok", "error" or a code; a model; a key id ("" = any)."""

    status: str = ""
    model: str = ""
    key_id: str = ""


_NO_PROJECT = "00000000-0000-0000-0000-000000000000"


def _when(ts: Timestamp, present: bool) -> dt.datetime | None:
    return ts.ToDatetime(tzinfo=dt.timezone.utc) if present else None


def _timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _project(p: admin_pb2.Project) -> ProjectInfo:
    return ProjectInfo(id=p.id, name=p.name, balance_micro_usd=p.balance_micro_usd, free_requests=p.free_requests)


def _key(k: admin_pb2.ApiKey) -> KeyInfo:
    return KeyInfo(id=k.id, name=k.name, prefix=k.prefix, created_at=k.created_at.ToDatetime(tzinfo=dt.timezone.utc),
                   last_used_at=_when(k.last_used_at, k.HasField("last_used_at")),
                   revoked_at=_when(k.revoked_at, k.HasField("revoked_at")),
                   spend_limit_micro_usd=k.spend_limit_micro_usd if k.HasField("spend_limit_micro_usd") else None,
                   expires_at=_when(k.expires_at, k.HasField("expires_at")))


def _row(r: metering_pb2.UsageRow) -> UsageRow:
    return UsageRow(group=r.group, requests=r.requests, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                    cost_micro_usd=r.cost_micro_usd, charged_micro_usd=r.charged_micro_usd, errors=r.errors)


def _event(e: metering_pb2.UsageEvent) -> UsageEvent:
    return UsageEvent(
        request_id=e.request_id, time=e.time.ToDatetime(tzinfo=dt.timezone.utc), model=e.model,
        endpoint=e.endpoint, stream=e.stream, status=e.status, input_tokens=e.usage.input_tokens,
        output_tokens=e.usage.output_tokens, charged_micro_usd=e.charged_micro_usd, latency_ms=e.latency_ms,
        key_id=e.key_id, ttfb_ms=e.ttfb_ms, cost_micro_usd=e.cost_micro_usd,
        cached_input_tokens=e.usage.cached_input_tokens, reasoning_tokens=e.usage.reasoning_tokens,
        estimated=e.usage.estimated, provider=e.provider, channel=e.channel, error_code=e.error_code,
        requested_model=e.requested_model)


# Reconnect soon after the core is back: gRPC's own backoff grows to two minutes, and a channel
# waiting out its backoff fails every call at once even though the core already answers.
CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 5000))


def open_channel(address: str) -> grpc.Channel:
    """The account app's channel to the core (pages work again within seconds of its return)."""
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


class CoreClient:
    """Thin, typed wrapper over the two stubs; one instance per app, safe across threads."""

    def __init__(self, channel: grpc.Channel, token: Secret, timeout: float = 10.0) -> None:
        self._admin = admin_pb2_grpc.AdminServiceStub(channel)
        self._metering = metering_pb2_grpc.MeteringServiceStub(channel)
        self._router = router_pb2_grpc.RouterServiceStub(channel)
        self._token = token
        self._timeout = timeout

    def _call(self, method, request):
        try:
            return method(request, metadata=(("authorization", f"Bearer {self._token.reveal()}"),),
                          timeout=self._timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            logger.warning("core call %s failed: %s", type(request).__name__, code)
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise CoreUnavailable("the routing core is not reachable right now") from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise CoreNotFound("not found") from None
            if code in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.FAILED_PRECONDITION):
                # The core's own words about what was asked: no secret, no content.
                raise CoreRefused(exc.details() or "the routing core refused the request") from None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                logger.error("the core refused the account app's service credential")
            raise CoreError("the routing core refused the request") from None

    def ping(self) -> None:
        """Raise CoreUnavailable unless the core answers (any answer to a lookup of no project will do)."""
        try:
            self._call(self._admin.GetProject, admin_pb2.GetProjectRequest(project_id=_NO_PROJECT))
        except CoreUnavailable:
            raise
        except (CoreNotFound, CoreRefused):
            pass

    def create_project(self, name: str, free_requests: int) -> ProjectInfo:
        return _project(self._call(self._admin.CreateProject,
                                   admin_pb2.CreateProjectRequest(name=name, free_requests=free_requests)))

    def rename_project(self, project_id: str, name: str) -> ProjectInfo:
        return _project(self._call(self._admin.RenameProject,
                                   admin_pb2.RenameProjectRequest(project_id=project_id, name=name)))

    def create_key(self, project_id: str, name: str, spend_limit_micro_usd: int | None = None,
                   expires_at: dt.datetime | None = None) -> tuple[KeyInfo, str]:
        """A new key and its secret, which exists nowhere else once this response is shown."""
        request = admin_pb2.CreateKeyRequest(project_id=project_id, name=name)
        if spend_limit_micro_usd is not None:
            request.spend_limit_micro_usd = spend_limit_micro_usd
        if expires_at is not None:
            request.expires_at.CopyFrom(_timestamp(expires_at))
        created = self._call(self._admin.CreateKey, request)
        return _key(created.key), created.secret

    def update_key(self, project_id: str, key_id: str, spend_limit_micro_usd: int | None,
                   expires_at: dt.datetime | None) -> KeyInfo:
        """Set the key's monthly spend limit and expiry; None clears each."""
        request = admin_pb2.UpdateKeyRequest(key_id=key_id, project_id=project_id,
                                             clear_spend_limit=spend_limit_micro_usd is None,
                                             clear_expiry=expires_at is None)
        if spend_limit_micro_usd is not None:
            request.spend_limit_micro_usd = spend_limit_micro_usd
        if expires_at is not None:
            request.expires_at.CopyFrom(_timestamp(expires_at))
        return _key(self._call(self._admin.UpdateKey, request))

    def list_keys(self, project_id: str) -> list[KeyInfo]:
        listing = self._call(self._admin.ListKeys, admin_pb2.ListKeysRequest(project_id=project_id))
        return [_key(k) for k in listing.keys]

    def close_project(self, project_id: str) -> int:
        """Close a project for good: every key revoked, and no key can be made in it afterwards,
        in one step in the core. Returns how many keys this call revoked."""
        return self._call(self._admin.CloseProject, admin_pb2.CloseProjectRequest(project_id=project_id)).keys_revoked

    def revoke_key(self, project_id: str, key_id: str) -> KeyInfo:
        return _key(self._call(self._admin.RevokeKey, admin_pb2.RevokeKeyRequest(key_id=key_id, project_id=project_id)))

    def balance(self, project_id: str) -> ProjectInfo:
        b = self._call(self._metering.GetBalance, metering_pb2.GetBalanceRequest(project_id=project_id))
        return ProjectInfo(id=b.project_id, name="", balance_micro_usd=b.balance_micro_usd,
                           free_requests=b.free_requests)

    def credits(self, project_id: str, limit: int = 100) -> list[CreditInfo]:
        """The project's credit ledger, newest first: what raised (or lowered) its balance besides requests."""
        listing = self._call(self._metering.ListCredits,
                             metering_pb2.ListCreditsRequest(project_id=project_id, limit=limit))
        return [CreditInfo(time=e.time.ToDatetime(tzinfo=dt.timezone.utc), amount_micro_usd=e.amount_micro_usd,
                           reason=e.reason) for e in listing.entries]

    def usage(self, project_id: str, start: dt.datetime, end: dt.datetime, by: str) -> tuple[list[UsageRow], UsageRow]:
        """Usage rows grouped by 'day' or 'model' over [start, end), and their total."""
        group = {"day": metering_pb2.GROUP_BY_DAY, "model": metering_pb2.GROUP_BY_MODEL,
                 "key": metering_pb2.GROUP_BY_KEY}[by]
        summary = self._call(self._metering.GetUsageSummary, metering_pb2.GetUsageSummaryRequest(
            project_id=project_id, start=_timestamp(start), end=_timestamp(end), group_by=group))
        return [_row(r) for r in summary.rows], _row(summary.total)

    def recent_events(self, project_id: str, start: dt.datetime, end: dt.datetime, limit: int = 20) -> list[UsageEvent]:
        return self.events(project_id, start, end, limit)[0]

    def events(self, project_id: str, start: dt.datetime, end: dt.datetime, limit: int = 50,
               page_token: str = "", where: EventFilter = EventFilter()) -> tuple[list[UsageEvent], str]:
        """One page of events, newest first, and the token of the next page ("" at the end)."""
        listing = self._call(self._metering.ListUsageEvents, metering_pb2.ListUsageEventsRequest(
            project_id=project_id, page_size=limit, start=_timestamp(start), end=_timestamp(end),
            page_token=page_token, status=where.status, model=where.model, key_id=where.key_id))
        return [_event(e) for e in listing.events], listing.next_page_token

    def request_usage(self, project_id: str, request_id: str) -> UsageEvent:
        """One request of the project by its id; CoreNotFound if it is not the project's."""
        return _event(self._call(self._metering.GetRequestUsage, metering_pb2.GetRequestUsageRequest(
            request_id=request_id, project_id=project_id)))

    def models(self) -> list[ModelInfo]:
        """The catalog as this install serves it: prices, status, endpoints."""
        listing = self._call(self._router.ListModels, router_pb2.ListModelsRequest())
        return [ModelInfo(id=m.id, provider=m.provider, name=m.display_name, input_price=m.input_price,
                          output_price=m.output_price, cached_input_price=m.cached_input_price or m.input_price,
                          context_window=m.context_window, status=m.status,
                          status_note=m.status_note, endpoints=tuple(m.endpoints), test_model=m.test_model,
                          price_source=m.price_source,
                          translated_endpoints=tuple(m.translated_endpoints))
                for m in listing.models]

    def add_credit(self, project_id: str, amount_micro_usd: int, idempotency_key: str, reason: str) -> tuple[int, bool]:
        """Credit (negative: debit) once per idempotency key: (balance after, whether this call applied it)."""
        done = self._call(self._admin.AddCredit, admin_pb2.AddCreditRequest(
            project_id=project_id, amount_micro_usd=amount_micro_usd, idempotency_key=idempotency_key, reason=reason))
        return done.project.balance_micro_usd, done.applied
