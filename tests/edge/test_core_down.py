"""The edge with no core behind it: a clear 503, OpenAI-shaped, and it keeps serving."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai

from edge.app import start
from edge.settings import EdgeSettings
from tests.procs import free_port


def test_core_unreachable_is_503_and_the_edge_keeps_serving(loop_thread):
    runner, port = loop_thread.run(start(EdgeSettings(listen="127.0.0.1:0", core=f"127.0.0.1:{free_port()}")))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="ok-any", max_retries=0)
        for _ in range(2):
            try:
                client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "x"}])
            except openai.APIStatusError as err:
                assert err.status_code == 503 and err.body["code"] == "core_unavailable"
                assert err.response.headers["x-onekey-request-id"].startswith("req_")
            else:
                raise AssertionError("an answer without a core")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        except urllib.error.HTTPError as err:
            assert err.code == 503 and json.loads(err.read())["status"] == "degraded"
        else:
            raise AssertionError("healthy without a core")
    finally:
        loop_thread.run(runner.cleanup())
