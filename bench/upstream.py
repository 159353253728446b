"""A fast fake OpenAI-compatible upstream: a bare asyncio protocol speaking HTTP/1.1 keep-alive.

It does as little as an HTTP server can, so that what the benchmark measures is the gateway and
not the upstream: no routing table, no JSON decoding, answers prepared once at start-up.

- `POST …/chat/completions` answers a fixed chat completion with usage; when the body asks for a
  stream (`"stream": true`) it answers Server-Sent Events: the first event at once, then the rest
  `--gap-ms` apart (so "time to first chunk" differs from "time to the last byte"), and a
  usage-only event when the body asks for `include_usage`. A stream asking for `max_tokens` of
  LONG_CONTENT_EVENTS or more is the long one: that many content events, `--long-gap-ms` apart
  (0: each event is its own write, one event-loop turn after the last). Under the path prefix
  `/slow/` (a base URL `http://…/slow/v1`) a stream's events are SLOW_GAP_S apart: the harness
  uses it to check a gateway passes a stream on chunk by chunk.
- `GET /stats` answers the number of completions served and of connections accepted, so the
  harness can check the gateway really reached the upstream, over kept-alive connections.

Run alone: `python -m bench.upstream --port 0`; it prints `READY port=<n>` once it listens.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

MODEL = "gpt-4.1-mini"
USAGE = {"prompt_tokens": 19, "completion_tokens": 9, "total_tokens": 28,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
BASE = {"id": "chatcmpl-bench0000000000000000000000", "created": 1767225600, "model": MODEL,
        "system_fingerprint": "fp_bench"}
MAX_HEAD = 64 * 1024
SLOW_GAP_S = 0.05
LONG_CONTENT_EVENTS = 50
LONG_USAGE = {**USAGE, "completion_tokens": LONG_CONTENT_EVENTS,
              "total_tokens": USAGE["prompt_tokens"] + LONG_CONTENT_EVENTS}


def _completion() -> bytes:
    return json.dumps({
        **BASE, "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE, "service_tier": "default",
    }, separators=(",", ":")).encode()


def _events(with_usage: bool, words: list[str] = WORDS, usage: dict = USAGE) -> list[bytes]:
    """The SSE events of one streamed answer, each already framed as one HTTP chunk."""
    events = []
    for i, word in enumerate(words):
        delta = {"role": "assistant", "content": word, "refusal": None} if i == 0 else {"content": word}
        chunk = {**BASE, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
        if with_usage:
            chunk["usage"] = None
        events.append(chunk)
    last = {**BASE, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
    if with_usage:
        last["usage"] = None
    events.append(last)
    if with_usage:
        events.append({**BASE, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    data = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    data.append(b"data: [DONE]\n\n")
    return [b"%x\r\n%s\r\n" % (len(d), d) for d in data]


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


COMPLETION = _response("200 OK", b"application/json", _completion())
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
STREAM_EVENTS = {False: _events(False), True: _events(True)}
LONG_WORDS = [WORDS[i % len(WORDS)] for i in range(LONG_CONTENT_EVENTS)]
LONG_STREAM_EVENTS = {u: _events(u, LONG_WORDS, LONG_USAGE) for u in (False, True)}
NOT_FOUND = _response("404 Not Found", b"application/json",
                      b'{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}')
MODEL_LIST = _response("200 OK", b"application/json", json.dumps({"object": "list", "data": [
    {"id": m, "object": "model", "created": 1767225600, "owned_by": "openai"}
    for m in ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini")]}).encode())
BAD_REQUEST = _response("400 Bad Request", b"application/json",
                        b'{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}')


class Counter:
    served = 0
    connections = 0


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: requests parsed from a buffer, answers written whole."""

    __slots__ = ("_transport", "_buf", "_loop", "_gap", "_long_gap", "_counter", "_streaming", "_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop, gap: float, counter: Counter,
                 long_gap: float = 0.0) -> None:
        self._loop = loop
        self._gap = gap
        self._long_gap = long_gap
        self._counter = counter
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._streaming = False  # a stream is being written: later requests wait (HTTP/1.1 order)
        self._queue: list[tuple[bytes, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._counter.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail()
                return
            head = bytes(buf[:end])
            length = _content_length(head)
            if length < 0:
                self._fail()
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            body = bytes(buf[end + 4:total])
            del buf[:total]
            if self._streaming:
                self._queue.append((head, body))
            else:
                self._answer(head, body)

    def _fail(self) -> None:
        if self._transport is not None:
            self._transport.write(BAD_REQUEST)
            self._transport.close()

    def _answer(self, head: bytes, body: bytes) -> None:
        line = head[:head.find(b"\r\n")]
        transport = self._transport
        if transport is None:
            return
        if line.startswith(b"POST ") and b"/chat/completions " in line:
            self._counter.served += 1
            if b'"stream": true' in body or b'"stream":true' in body:
                with_usage = b'"include_usage": true' in body or b'"include_usage":true' in body
                if line.startswith(b"POST /slow/"):
                    self._stream(STREAM_EVENTS[with_usage], SLOW_GAP_S)
                elif _max_tokens(body) >= LONG_CONTENT_EVENTS:
                    self._stream(LONG_STREAM_EVENTS[with_usage], self._long_gap)
                else:
                    self._stream(STREAM_EVENTS[with_usage], self._gap)
            else:
                transport.write(COMPLETION)
        elif line.startswith(b"GET /v1/models "):  # what the core reads at start: the model it is asked for
            transport.write(MODEL_LIST)
        elif line.startswith(b"GET /stats "):
            transport.write(_response("200 OK", b"application/json",
                                      json.dumps({"served": self._counter.served,
                                                  "connections": self._counter.connections}).encode()))
        else:
            transport.write(NOT_FOUND)

    def _stream(self, events: list[bytes], gap: float) -> None:
        self._streaming = True
        self._transport.write(STREAM_HEAD + events[0])
        self._later(gap, events, 1)

    def _later(self, gap: float, events: list[bytes], i: int) -> None:
        if gap > 0:
            self._loop.call_later(gap, self._next_event, gap, events, i)
        else:
            self._loop.call_soon(self._next_event, gap, events, i)

    def _next_event(self, gap: float, events: list[bytes], i: int) -> None:
        transport = self._transport
        if transport is None:
            return
        if i < len(events):
            transport.write(events[i])
            self._later(gap, events, i + 1)
            return
        transport.write(b"0\r\n\r\n")
        self._streaming = False
        while self._queue and not self._streaming:
            head, body = self._queue.pop(0)
            self._answer(head, body)


def _max_tokens(body: bytes) -> int:
    """The request's `max_tokens` (0 when absent), read without decoding the JSON."""
    at = body.find(b'"max_tokens"')
    if at < 0:
        return 0
    digits = body[at + 12:at + 32].lstrip(b": \t")
    end = 0
    while end < len(digits) and digits[end:end + 1].isdigit():
        end += 1
    return int(digits[:end]) if end else 0


def _content_length(head: bytes) -> int:
    """The body length of a request head; 0 without a body, -1 for what this server refuses."""
    lower = head.lower()
    if b"\r\ntransfer-encoding:" in lower:
        return -1  # every client of the bench sends Content-Length
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    stop = lower.find(b"\r\n", at + 2)
    try:
        return int(lower[at + 17: stop if stop >= 0 else None])
    except ValueError:
        return -1


async def serve(host: str, port: int, gap: float, long_gap: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    counter = Counter()
    server = await loop.create_server(lambda: UpstreamProtocol(loop, gap, counter, long_gap), host, port,
                                      backlog=1024)
    print(f"READY port={server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fast fake OpenAI-compatible upstream for the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--gap-ms", type=float, default=1.0, help="pause between stream events")
    parser.add_argument("--long-gap-ms", type=float, default=0.0,
                        help=f"pause between the events of a long ({LONG_CONTENT_EVENTS}-event) stream")
    args = parser.parse_args(argv)
    coro = serve(args.host, args.port, args.gap_ms / 1000, args.long_gap_ms / 1000)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coro)
    else:
        uvloop.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
