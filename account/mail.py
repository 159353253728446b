"""Sending mail: over SMTP in production, or into a folder of .eml files on a laptop.

The backend is chosen from settings; tests plug in a real SMTP server on loopback.
"""
from __future__ import annotations

import logging
import os
import pathlib
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from account.settings import AccountSettings, SmtpSettings

logger = logging.getLogger(__name__)


class MailError(Exception):
    """The message could not be handed to the mail system."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message to the mail system; raises MailError on failure."""


class SmtpMailer:
    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    def send(self, message: EmailMessage) -> None:
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


class FileMailer:
    """Writes each message as an .eml file (mode 0600): for a single machine without SMTP."""

    def __init__(self, directory: str) -> None:
        self._dir = pathlib.Path(directory)

    def send(self, message: EmailMessage) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"{uuid.uuid4().hex}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(message))
        logger.info("mail written to %s", path)


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
