"""RouterService.Forward called over real gRPC, as a remote edge or an internal client would: the
core holds on its own, whatever the caller sends (issue 23, finding 2). It makes its own request
ids, and takes client headers only as the edge does: allowlisted names, HTTP's grammar, bounded
sizes; `OpenAI-Organization` and `OpenAI-Project` never reach a provider."""
from __future__ import annotations

import json
import logging

import grpc
import openai
import pytest

from onekey.v1 import common_pb2, router_pb2, router_pb2_grpc
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.stack import Stack, usage_events
from tests.stores import build

MODEL = "openai/gpt-4.1"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "count the sheep"}],
                   "max_tokens": 10}).encode()


@pytest.fixture
def stack(database_url, loop_thread, fake_openai):
    build(database_url, "core")
    s = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05), loop=loop_thread)
    yield s
    s.stop()


def _router(stack: Stack) -> router_pb2_grpc.RouterServiceStub:
    return router_pb2_grpc.RouterServiceStub(stack.channel)


def _forward(stack: Stack, key: str, headers=(), request_id: str = "", body: bytes = BODY):
    """(status, head request id) of one Forward over gRPC."""
    call = router_pb2.ForwardRequest(api_key=key, endpoint="chat/completions", body=body, request_id=request_id,
                                     headers=[common_pb2.Header(name=n, value=v) for n, v in headers])
    messages = list(_router(stack).Forward(call, timeout=30))
    head = next(m.head for m in messages if m.HasField("head"))
    return head.status, head.request_id


def _balance(stack: Stack, project_id: str) -> int:
    from onekey.v1 import metering_pb2
    return stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id),
                                     metadata=stack.metadata).balance_micro_usd


def test_a_forward_reusing_a_request_id_does_not_stop_metering_for_anyone(stack):
    victim_project, victim = stack.new_key()
    attacker_project, attacker = stack.new_key()
    client = openai.OpenAI(base_url=stack.base_url, api_key=victim, max_retries=0)
    used = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10).headers["x-onekey-request-id"]
    usage_events(stack, victim_project, 1)

    status, request_id = _forward(stack, attacker, request_id=used)
    assert status == 200
    assert request_id != used and request_id.startswith("req_"), "the core makes its own ids"
    # Refusals too: a core-made id, told to the caller, and its event written.
    with pytest.raises(grpc.RpcError) as refused:
        _forward(stack, attacker, request_id=used, body=b'{"model": 5}')
    told = dict(refused.value.trailing_metadata())
    assert told["onekey-header-x-onekey-request-id"] not in ("", used)

    before = _balance(stack, victim_project)
    for _ in range(20):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    events = usage_events(stack, victim_project, 21)
    assert len(events) == 21, "metering went on for the other project"
    attacker_events = usage_events(stack, attacker_project, 2)
    assert {e.request_id for e in attacker_events} == {request_id, told["onekey-header-x-onekey-request-id"]}
    assert stack.call(lambda: _flushed(stack)) and _balance(stack, victim_project) < before


async def _flushed(stack: Stack) -> bool:
    return await stack.core.recorder.flush()


def test_headers_outside_the_allowlist_never_reach_the_provider(stack, fake_openai):
    _, key = stack.new_key()
    status, _ = _forward(stack, key, headers=[
        ("OpenAI-Organization", "org-operator"), ("OpenAI-Project", "proj_operator"),
        ("X-Forwarded-For", "10.0.0.1"), ("Cookie", "a=b"), ("openai-beta", "assistants=v2"),
        ("User-Agent", "tests/1.0")])
    assert status == 200
    sent = {k.lower(): v for k, v in fake_openai.received[-1].headers.items()}
    assert "openai-organization" not in sent and "openai-project" not in sent
    assert "x-forwarded-for" not in sent and "cookie" not in sent
    assert sent["openai-beta"] == "assistants=v2" and sent["user-agent"] == "tests/1.0"


@pytest.mark.parametrize("name,value", [
    ("X Bad", "v"), ("user-agent", "a\r\nx-injected: 1"), ("openai-beta", "a\x00b"),
    ("user-agent", "x" * 9000), ("", "v"), ("bad:name", "v"),
])
def test_a_malformed_header_is_refused_or_dropped_and_never_sent(stack, fake_openai, name, value):
    _, key = stack.new_key()
    seen = len(fake_openai.received)
    try:
        status, _ = _forward(stack, key, headers=[(name, value)])
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(err.trailing_metadata())["onekey-error-code"] == "invalid_header"
        assert len(fake_openai.received) == seen, "refused before any provider was asked"
        return
    assert status == 200  # a name outside the allowlist is dropped, as the edge drops it
    sent = fake_openai.received[-1].headers
    assert all(v != value for v in sent.values()) and name not in sent


