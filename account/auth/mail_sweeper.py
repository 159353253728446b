"""Written sign-in mails go once their link is dead: a periodic sweep beside the one at sign-in."""
from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from account.auth.service import sweep_sign_in_mail
from account.mail import Mailer

logger = logging.getLogger(__name__)


class MailSweeper:
    """Every `interval` seconds, in a thread of its own, deletes kept mails whose link expired."""

    def __init__(self, sessions: sessionmaker[Session], mailer: Mailer, interval: float = 60.0) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> int:
        """One pass; how many mails went."""
        with self._sessions() as db:
            return sweep_sign_in_mail(db, self._mailer)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mail-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                gone = self.sweep()
                if gone:
                    logger.info("deleted %d sign-in mails whose link expired or was used", gone)
            except Exception as exc:  # a store hiccup must not end the sweeping for good
                logger.warning("sweeping sign-in mail failed: %s", type(exc).__name__)
            self._stop.wait(self._interval)
