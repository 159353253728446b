"""Operator commands: gRPC clients of the core's AdminService and MeteringService."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from decimal import Decimal, InvalidOperation

import grpc
from google.protobuf.json_format import MessageToDict

from onekey.v1 import admin_pb2, admin_pb2_grpc, metering_pb2, metering_pb2_grpc
from onekey_cli.config import Config


def usd_to_micro(text: str) -> int:
    """'12.34' -> 12_340_000; refuses fractions of a micro-dollar and non-numbers."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in USD: {text!r}") from None
    micro = value * 1_000_000
    if micro != micro.to_integral_value() or not value.is_finite():
        raise argparse.ArgumentTypeError(f"amount has more than 6 decimals: {text!r}")
    return int(micro)


def rate_limit(text: str) -> int | None:
    """'120' -> 120 requests per minute, '0' -> no limit, 'default' -> None (clear the setting)."""
    if text.strip().lower() == "default":
        return None
    try:
        rpm = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of requests per minute: {text!r}") from None
    if rpm < 0:
        raise argparse.ArgumentTypeError(f"a rate limit cannot be negative: {text!r}")
    return rpm


def rpm_text(message, default: str) -> str:
    """A rate limit for display: `120/min`, `none` for 0, `default` text when unset."""
    if not message.HasField("rate_limit_rpm"):
        return default
    return f"{message.rate_limit_rpm}/min" if message.rate_limit_rpm else "none"


