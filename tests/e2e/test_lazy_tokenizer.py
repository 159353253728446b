"""The core starts without its tokenizer and loads it for the first estimate (in a process of its own)."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# In a fresh interpreter, so that no earlier test has imported tiktoken already.
SCRIPT = """
import json, sys, tempfile, time
import openai
from onekey.v1 import metering_pb2
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.openai_provider import Behaviour, FakeOpenAI
from tests.stack import LoopThread, Stack

MSGS = [{"role": "user", "content": "count the sheep please"}]
seen = {}
loop = LoopThread()
fake = FakeOpenAI()
loop.run(fake.start())
with tempfile.TemporaryDirectory() as tmp:
    stack = Stack(CoreSettings(database_url=f"sqlite:///{tmp}/router.db", channels=(openai_channel(fake),)),
                  loop=loop)
    try:
        seen["after_start"] = "tiktoken" in sys.modules
        _, key = stack.new_key()
        client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
        client.chat.completions.create(model="openai/gpt-4.1", messages=MSGS)
        seen["after_reported_usage"] = "tiktoken" in sys.modules
        # The first estimate: a whole stream without usage. The SDK leaves at [DONE], while the
        # core may still be loading the encoding for the trailer: that is no cut stream.
        fake.queue(Behaviour(kind="no_usage"))
        raw = client.chat.completions.with_raw_response.create(model="openai/gpt-4.1", messages=MSGS, stream=True)
        seen["streamed"] = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        seen["after_estimate"] = "tiktoken" in sys.modules
        event = None
        for _ in range(100):
            try:
                event = stack.metering.GetRequestUsage(
                    metering_pb2.GetRequestUsageRequest(request_id=raw.headers["x-onekey-request-id"]),
                    metadata=stack.metadata)
                break
            except Exception:
                time.sleep(0.05)
        seen["status"] = event.status
        seen["usage"] = [event.usage.estimated, event.usage.input_tokens, event.usage.output_tokens]
    finally:
        stack.stop()
        loop.run(fake.stop())
        loop.close()
print(json.dumps(seen))
"""


def test_core_starts_without_the_encoding_and_loads_it_for_the_first_estimate():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after_start"] is False, "the core loaded its tokenizer at start-up"
    assert seen["after_reported_usage"] is False, "a request with the provider's usage needs no tokenizer"
    assert seen["after_estimate"] is True
    assert seen["streamed"] == "count the sheep please"
    assert seen["status"] == 200, "a client that had the whole stream did not cut it"
    estimated, input_tokens, output_tokens = seen["usage"]
    # cl100k_base counts the echoed answer as 4 tokens (the byte fallback would say 6).
    assert estimated and output_tokens == 4 and input_tokens > 0
