"""Keys the customer can trust, end to end through the OpenAI SDK: a monthly spend limit and an
expiry enforced by the core, a revoked key told so, and every refused request metered (metadata
only) so it shows up under its request id."""
from __future__ import annotations

import datetime as dt
import json
import time

import grpc
import openai
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from onekey.v1 import admin_pb2, metering_pb2
from router_core.catalog import Catalog
from router_core.settings import CoreSettings
from router_core.usage import cost_micro_usd, reservation_usage
from tests.conftest import openai_channel
from tests.stack import Stack, usage_events
from tests.stores import build

MSGS = [{"role": "user", "content": "count the sheep please"}]
CAP = 20  # output tokens per request of the spend-limit test: a few requests to $0.001


def estimate(cap: int) -> int:
    """The most the core holds for one MSGS request to gpt-4.1 (a generous body size)."""
    body = {"messages": MSGS, "model": "openai/gpt-4.1", "max_tokens": cap}
    return cost_micro_usd(Catalog.load().resolve("openai/gpt-4.1"), reservation_usage(body, len(json.dumps(body)) + 64))


@pytest.fixture
def stack(database_url, loop_thread, fake_openai):
    build(database_url, "core")  # PostgreSQL is upgraded by the operator, not by the core
    s = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05, key_cache_ttl=0.5), loop=loop_thread)
    yield s
    s.stop()


def _ts(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _project(stack: Stack, credit: int = 10_000_000) -> str:
    return stack.admin.CreateProject(admin_pb2.CreateProjectRequest(name="p", credit_micro_usd=credit),
                                     metadata=stack.metadata).id


def _key(stack: Stack, project_id: str, name: str = "k", **limits) -> admin_pb2.CreateKeyResponse:
    return stack.admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=project_id, name=name, **limits),
                                 metadata=stack.metadata)


def test_a_keys_monthly_spend_limit_refuses_with_402_once_reached(stack):
    project_id = _project(stack)
    limit = 1_000  # $0.001: a few gpt-4.1 requests
    created = _key(stack, project_id, spend_limit_micro_usd=limit)
    assert created.key.spend_limit_micro_usd == limit
    other = _key(stack, project_id, "unlimited")
    client = openai.OpenAI(base_url=stack.base_url, api_key=created.secret, max_retries=0)
    served = 0
    for _ in range(100):
        try:
            client.chat.completions.create(model="openai/gpt-4.1", messages=MSGS, max_tokens=CAP)
            served += 1
        except openai.APIStatusError as err:
            assert err.status_code == 402
            assert err.body["code"] == "key_spend_limit_reached" and err.body["type"] == "insufficient_quota"
            assert "monthly spend limit of $0.001" in err.body["message"]
            break
    else:
        pytest.fail("the key never reached its spend limit")
    assert served >= 1
    events = [e for e in usage_events(stack, project_id, served + 1) if e.key_id == created.key.id]
    spent = sum(e.charged_micro_usd for e in events)
    # Held like credit: refused once what is left of the limit cannot cover the request's
    # estimate, never past the limit (the fake reports less than each estimate).
    assert spent <= limit < spent + estimate(CAP)
    refused = next(e for e in events if e.status == 402)
    assert refused.error_code == "key_spend_limit_reached" and refused.charged_micro_usd == 0
    # The limit is the key's, not the project's; free models are not held back.
    assert client.chat.completions.create(model="sandbox/echo", messages=MSGS).choices[0].message.content
    unlimited = openai.OpenAI(base_url=stack.base_url, api_key=other.secret, max_retries=0)
    assert unlimited.chat.completions.create(model="openai/gpt-4.1", messages=MSGS).choices

    stack.admin.UpdateKey(admin_pb2.UpdateKeyRequest(key_id=created.key.id, project_id=project_id,
                                                     clear_spend_limit=True), metadata=stack.metadata)
    deadline = time.monotonic() + 10
    while True:  # every replica sees the change within its key cache's lifetime
        try:
            client.chat.completions.create(model="openai/gpt-4.1", messages=MSGS)
            break
        except openai.APIStatusError as err:
            assert err.status_code == 402 and time.monotonic() < deadline
            time.sleep(0.1)


