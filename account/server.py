"""`onekey account`: the account app behind waitress, a production WSGI server."""
from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from typing import Any

from flask import Flask
from waitress.server import create_server as create_waitress

from account.app import create_app
from account.auth.mail_sweeper import MailSweeper
from account.settings import AccountSettings, ConfigError, CoreSettingsLike, load_account_settings

logger = logging.getLogger(__name__)


def create_server(settings: AccountSettings, app: Flask | None = None, **app_kwargs: Any):
    """A bound, not yet running waitress server for the app; (server, port). Listen on port 0 in tests."""
    app = app or create_app(settings, **app_kwargs)
    host, _, port = settings.listen.rpartition(":")
    server = create_waitress(app, host=host.strip("[]") or "127.0.0.1", port=int(port), threads=settings.threads,
                             ident="onekey", clear_untrusted_proxy_headers=True)
    return server, server.effective_port


def serve(section: Mapping[str, Any], core_settings: CoreSettingsLike, env: Mapping[str, str]) -> None:
    """Run until SIGTERM or Ctrl-C; requests being served get shutdown_timeout to finish."""
    try:
        settings = load_account_settings(section, core_settings, env)
    except ConfigError as exc:
        raise SystemExit(f"onekey account: {exc}") from None
    app = create_app(settings)
    server, port = create_server(settings, app)
    onekey = app.extensions["onekey"]
    sweeper = MailSweeper(onekey.sessions, onekey.mailer)
    sweeper.start()

    stopping = False

    def stop(signum, _frame):
        # Ctrl-C reaches the whole process group and `onekey up` sends SIGTERM too: act once,
        # so a second signal cannot interrupt the drain.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        logger.info("account app stopping (signal %d)", signum)
        raise SystemExit(0)  # waitress's run() catches it and drains its worker threads

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("account app listening on %s (public URL %s)", f"{settings.listen.rpartition(':')[0]}:{port}",
                settings.public_url)
    try:
        server.run()
    finally:
        sweeper.stop()
        server.close()
        app.extensions["onekey_engine"].dispose()
        logger.info("account app stopped")
