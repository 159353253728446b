"""Raw bytes against a real `onekey up`: what no SDK can send, each class of hostile request.

Every answer is OpenAI-shaped and comes at once: bodies that are not JSON objects, coded
bodies, keys that cannot be keys, header lines aiohttp refuses, slow senders and idle
connections. Short limits are configured so the timeouts show in seconds.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zlib

import pytest

from tests.procs import free_port

IDLE_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
MAX_BODY = 64 * 1024
CHAT = {"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}]}


class Up:
    def __init__(self, tmp_path) -> None:
        self.core, self.port, account = free_port(), free_port(), free_port()
        (tmp_path / "onekey.toml").write_text(
            f'[core]\nlisten = "127.0.0.1:{self.core}"\nusage_flush_interval = 0.2\n'
            f'[edge]\nlisten = "127.0.0.1:{self.port}"\nidle_timeout = {IDLE_TIMEOUT}\n'
            f'body_timeout = {BODY_TIMEOUT}\nmax_body_bytes = {MAX_BODY}\n'
            f'[account]\nlisten = "127.0.0.1:{account}"\n')
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ONEKEY_SERVICE_TOKEN"}
        self.log = open(tmp_path / "up.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"],
                                     cwd=tmp_path, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in self.output():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.2)
        self.key = re.search(r"API key\s+(ok-\S+)", self.output()).group(1)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    running = Up(tmp_path_factory.mktemp("up"))
    yield running
    running.stop()
    assert running.proc.returncode == 0, running.output()
    assert "Traceback" not in running.output(), running.output()


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes, float]:
    """Send raw bytes, read the whole answer (the request asks to close): status, headers, body, seconds."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower().decode(): v.strip().decode("latin-1")
               for k, _, v in (line.partition(b":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body, time.monotonic() - started


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out, data = out + rest[:n], rest[n + 2:]
    return out


def post(path: str, body: bytes, key: str | None, extra: bytes = b"") -> bytes:
    auth = b"Authorization: Bearer " + key.encode() + b"\r\n" if key else b""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: onekey\r\nContent-Type: application/json\r\n" + auth
            + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def openai_error(status: int, body: bytes) -> dict:
    payload = json.loads(body)
    assert set(payload) == {"error"} and {"message", "type", "code", "param"} <= set(payload["error"]), body
    assert payload["error"]["type"] == ("invalid_request_error" if status < 500 else "api_error")
    return payload["error"]


def chat_with(**fields) -> bytes:
    return json.dumps({**CHAT, **fields}).encode()


DEEP = b"[" * 300 + b"]" * 300

BODIES = [
    ("invalid utf-8", b'{"model": "sandbox/echo\xff\xfe", "messages": [{"role": "user", "content": "hi"}]}',
     "invalid_encoding", None),
    ("lone surrogate in model", b'{"model": "openai/gpt-4.1-mini\\ud800", "messages": [{"role": "user", '
     b'"content": "hi"}]}', "invalid_encoding", None),
    ("lone surrogate in a key", b'{"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}], '
     b'"metadata": {"\\udfff": "x"}}', "invalid_encoding", None),
    ("mismatched surrogates", b'{"model": "sandbox/echo", "messages": [{"role": "user", '
     b'"content": "\\udc00\\ud800"}]}', "invalid_encoding", None),
    ("deep body", b'{"model": "sandbox/echo", "x": ' + DEEP + b', "messages": [{"role": "user", "content": "hi"}]}',
     "nesting_too_deep", None),
    ("deep messages", b'{"model": "sandbox/echo", "messages": [{"role": "user", "content": ' + DEEP + b"}]}",
     "nesting_too_deep", None),
    ("deep metadata", b'{"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}], '
     b'"metadata": {"a": ' + DEEP + b"}}", "nesting_too_deep", None),
    ("very deep", b"{\"a\": " + b"[" * 30000 + b"]" * 30000 + b"}", "nesting_too_deep", None),
    ("NaN", chat_with()[:-1] + b', "temperature": NaN}', "invalid_number", None),
    ("Infinity", chat_with()[:-1] + b', "temperature": Infinity}', "invalid_number", None),
    ("float too large", chat_with()[:-1] + b', "temperature": 1e400}', "invalid_number", None),
    ("integer too large", chat_with()[:-1] + b', "seed": 123456789012345678901234567890}', "invalid_number", None),
    ("top level array", b"[" + chat_with() + b"]", "invalid_json", None),
    ("top level string", b'"hello"', "invalid_json", None),
    ("model not a string", chat_with(model=["sandbox/echo"]), "invalid_type", "model"),
    ("stream not a boolean", chat_with(stream="true"), "invalid_type", "stream"),
    ("stream_options not an object", chat_with(stream=True, stream_options="usage"), "invalid_type",
     "stream_options"),
    ("max_tokens not an integer", chat_with(max_tokens="100"), "invalid_type", "max_tokens"),
    ("max_completion_tokens negative", chat_with(max_completion_tokens=-5), "invalid_type",
     "max_completion_tokens"),
    ("n not an integer", chat_with(n=1.5), "invalid_type", "n"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, body, code, param", BODIES, ids=[b[0] for b in BODIES])
def test_hostile_bodies_are_400_at_once(up, name, body, code, param):
    for path in ("/v1/chat/completions", "/chat/completions"):
        status, _, answer, seconds = exchange(up.port, post(path, body, up.key))
        assert status == 400, (name, answer)
        error = openai_error(status, answer)
        assert (error["code"], error["param"]) == (code, param), error
        assert seconds < 5, (name, seconds)  # milliseconds in truth; a hang was 15 s and more


@pytest.mark.slow
@pytest.mark.parametrize("field, value", [("max_output_tokens", "9"), ("previous_response_id", 7)])
def test_responses_fields_the_core_reads_are_typed(up, field, value):
    body = json.dumps({"model": "sandbox/echo", "input": "hi", field: value}).encode()
    status, _, answer, _ = exchange(up.port, post("/v1/responses", body, up.key))
    assert status == 400 and openai_error(status, answer)["param"] == field


def coded(body: bytes, coding: str) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: onekey\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Encoding: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (UP_KEY[0].encode(), coding.encode(), len(body))) + body


UP_KEY: list[str] = []


@pytest.mark.slow
def test_content_encoding(up):
    UP_KEY[:] = [up.key]
    plain = chat_with()
    for body, coding in ((gzip.compress(plain), "gzip"), (zlib.compress(plain), "deflate"),
                         (gzip.compress(plain), "GZIP"), (plain, "identity")):
        status, _, answer, _ = exchange(up.port, coded(body, coding))
        assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == "hi", answer
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MiB of zeros in about 64 KiB... less
    assert len(bomb) < MAX_BODY
    cases = [
        (bomb, "gzip", 413, "request_too_large"),
        (plain, "gzip", 400, "invalid_content_encoding"),             # a gzip header over a plain body
        (gzip.compress(plain)[:-12], "gzip", 400, "invalid_content_encoding"),   # truncated
        (gzip.compress(plain) + b"junk", "gzip", 400, "invalid_content_encoding"),
        (b"\x1f\x8b\x08\x00" + os.urandom(64), "gzip", 400, "invalid_content_encoding"),
        (plain, "br", 415, "unsupported_content_encoding"),
        (plain, "gzip, br", 415, "unsupported_content_encoding"),
        (plain, "x-made-up", 415, "unsupported_content_encoding"),
    ]
    for body, coding, expected, code in cases:
        status, _, answer, seconds = exchange(up.port, coded(body, coding))
        assert (status, openai_error(status, answer)["code"]) == (expected, code), (coding, answer)
        assert seconds < 5
    # A body over the raw limit is refused by its Content-Length alone.
    status, _, answer, _ = exchange(up.port, coded(b"x" * (MAX_BODY + 1), "gzip"))
    assert status == 413


def auth_request(value: bytes, header: bytes = b"Authorization") -> bytes:
    body = chat_with()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: onekey\r\nContent-Type: application/json\r\n"
            + header + b": " + value + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


@pytest.mark.slow
@pytest.mark.parametrize("value, expected", [
    (b"Bearer ok-\xe9\xe8\xff", 401),                      # latin-1 bytes, not UTF-8
    (b"Bearer ok-\xc3\xa9t\xc3\xa9", 401),                  # UTF-8, not ASCII
    (b"Bearer ok-SECRET0123\x00456", 401),                   # NUL: refused by the parser itself
    (b"Bearer ok-SECRET0123\x7f456", 401),
    (b"Bearer ok-SECRET0123\x01456", 401),
    (b"Bearer " + b"k" * 600, 401),                           # longer than any key
    (b"Bearer " + b"k" * (100 * 1024), 431),                  # 100 KiB
    (b"Basic dXNlcjpwYXNz", 401),
    (b"Bearer", 401),
])
def test_any_bytes_in_the_key_header_are_401_or_431(up, value, expected):
    status, _, answer, _ = exchange(up.port, auth_request(value))
    assert status == expected, answer
    error = openai_error(status, answer)
    assert error["code"] in ("invalid_api_key", "header_too_large")
    assert b"SECRET" not in answer and b"kkkk" not in answer


@pytest.mark.slow
@pytest.mark.parametrize("value", [b"\xe9\xff", b"x\x00y", b"k" * (100 * 1024)])
def test_any_bytes_in_x_api_key_never_500(up, value):
    status, _, answer, _ = exchange(up.port, auth_request(value, b"x-api-key"))
    assert status in (401, 431), answer
    openai_error(status, answer)


@pytest.mark.slow
def test_a_header_aiohttp_refuses_is_an_openai_400_that_does_not_echo_it(up):
    for bad in (b"X Bad Name: ok-SECRETVALUE\r\n", b"X-Bad: ok-SECRET\x00VALUE\r\n", b": ok-SECRETVALUE\r\n",
                b"X-Folded: a\r\n ok-SECRETVALUE\r\n"):
        request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: onekey\r\n" + bad
                   + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        status, headers, answer, _ = exchange(up.port, request)
        assert status == 400, (bad, answer)
        assert headers["content-type"].startswith("application/json")
        assert openai_error(status, answer)["code"] == "malformed_request"
        assert b"SECRET" not in answer
    # A garbage request line too.
    status, _, answer, _ = exchange(up.port, b"\x16\x03\x01 ok-SECRET HTTP/1.1\r\n\r\n")
    assert status == 400 and b"SECRET" not in answer


@pytest.mark.slow
def test_lone_surrogates_in_a_path_are_404(up):
    for path in (b"/v1/models/%ED%A0%80", b"/v1/responses/resp_%ED%A0%80", b"/models/\xed\xa0\x80"):
        request = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + up.key.encode() \
            + b"\r\nConnection: close\r\n\r\n"
        status, _, answer, _ = exchange(up.port, request)
        assert status in (400, 404), answer
        openai_error(status, answer)


def wait_closed(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes the connection (None if it is still open after `limit`)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started
    return None


@pytest.mark.slow
def test_slow_headers_are_cut_after_the_idle_timeout(up):
    with socket.create_connection(("127.0.0.1", up.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = None
        while closed is None and time.monotonic() - started < IDLE_TIMEOUT + 5:
            try:
                sock.sendall(b"X-Trickle: 1\r\n")  # one header line at a time, never the end
            except OSError:
                closed = time.monotonic() - started
                break
            closed = wait_closed(sock, 0.4)
            closed = closed and time.monotonic() - started
        assert closed is not None and closed < IDLE_TIMEOUT + 3, closed


@pytest.mark.slow
def test_an_idle_keep_alive_connection_is_closed(up):
    with socket.create_connection(("127.0.0.1", up.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b" 200 " in sock.recv(65536)
        closed = wait_closed(sock, IDLE_TIMEOUT + 5)
        assert closed is not None and closed < IDLE_TIMEOUT + 3


@pytest.mark.slow
def test_a_slow_body_gets_408_and_the_connection_is_closed(up):
    body = chat_with()
    with socket.create_connection(("127.0.0.1", up.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + up.key.encode()
                     + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.3)
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        elapsed = time.monotonic() - started
        assert b" 408 " in answer.split(b"\r\n", 1)[0], answer
        assert elapsed < BODY_TIMEOUT + 3
        assert b'"request_timeout"' in answer
        assert wait_closed(sock, 3) is not None


@pytest.mark.slow
def test_every_route_answers_with_and_without_v1(up):
    auth = b"Authorization: Bearer " + up.key.encode() + b"\r\n"
    for path in (b"/models", b"/models/sandbox/echo"):
        for prefix in (b"/v1", b""):
            status, _, answer, _ = exchange(up.port, b"GET " + prefix + path + b" HTTP/1.1\r\nHost: x\r\n" + auth
                                            + b"Connection: close\r\n\r\n")
            assert status == 200, (prefix + path, answer)
    for path in ("/v1/responses", "/responses"):
        status, _, answer, _ = exchange(up.port, post(path, json.dumps({"model": "sandbox/echo", "input": "hi"})
                                                      .encode(), up.key))
        assert status == 200 and json.loads(answer)["object"] == "response"


@pytest.mark.slow
def test_chunked_bodies_are_read_and_broken_framing_is_400(up):
    body = chat_with()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + up.key.encode()
            + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    good = head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, _, answer, _ = exchange(up.port, good)
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == "hi"
    for broken in (head + b"zz\r\n" + body + b"\r\n0\r\n\r\n",                       # not a chunk size
                   head.replace(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked\r\nContent-Length: 5")
                   + b"5\r\nhello\r\n0\r\n\r\n"):                                 # both framings at once
        status, _, answer, _ = exchange(up.port, broken)
        assert status == 400, answer
        openai_error(status, answer)