def micro_to_usd(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    return f"{sign}${whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else f"{sign}${whole}.00"


class Operator:
    """One connection to the core with the service credential attached to every call."""

    def __init__(self, config: Config, as_json: bool) -> None:
        self.config = config
        self._channel = grpc.insecure_channel(config.core.listen)
        self._metadata = (("authorization", f"Bearer {config.core.service_token.reveal()}"),)
        self.admin = admin_pb2_grpc.AdminServiceStub(self._channel)
        self.metering = metering_pb2_grpc.MeteringServiceStub(self._channel)
        self.as_json = as_json

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def call(self, method, request):
        return method(request, metadata=self._metadata, timeout=15)

    def show(self, message, text: str) -> None:
        if self.as_json:
            print(json.dumps(MessageToDict(message, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True), indent=2))
        else:
            print(text)

    def close(self) -> None:
        self._channel.close()


def project_create(op: Operator, args) -> None:
    project = op.call(op.admin.CreateProject, admin_pb2.CreateProjectRequest(
        name=args.name or "", credit_micro_usd=args.credit, free_requests=args.free_requests,
        rate_limit_rpm=args.rate_limit))
    op.show(project, project.id)


def expiry_date(text: str) -> dt.datetime:
    """'2027-01-31' -> the key works through that day (UTC): it expires at the next midnight."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def _limits(request, args) -> None:
    if getattr(args, "spend_limit", None) is not None:
        request.spend_limit_micro_usd = args.spend_limit
    if getattr(args, "expires", None) is not None:
        request.expires_at.FromDatetime(args.expires)


def key_create(op: Operator, args) -> None:
    request = admin_pb2.CreateKeyRequest(project_id=args.project, name=args.name or "",
                                         rate_limit_rpm=args.rate_limit)
    _limits(request, args)
    created = op.call(op.admin.CreateKey, request)
    op.show(created, created.secret)
    if not op.as_json:
        print(f"(key id {created.key.id}; the secret is shown only this once)", file=sys.stderr)


def key_list(op: Operator, args) -> None:
    listing = op.call(op.admin.ListKeys, admin_pb2.ListKeysRequest(project_id=args.project))
    lines = [f"{'ID':36}  {'PREFIX':10}  {'NAME':20}  {'CREATED':20}  {'LAST USED':20}  {'RATE LIMIT':12}  "
             f"{'LIMIT/MONTH':>12}  {'EXPIRES':10}  STATE"]
    now = dt.datetime.now(dt.timezone.utc)
    for k in listing.keys:
        created = k.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        used = k.last_used_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if k.HasField("last_used_at") else "never"
        rpm = rpm_text(k, "default")
        limit = micro_to_usd(k.spend_limit_micro_usd) if k.HasField("spend_limit_micro_usd") else "-"
        expires = k.expires_at.ToDatetime(tzinfo=dt.timezone.utc) if k.HasField("expires_at") else None
        state = ("revoked" if k.HasField("revoked_at") else "expired" if expires and expires <= now else "active")
        lines.append(f"{k.id:36}  {k.prefix:10}  {k.name[:20]:20}  {created:20}  {used:20}  {rpm:12}  {limit:>12}  "
                     f"{expires.strftime('%Y-%m-%d') if expires else 'never':10}  {state}")
    op.show(listing, "\n".join(lines))


def key_update(op: Operator, args) -> None:
    request = admin_pb2.UpdateKeyRequest(key_id=args.key_id, clear_spend_limit=args.no_spend_limit,
                                         clear_expiry=args.no_expiry)
    _limits(request, args)
    key = op.call(op.admin.UpdateKey, request)
    limit = micro_to_usd(key.spend_limit_micro_usd) + "/month" if key.HasField("spend_limit_micro_usd") else "none"
    expires = key.expires_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC") if key.HasField("expires_at") else "never"
    op.show(key, f"key {key.id}: spend limit {limit}, expires {expires}")


def key_revoke(op: Operator, args) -> None:
    key = op.call(op.admin.RevokeKey, admin_pb2.RevokeKeyRequest(key_id=args.key_id))
    op.show(key, f"revoked {key.id} ({key.prefix}…)")


def limits_set(op: Operator, args) -> None:
    target = {"project_id": args.project} if args.project else {"key_id": args.key}
    result = op.call(op.admin.SetRateLimit, admin_pb2.SetRateLimitRequest(**target, rate_limit_rpm=args.rate_limit))
    if result.HasField("project"):
        text = f"project {result.project.id}: {rpm_text(result.project, 'none')} (all its keys together)"
    else:
        text = f"key {result.key.id}: {rpm_text(result.key, 'default ([core] rate_limit_rpm)')}"
    op.show(result, text)


def credit_add(op: Operator, args) -> None:
    idem = args.idempotency_key or f"cli:{dt.datetime.now(dt.timezone.utc).isoformat()}:{args.project}"
    result = op.call(op.admin.AddCredit, admin_pb2.AddCreditRequest(
        project_id=args.project, amount_micro_usd=args.usd, idempotency_key=idem, reason="operator"))
    note = "" if result.applied else " (already applied: nothing changed)"
    op.show(result, f"balance {micro_to_usd(result.project.balance_micro_usd)}{note}")


def balance(op: Operator, args) -> None:
    b = op.call(op.metering.GetBalance, metering_pb2.GetBalanceRequest(project_id=args.project))
    op.show(b, f"balance {micro_to_usd(b.balance_micro_usd)}, free requests left {b.free_requests}")


def usage(op: Operator, args) -> None:
    group = {"day": metering_pb2.GROUP_BY_DAY, "model": metering_pb2.GROUP_BY_MODEL,
             "key": metering_pb2.GROUP_BY_KEY}[args.by]
    summary = op.call(op.metering.GetUsageSummary,
                      metering_pb2.GetUsageSummaryRequest(project_id=args.project, group_by=group))
    lines = [f"{args.by.upper():40}  {'REQUESTS':>8}  {'INPUT':>10}  {'OUTPUT':>10}  {'COST':>12}"]
    for r in [*summary.rows, summary.total]:
        lines.append(f"{r.group[:40]:40}  {r.requests:>8}  {r.input_tokens:>10}  {r.output_tokens:>10}  "
                     f"{micro_to_usd(r.cost_micro_usd):>12}")
    op.show(summary, "\n".join(lines))


def channels(op: Operator, args) -> None:
    listing = op.call(op.admin.ListChannels, admin_pb2.ListChannelsRequest())
    lines = [f"{'NAME':20}  {'PROVIDER':10}  {'PRIO':>4}  {'WEIGHT':>6}  {'STATE':10}  {'ERR%':>5}  {'P50 MS':>7}  {'REQS':>6}"]
    for c in listing.channels:
        lines.append(f"{c.name[:20]:20}  {c.provider:10}  {c.priority:>4}  {c.weight:>6}  {c.state:10}  "
                     f"{c.error_rate * 100:>5.1f}  {c.latency_ms_p50:>7.1f}  {c.requests:>6}")
    op.show(listing, "\n".join(lines))


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the operator commands on the `onekey` parser."""
    project = sub.add_parser("project", help="projects").add_subparsers(dest="action", required=True)
    p = project.add_parser("create", parents=[common], help="create a project; prints its id")
    p.add_argument("--name")
    p.add_argument("--credit", type=usd_to_micro, default=0, metavar="USD", help="initial credit in USD")
    p.add_argument("--free-requests", type=int, default=0, metavar="N")
    p.add_argument("--rate-limit", type=rate_limit, metavar="RPM",
                   help="requests per minute of all the project's keys together (default: none)")
    p.set_defaults(run=project_create)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    p = key.add_parser("create", parents=[common], help="create a key; prints the secret once")
    p.add_argument("--project", required=True, metavar="ID")
    p.add_argument("--name", help="unique among the project's active keys (default: key N)")
    p.add_argument("--spend-limit", type=usd_to_micro, metavar="USD", help="monthly spend limit of the key")
    p.add_argument("--expires", type=expiry_date, metavar="YYYY-MM-DD", help="last day the key works (UTC)")
    p.add_argument("--rate-limit", type=rate_limit, metavar="RPM",
                   help="requests per minute of this key; 0: none (default: [core] rate_limit_rpm)")
    p.set_defaults(run=key_create)
    p = key.add_parser("update", parents=[common], help="set or clear a key's spend limit and expiry")
    p.add_argument("key_id", metavar="KEY_ID")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--spend-limit", type=usd_to_micro, metavar="USD", help="monthly spend limit of the key")
    limit.add_argument("--no-spend-limit", action="store_true", help="remove the spend limit")
    expiry = p.add_mutually_exclusive_group()
    expiry.add_argument("--expires", type=expiry_date, metavar="YYYY-MM-DD", help="last day the key works (UTC)")
    expiry.add_argument("--no-expiry", action="store_true", help="the key never expires")
    p.set_defaults(run=key_update)
    p = key.add_parser("list", parents=[common], help="list a project's keys")
    p.add_argument("--project", required=True, metavar="ID")
    p.set_defaults(run=key_list)
    p = key.add_parser("revoke", parents=[common], help="revoke a key")
    p.add_argument("key_id", metavar="KEY_ID")
    p.set_defaults(run=key_revoke)

    limits = sub.add_parser("limits", help="request rate limits").add_subparsers(dest="action", required=True)
    p = limits.add_parser("set", parents=[common], help="set a project's or a key's requests per minute")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", metavar="ID")
    target.add_argument("--key", metavar="KEY_ID")
    p.add_argument("--rate-limit", type=rate_limit, required=True, metavar="RPM",
                   help="requests per minute; 0: no limit; 'default': clear (a key follows [core] rate_limit_rpm)")
    p.set_defaults(run=limits_set)

    credit = sub.add_parser("credit", help="credits").add_subparsers(dest="action", required=True)
    p = credit.add_parser("add", parents=[common], help="add credit in USD")
    p.add_argument("--project", required=True, metavar="ID")
    p.add_argument("--usd", required=True, type=usd_to_micro, metavar="AMOUNT")
    p.add_argument("--idempotency-key", help="credit once per key (default: a new key each call)")
    p.set_defaults(run=credit_add)

    p = sub.add_parser("balance", parents=[common], help="a project's balance")
    p.add_argument("--project", required=True, metavar="ID")
    p.set_defaults(run=balance)

    p = sub.add_parser("usage", parents=[common], help="a project's usage over the last 30 days")
    p.add_argument("--project", required=True, metavar="ID")
    p.add_argument("--by", choices=("day", "model", "key"), default="day")
    p.set_defaults(run=usage)

    p = sub.add_parser("channels", parents=[common], help="provider channels and their health")
    p.set_defaults(run=channels)
