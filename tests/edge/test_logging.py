"""A malformed request is refused without its raw bytes reaching a log line."""
from __future__ import annotations

import socket

from tests.procs import Processes


def test_malformed_request_bytes_never_reach_the_log(tmp_path):
    procs = Processes(tmp_path, f"sqlite:///{tmp_path}/router.db", "")
    try:
        secret = "ok-SECRETKEY0123456789abcdef"
        with socket.create_connection(("127.0.0.1", procs.edge_port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + secret.encode() + b"\x00\r\n\r\n")
            answer = sock.recv(1024)
            assert b" 401 " in answer.split(b"\r\n", 1)[0]  # refused by the parser, answered as a bad key
    finally:
        procs.stop()
    logs = procs.logs()
    assert "malformed HTTP request refused" in logs
    assert secret not in logs