def test_an_expired_key_is_refused_with_401_saying_it_expired(stack):
    project_id = _project(stack)
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5)
    created = _key(stack, project_id, expires_at=_ts(soon))
    client = openai.OpenAI(base_url=stack.base_url, api_key=created.secret, max_retries=0)
    assert client.chat.completions.create(model="sandbox/echo", messages=MSGS).choices
    time.sleep(max(0.0, (soon - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.1)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="sandbox/echo", messages=MSGS)
    assert info.value.body["code"] == "api_key_expired" and "expired on" in info.value.body["message"]
    request_id = info.value.response.headers["x-onekey-request-id"]
    event = stack.metering.GetRequestUsage(metering_pb2.GetRequestUsageRequest(
        request_id=request_id, project_id=project_id), metadata=stack.metadata)
    assert event.status == 401 and event.error_code == "api_key_expired" and event.key_id == created.key.id

    with pytest.raises(grpc.RpcError) as past:  # an expiry must lie ahead
        _key(stack, project_id, "late", expires_at=_ts(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)))
    assert past.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stack.admin.UpdateKey(admin_pb2.UpdateKeyRequest(key_id=created.key.id, clear_expiry=True), metadata=stack.metadata)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.chat.completions.create(model="sandbox/echo", messages=MSGS)
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_failed_requests_are_metered_with_their_request_id_and_error_code(stack):
    project_id = _project(stack, credit=0)
    created = _key(stack, project_id)
    client = openai.OpenAI(base_url=stack.base_url, api_key=created.secret, max_retries=0)
    failures = {}
    for model, error in (("no-such-model-at-all", openai.NotFoundError), ("gpt-4.1", openai.APIStatusError)):
        with pytest.raises(error) as info:
            client.chat.completions.create(model=model, messages=MSGS)
        failures[info.value.response.headers["x-onekey-request-id"]] = info.value
    ok = client.chat.completions.with_raw_response.create(model="sandbox/echo", messages=MSGS)
    stack.admin.RevokeKey(admin_pb2.RevokeKeyRequest(key_id=created.key.id), metadata=stack.metadata)
    with pytest.raises(openai.AuthenticationError) as revoked:
        client.chat.completions.create(model="sandbox/echo", messages=MSGS)
    assert revoked.value.body["code"] == "api_key_revoked" and "was revoked on" in revoked.value.body["message"]
    failures[revoked.value.response.headers["x-onekey-request-id"]] = revoked.value

    events = {e.request_id: e for e in usage_events(stack, project_id, 4)}
    assert set(events) == set(failures) | {ok.headers["x-onekey-request-id"]}
    by_status = {e.status: e for e in events.values()}
    assert by_status[404].error_code == "model_not_found" and by_status[404].model == ""
    assert by_status[404].requested_model == "", "a name outside the catalog is free text: never kept"
    assert by_status[402].error_code == "insufficient_quota" and by_status[402].model == "openai/gpt-4.1"
    assert by_status[402].requested_model == "gpt-4.1"
    assert by_status[401].error_code == "api_key_revoked" and by_status[401].key_id == created.key.id
    assert by_status[200].error_code == ""
    assert all(e.usage.input_tokens == 0 and e.charged_micro_usd == 0 for e in events.values() if e.status >= 400)

    def listed(**where) -> set[int]:
        return {e.status for e in stack.metering.ListUsageEvents(metering_pb2.ListUsageEventsRequest(
            project_id=project_id, **where), metadata=stack.metadata).events}

    assert listed(status="error") == {401, 402, 404} and listed(status="ok") == {200}
    assert listed(status="402") == {402} and listed(model="sandbox/echo") == {200}
    assert listed(key_id=created.key.id) == {200, 401, 402, 404} and listed(key_id="other") == set()
    with pytest.raises(grpc.RpcError) as bad:
        listed(status="teapot")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    total = stack.metering.GetUsageSummary(metering_pb2.GetUsageSummaryRequest(project_id=project_id),
                                           metadata=stack.metadata).total
    assert total.requests == 4 and total.errors == 3


def test_an_unknown_key_leaves_no_usage_event_anywhere(stack):
    project_id = _project(stack)
    client = openai.OpenAI(base_url=stack.base_url, api_key="ok-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="sandbox/echo", messages=MSGS)
    assert info.value.body["code"] == "invalid_api_key"
    request_id = info.value.response.headers["x-onekey-request-id"]
    stack.loop.run(stack.core.recorder.flush())
    with pytest.raises(grpc.RpcError) as missing:
        stack.metering.GetRequestUsage(metering_pb2.GetRequestUsageRequest(request_id=request_id),
                                       metadata=stack.metadata)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert usage_events(stack, project_id, 0, timeout=0) == []


def test_key_names_are_unique_among_active_keys_and_default_to_key_n(stack):
    project_id = _project(stack)
    first = _key(stack, project_id, "ci")
    with pytest.raises(grpc.RpcError) as taken:
        _key(stack, project_id, "ci")
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS and "already exists" in taken.value.details()
    stack.admin.RevokeKey(admin_pb2.RevokeKeyRequest(key_id=first.key.id), metadata=stack.metadata)
    assert _key(stack, project_id, "ci").key.name == "ci"
    assert [_key(stack, project_id, "").key.name for _ in range(2)] == ["key 1", "key 2"]
    with pytest.raises(grpc.RpcError) as zero:
        _key(stack, project_id, "zero", spend_limit_micro_usd=0)
    assert zero.value.code() == grpc.StatusCode.INVALID_ARGUMENT
