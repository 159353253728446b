"""[edge].core_timeout bounds a whole call, in either shape: before the answer's head a 504,
after it a stream ended with an error event; either way the provider call is cancelled."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from edge.settings import EdgeSettings
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.openai_provider import Behaviour
from tests.stack import Stack, usage_events

CORE_TIMEOUT = 0.5


@pytest.fixture
def timed_stack(loop_thread, fake_openai, tmp_path):
    """The core waits on the provider far longer than the edge waits on the core."""
    s = Stack(CoreSettings(database_url=f"sqlite:///{tmp_path}/router.db", channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05), EdgeSettings(core_timeout=CORE_TIMEOUT), loop=loop_thread)
    yield s
    s.stop()


def post(url: str, key: str, body: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_cancelled(fake) -> None:
    deadline = time.monotonic() + 2.0
    while fake.cancelled == 0:
        assert time.monotonic() < deadline, "the provider call outlived the edge's deadline"
        time.sleep(0.01)


def test_a_call_past_core_timeout_is_a_504_and_the_provider_call_is_cancelled(timed_stack, fake_openai):
    _, key = timed_stack.new_key()
    fake_openai.queue(Behaviour(kind="hang"))
    started = time.monotonic()
    status, raw = post(f"{timed_stack.base_url}/chat/completions", key,
                       {"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "hi"}]})
    took = time.monotonic() - started
    assert status == 504
    assert json.loads(raw)["error"]["type"] == "api_error"
    assert CORE_TIMEOUT * 0.9 <= took < CORE_TIMEOUT + 1.5
    wait_cancelled(fake_openai)
    # The edge goes on answering.
    status, raw = post(f"{timed_stack.base_url}/chat/completions", key,
                       {"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "hello"}]})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "hello"


def test_a_stream_past_core_timeout_ends_with_an_error_event(timed_stack, fake_openai):
    project_id, key = timed_stack.new_key()
    fake_openai.queue(Behaviour(think=30))  # the first event, then a long silence
    started = time.monotonic()
    status, raw = post(f"{timed_stack.base_url}/chat/completions", key,
                       {"model": "openai/gpt-4.1", "stream": True,
                        "messages": [{"role": "user", "content": "one two three"}]})
    took = time.monotonic() - started
    assert status == 200
    events = [line[len(b"data: "):] for line in raw.split(b"\n\n") if line.startswith(b"data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "one "
    assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"
    assert CORE_TIMEOUT * 0.9 <= took < CORE_TIMEOUT + 1.5
    wait_cancelled(fake_openai)
    # What was produced is billed, estimated.
    events = usage_events(timed_stack, project_id, 1)
    assert len(events) == 1 and events[0].usage.estimated
