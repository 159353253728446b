"""Cutting an upstream's SSE byte stream, split anywhere by the network, into whole events."""
from __future__ import annotations

import re

# An event ends at a blank line; SSE allows CRLF, LF or CR line ends.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SseEvents:
    """Keeps the start of an event not yet complete between reads."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def cut(self, data: bytes) -> list[bytes]:
        """The events `data` completes (each without its blank line), in order."""
        buf = self._buf + data if self._buf else data
        events = []
        pos = 0
        scan = max(0, len(self._buf) - 3)  # an event's end may straddle the previous read and this one
        while (end := _EVENT_END.search(buf, scan)) is not None:
            events.append(buf[pos:end.start()])
            pos = scan = end.end()
        self._buf = buf[pos:]
        return events

    def rest(self) -> bytes:
        """What is left at the stream's end: a last event the upstream did not end with a blank line."""
        rest, self._buf = self._buf, b""
        return rest
