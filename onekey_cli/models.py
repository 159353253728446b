"""`onekey models`: the catalog as this install sees it; `onekey models check`: the catalog
against each channel's provider's own model list."""
from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from onekey.v1 import router_pb2, router_pb2_grpc
from onekey_cli.operator import Operator, micro_to_usd


def models_list(op: Operator, args) -> int:
    """Each model with its prices (what the customer pays), status on this install and channels."""
    router = router_pb2_grpc.RouterServiceStub(op.channel)
    listing = op.call(router.ListModels, router_pb2.ListModelsRequest())
    lines = [f"{'ID':34}  {'PROVIDER':9}  {'INPUT':>9}  {'OUTPUT':>9}  {'CACHED':>9}  {'CONTEXT':>9}  "
             f"{'STATUS':10}  {'PRICES FROM':18}  CHANNELS   (USD per 1M tokens)"]
    for m in listing.models:
        lines.append(f"{m.id[:34]:34}  {m.provider:9}  {micro_to_usd(m.input_price):>9}  {micro_to_usd(m.output_price):>9}  "
                     f"{micro_to_usd(m.cached_input_price or m.input_price):>9}  {m.context_window:>9}  "
                     f"{m.status:10}  {(m.price_source or 'free')[:18]:18}  {', '.join(m.channels) or '-'}")
    op.show(listing, "\n".join(lines))
    return 0


def models_check(op: Operator, args) -> int:
    """Ask each channel's provider for its models; exit 1 when the catalog and a provider differ."""
    from router_core.catalog import Catalog
    from router_core.catalog_check import check_channels
    from router_core.providers import REGISTRY
    from router_core.providers.http import HttpClient

    async def run():
        http = HttpClient(op.config.core.timeouts)
        await http.start()
        try:
            catalog = Catalog.load(op.config.core.catalog_file or None)
            channels = [c for c in op.config.core.channels if c.provider in REGISTRY]
            return await check_channels(catalog, channels, REGISTRY, http)
        finally:
            await http.close()

    results = asyncio.run(run())
    if op.as_json:
        print(json.dumps({"channels": [asdict(r) for r in results]}, indent=2))
    else:
        print(_report(results))
    return 1 if any(r.differs for r in results) else 0


def _report(results) -> str:
    if not results:
        return "No provider channel is configured: nothing to check."
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.channel} ({r.provider}): could not list models: {r.error}")
            continue
        verdict = "matches the catalog" if not r.differs else "differs from the catalog"
        lines.append(f"{r.channel} ({r.provider}): {r.listed} models listed, {verdict}")
        for model_id in r.missing:
            lines.append(f"  no longer listed by the provider:  {model_id}  (retired)")
        for upstream in r.unknown:
            if upstream not in r.unpriced:
                lines.append(f"  new, priced by the package:       {upstream}  (served)")
        for upstream in r.unpriced:
            lines.append(f"  unpriced:                          {upstream}  (not served: no known price)")
    return "\n".join(lines)


def models_sync(op: Operator, args) -> int:
    """Have the core read every channel's model list now and rebuild its catalog."""
    from onekey.v1 import admin_pb2, admin_pb2_grpc

    admin = admin_pb2_grpc.AdminServiceStub(op.channel)
    report = op.call(admin.SyncModels, admin_pb2.SyncModelsRequest())
    op.show(report, sync_text(report))
    return 1 if any(c.error for c in report.channels) else 0


def sync_text(report) -> str:
    """A SyncModelsResponse in lines: each channel, what is servable, what is unpriced."""
    lines = []
    for c in report.channels:
        lines.append(f"{c.channel}: could not list models: {c.error} (its last list is kept)" if c.error
                     else f"{c.channel}: {c.listed} models listed")
    servable = ", ".join(f"{p} {n}" for p, n in sorted(report.servable.items()))
    lines.append(f"servable now: {servable or 'none'} (prices: {report.price_source})")
    for u in report.unpriced:
        lines.append(f"unpriced, not served ({u.provider}): {', '.join(u.upstream_ids)}")
    return "\n".join(lines)


def run_models(op: Operator, args) -> int:
    if args.action == "check":
        return models_check(op, args)
    return models_sync(op, args) if args.action == "sync" else models_list(op, args)


def add_parser(sub, common) -> None:
    """Register `onekey models [check]` on the `onekey` parser."""
    p = sub.add_parser("models", parents=[common],
                       help="the catalog as this install sees it; `models check` compares it with the providers")
    p.add_argument("action", nargs="?", choices=("check", "sync"),
                   help="check: ask each channel's provider for its model list and report the differences "
                        "(unpriced models too); sync: have the core read the lists now and update its catalog")
    p.set_defaults(run=run_models)


def run_reload(op: Operator, args) -> int:
    """Have the core re-read its catalog file and channels (as SIGHUP does); a bad file changes nothing."""
    from onekey.v1 import admin_pb2, admin_pb2_grpc

    admin = admin_pb2_grpc.AdminServiceStub(op.channel)
    report = op.call(admin.Reload, admin_pb2.ReloadRequest())
    op.show(report, "reloaded\n" + sync_text(report))
    return 0


def add_reload_parser(sub, common) -> None:
    """Register `onekey reload` on the `onekey` parser."""
    p = sub.add_parser("reload", parents=[common],
                       help="re-read the catalog file and [[channels]] without a restart (as SIGHUP does)")
    p.set_defaults(run=run_reload)