def test_too_many_headers_are_refused(stack, fake_openai):
    _, key = stack.new_key()
    with pytest.raises(grpc.RpcError) as err:
        _forward(stack, key, headers=[("user-agent", "a")] * 100)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_header_names_from_one_caller_do_not_open_the_breaker_for_others(stack):
    _, attacker = stack.new_key()
    _, other = stack.new_key()
    for _ in range(40):
        try:
            _forward(stack, attacker, headers=[("X Bad", "v")])
        except grpc.RpcError:
            pass
    client = openai.OpenAI(base_url=stack.base_url, api_key=other, max_retries=0)
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=10).choices


@pytest.mark.parametrize("key", ["ok-" + "a" * 600, "ok-bad\x00key", "ok-ключ"])
def test_a_key_no_http_header_could_carry_is_refused_as_the_edge_refuses_it(stack, fake_openai, key):
    seen = len(fake_openai.received)
    with pytest.raises(grpc.RpcError) as err:
        _forward(stack, key)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(err.value.trailing_metadata())["onekey-error-code"] == "invalid_api_key"
    assert key not in (err.value.details() or "") and len(fake_openai.received) == seen
    assert len(stack.core.router._keys._cache) == 0, "neither hashed nor remembered"


def test_a_poisoned_batch_in_a_running_core_loses_nothing_else_at_a_clean_stop(database_url, loop_thread,
                                                                                  fake_openai, caplog):
    """Rows the store refuses (a used request id, a NULL where none may be) in the batches of a
    running core: every other event and charge is written, the stop (what SIGTERM runs) included."""
    import logging

    import sqlalchemy as sa

    from tests.stores import sync_engine

    build(database_url, "core")
    stack = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                               usage_flush_interval=0.05), loop=loop_thread)
    stopped = False
    try:
        project_id, key = stack.new_key()
        client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
        used = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10).headers["x-onekey-request-id"]
        [first] = usage_events(stack, project_id, 1)
        recorder = stack.core.recorder
        row = {"request_id": used, "time": first.time.ToDatetime(), "project_id": project_id, "key_id": first.key_id,
               "model": MODEL, "provider": "openai", "channel": "openai-a", "endpoint": "chat/completions",
               "stream": False, "input_tokens": 1, "output_tokens": 1, "cached_input_tokens": 0,
               "reasoning_tokens": 0, "cache_write_tokens": 0, "estimated": False, "cost_micro_usd": 0,
               "charged_micro_usd": 0, "status": 200, "latency_ms": 1, "ttfb_ms": 1, "error_code": "",
               "requested_model": ""}
        for _ in range(10):
            stack.call(_record_poison(recorder, row))
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10)
        with caplog.at_level(logging.ERROR):
            stack.call(_record_poison(recorder, row))  # and one left for the stop to meet
            for _ in range(5):
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=10)
            stack.stop()
            stopped = True
        assert "could not be written at shutdown" not in caplog.text
        assert recorder.set_aside == 2 * 11 and recorder.pending == 0
    finally:
        if not stopped:
            stack.stop()
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        events = conn.execute(sa.text("SELECT COUNT(*), SUM(charged_micro_usd) FROM usage_events "
                                      "WHERE project_id = :p AND status = 200"), {"p": project_id}).one()
        balance = conn.execute(sa.text("SELECT balance_micro_usd FROM projects WHERE id = :p"),
                               {"p": project_id}).scalar()
    engine.dispose()
    assert events[0] == 16, "every served request has its event"
    assert balance == 10_000_000 - events[1], "and every charge reached the balance"


def _record_poison(recorder, row: dict):
    async def record() -> None:
        recorder.record(dict(row))  # a request id already written
        recorder.record({**row, "request_id": f"req_null_{id(row)}_{recorder.pending}", "model": None})
    return record


def test_an_endpoint_outside_the_api_is_refused_and_not_kept(stack, caplog):
    """`endpoint` is free text to a gRPC caller: a refusal's event keeps it only when it is one
    of the API's own, as a model name is kept only when the catalog knows it."""
    project_id, key = stack.new_key()
    canary = "canary words a caller wrote"
    call = router_pb2.ForwardRequest(api_key=key, endpoint=canary, body=BODY)
    with caplog.at_level(logging.INFO), pytest.raises(grpc.RpcError) as err:
        list(_router(stack).Forward(call, timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [event] = usage_events(stack, project_id, 1)
    assert event.error_code == "unknown_url" and event.endpoint == ""
    assert "refused: request_id=" in caplog.text and canary[:20] not in caplog.text
