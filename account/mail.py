"""Sending mail: over SMTP in production, or into a folder of .eml files on a laptop.

The backend is chosen from settings; tests plug in a real SMTP server on loopback.
"""
from __future__ import annotations

import logging
import os
import pathlib
import re
import smtplib
import ssl
import uuid
from collections.abc import Callable, Iterable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from account.settings import AccountSettings, SmtpSettings

logger = logging.getLogger(__name__)


class MailError(Exception):
    """The message could not be handed to the mail system."""


class Mailer(Protocol):
    def send(self, message: EmailMessage, ref: str = "") -> None:
        """Hand one message to the mail system; raises MailError on failure.

        `ref` names what the message carries (a sign-in link's hash), for sweep()."""

    def sweep(self, dead: Callable[[list[str]], Iterable[str]]) -> int:
        """Delete the copies this mailer keeps whose ref `dead` names; how many went."""


class SmtpMailer:
    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    def send(self, message: EmailMessage, ref: str = "") -> None:
        s = self._smtp
        try:
            if s.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                         context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.starttls and not s.ssl:
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password.reveal())
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            logger.error("SMTP delivery via %s:%s failed: %s", s.host, s.port, type(exc).__name__)
            raise MailError("the mail server did not accept the message") from None

    def sweep(self, dead: Callable[[list[str]], Iterable[str]]) -> int:
        return 0  # mail handed to a server keeps no copy here


_REF = re.compile(r"[0-9a-f]{64}")


class FileMailer:
    """Writes each message as an .eml file (mode 0600, folder 0700): for a single machine without SMTP.

    A message with a ref is written as `<ref>.eml`, so sweep() can delete it once what it
    carries is dead: a file holding a usable sign-in link is as good as the link.
    """

    def __init__(self, directory: str) -> None:
        self._dir = pathlib.Path(directory)

    def send(self, message: EmailMessage, ref: str = "") -> None:
        try:
            self._dir.mkdir(parents=True, mode=0o700)
            self._dir.chmod(0o700)  # mkdir's mode passes through the umask
        except FileExistsError:
            pass
        path = self._dir / f"{ref if _REF.fullmatch(ref) else uuid.uuid4().hex}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(message))
        logger.info("mail written to %s", path)

    def sweep(self, dead: Callable[[list[str]], Iterable[str]]) -> int:
        refs = [p.stem for p in self._dir.glob("*.eml") if _REF.fullmatch(p.stem)] if self._dir.is_dir() else []
        gone = 0
        for ref in dead(refs) if refs else ():
            try:
                (self._dir / f"{ref}.eml").unlink()
                gone += 1
            except FileNotFoundError:
                pass  # another worker swept it first
        return gone


def mailer_from_settings(settings: AccountSettings) -> Mailer:
    if settings.smtp is not None:
        return SmtpMailer(settings.smtp)
    logger.warning("no smtp_host configured: sign-in mail goes to files in %s", settings.mail_dir)
    return FileMailer(settings.mail_dir)


def build_message(sender: str, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="onekey")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message
