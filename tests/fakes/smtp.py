"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for mail tests."""
from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.procs import free_port


class _Recorder:
    def __init__(self, inbox: FakeSmtp) -> None:
        self._inbox = inbox

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self._inbox._deliver(list(envelope.rcpt_tos), message)
        return "250 Message accepted for delivery"


class FakeSmtp:
    """Start with start(); messages arrive in .messages as (recipients, EmailMessage)."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._arrived = threading.Condition()
        self._controller = Controller(_Recorder(self), hostname=self.host, port=self.port)

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def _deliver(self, recipients: list[str], message: EmailMessage) -> None:
        with self._arrived:
            self.messages.append((recipients, message))
            self._arrived.notify_all()

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 10) -> EmailMessage:
        """The count-th message to recipient, waiting for it to arrive."""
        def mine():
            return [m for rcpts, m in self.messages if recipient.lower() in (r.lower() for r in rcpts)]
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(mine()) >= count, timeout):
                raise AssertionError(f"no message #{count} for {recipient} within {timeout}s")
            return mine()[count - 1]

    def sent_to(self, recipient: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for rcpts, m in self.messages if recipient.lower() in (r.lower() for r in rcpts)]
