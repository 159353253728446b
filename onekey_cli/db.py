"""`onekey db upgrade | current`: the schema revision of the routing and account stores."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from onekey_cli.config import Config

# SQLAlchemy is imported by `run` only: every `onekey` command registers these parsers, and an
# edge process has no other use for it (about 13 MiB).

STORES = ("core", "account")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register `onekey db upgrade` and `onekey db current`."""
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    for action, text in (("upgrade", "migrate the stores' schema to this release (once per deployment)"),
                         ("current", "show each store's schema revision")):
        p = db.add_parser(action, parents=[common], help=text)
        p.add_argument("--store", choices=("all", *STORES), default="all",
                       help="core: the routing store; account: the account store (default: both)")


def run(config: Config, args: argparse.Namespace) -> int:
    """Upgrade or show the chosen stores; 1 if any could not be read or upgraded."""
    from sqlalchemy.exc import SQLAlchemyError

    apply = args.action == "upgrade"
    report, failed = {}, False
    for store in (STORES if args.store == "all" else (args.store,)):
        try:
            url, status = _run(store, config, apply, explicit=args.store == store)
        except _Skip:
            continue
        except (_NotReady, SQLAlchemyError, OSError) as exc:  # say which store and why, no traceback
            print(f"onekey: {store} store: {_reason(exc)}", file=sys.stderr)
            failed = True
            continue
        report[store] = {"database": url, "revision": status.revision, "head": status.head,
                         "up_to_date": status.up_to_date, "has_tables": status.has_tables}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for store, r in report.items():
            print(f"{store:8} {_describe(r)}  ({r['database']})")
    return 1 if failed else 0


class _Skip(Exception):
    """The account app is not installed and was not asked for by name."""


class _NotReady(Exception):
    """A store's SchemaNotReady (each store has its own class)."""


def _run(store: str, config: Config, apply: bool, explicit: bool):
    if store == "core":
        from router_core import migrations

        url = config.core.database_url
        try:
            return _safe(url), asyncio.run(migrations.run(url, apply=apply))
        except migrations.SchemaNotReady as exc:
            raise _NotReady(str(exc)) from None
    try:
        from account import migrations
        from account.settings import AccountSettings
    except ImportError:
        if explicit:
            raise SystemExit("onekey: the account app is not installed") from None
        raise _Skip from None
    url = config.account_section.get("database_url", AccountSettings.database_url)
    try:
        return _safe(url), migrations.run(url, apply=apply)
    except migrations.SchemaNotReady as exc:
        raise _NotReady(str(exc)) from None


def _describe(r: dict) -> str:
    if r["up_to_date"]:
        return f"at revision {r['revision']} (up to date)"
    if r["revision"] is None:
        state = "has tables but no schema history" if r["has_tables"] else "is empty"
        return f"{state}: run `onekey db upgrade`"
    return f"at revision {r['revision']}, this release needs {r['head']}: run `onekey db upgrade`"


def _reason(exc: Exception) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None) or exc
        return f"cannot use the database: {str(orig).splitlines()[0] if str(orig) else type(orig).__name__}"
    return str(exc)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
