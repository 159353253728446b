"""Entry point of the `onekey` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

# Everything heavier is imported inside main(), where a Ctrl-C that lands during the imports
# ends the command quietly with 130 instead of a traceback.


def _run_async(coro) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic announces each plugin it loads at INFO; its "Running upgrade" lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


COMPONENTS = ("up", "core", "edge", "router", "account")


def build_parser(components_only: bool = False) -> argparse.ArgumentParser:
    """The `onekey` parser; `components_only` leaves out the operator commands, whose modules
    load gRPC and SQLAlchemy, which the launcher (`onekey up`) must not carry."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML config (default: $ONEKEY_CONFIG)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog="onekey", description="OneKey: one key, one base URL, 40+ models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start core, edge and account together"), ("core", "start the routing core"),
                       ("edge", "start the HTTP edge"),
                       ("router", "start the edge and a core in one process (the edge calls it in-process)"),
                       ("account", "start the account app")):
        sub.add_parser(name, parents=[common], help=text).set_defaults(run=None)
    if components_only:
        return parser
    from onekey_cli import db, models, operator

    operator.add_parsers(sub, common)
    db.add_parsers(sub, common)
    models.add_parser(sub, common)
    models.add_reload_parser(sub, common)
    return parser


class _Terminated(BaseException):
    """SIGTERM before a command has its own handling: ends it like Ctrl-C, quietly, with 130.

    Not a KeyboardInterrupt: an extension module's initialisation code that a KeyboardInterrupt
    passes through leaves the interpreter marked to end itself by SIGINT, whatever the exit
    status the command returns."""


def _interrupt(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C or SIGTERM before its own signal handling is in place exits with 130."""
    # Until a command installs its own handlers (the launcher's stop, a server's drain), SIGTERM
    # ends it like Ctrl-C: quietly, rather than by the default action mid-import.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    except (KeyboardInterrupt, _Terminated):
        return 130


def _core_reloader(config):
    """What SIGHUP and `onekey reload` re-read: the same file and environment, the core's part."""
    from dataclasses import replace

    from onekey_cli.config import ConfigError, load
    from router_core.settings import ConfigError as CoreConfigError

    def reload_core():
        try:
            fresh = load(str(config.path) if config.path else None, config.env).core
        except ConfigError as exc:  # in the core's own terms: it refuses the reload and keeps serving
            raise CoreConfigError(str(exc)) from None
        return replace(fresh, service_token=config.core.service_token)  # the running core's credential stays
    return reload_core


def _main(argv: list[str] | None) -> int:
    from onekey_cli import config as config_module

    # Whatever any component writes (stores and their SQLite side files, keys, mail) is for
    # this user only; the explicit modes where files are made say the same, this catches the rest.
    os.umask(0o077)
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(components_only=bool(words) and words[0] in COMPONENTS).parse_args(argv)
    try:
        config = config_module.load(args.config, check_catalog=args.command in ("core", "router"))
    except config_module.ConfigError as exc:
        print(f"onekey: {exc}", file=sys.stderr)
        return 2
    if args.command == "db":
        from onekey_cli import db

        return db.run(config, args)
    if args.command in COMPONENTS:
        _configure_logging()
        if args.command == "up":
            from onekey_cli.launcher import up

            return up(config)
        if args.command in ("core", "router"):
            from router_core.migrations import SchemaNotReady

            reload_core = _core_reloader(config)
            if args.command == "core":
                from router_core.server import serve

                serving = serve(config.core, reload_core)
            else:
                from onekey_cli.inprocess import serve as serve_router

                serving = serve_router(config.core, config.edge, reload_core)
            try:
                _run_async(serving)
            except SchemaNotReady as exc:
                print(f"onekey {args.command}: {exc}", file=sys.stderr)
                return 2
        elif args.command == "edge":
            from edge.app import serve

            _run_async(serve(config.edge))
        else:
            try:
                from account.migrations import SchemaNotReady as AccountNotReady
                from account.server import serve as serve_account
            except ImportError:
                print("onekey: the account app is not installed", file=sys.stderr)
                return 2
            section = dict(config.account_section)
            # The account app shows the edge's address in its Quick start; it knows only its
            # own section, so the launcher fills it in from [edge] unless set explicitly.
            host, _, port = config.edge.listen.rpartition(":")
            section.setdefault("api_base_url", f"http://{host or '127.0.0.1'}:{port}/v1")
            try:
                serve_account(section, config.core, config.env)
            except AccountNotReady as exc:
                print(f"onekey account: {exc}", file=sys.stderr)
                return 2
        return 0
    import grpc

    from onekey_cli import operator

    op = operator.Operator(config, args.json)
    try:
        code = args.run(op, args)
    except grpc.RpcError as exc:
        status = exc.code() if hasattr(exc, "code") else None
        if status == grpc.StatusCode.UNAVAILABLE:
            print(f"onekey: the core at {config.core.listen} is not reachable", file=sys.stderr)
        else:
            print(f"onekey: {exc.details() if hasattr(exc, 'details') else exc}", file=sys.stderr)
        return 1
    finally:
        op.close()
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
