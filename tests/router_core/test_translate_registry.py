"""The table that picks a translator per (client endpoint, model), and the Wire that carries one
through the forwarder."""
from __future__ import annotations

import json

from router_core.catalog import Catalog
from router_core.providers.anthropic_messages import MESSAGES_WIRE
from router_core.providers.base import OPENAI_WIRE, UpstreamFailure, openai_error
from router_core.translate import PAIRS, translated_endpoints, translator_for, upstream_for
from router_core.translate.chain import MessagesToResponses
from router_core.translate.messages_chat import MessagesToChat
from router_core.translate.responses_chat import ResponsesToChat
from router_core.translate.wire import TranslatedWire
from router_core.usage import Usage

CATALOG = Catalog.load()


def test_a_native_endpoint_gets_no_translator():
    for model_id, endpoint in [("openai/gpt-4.1", "chat/completions"), ("openai/gpt-4.1", "responses"),
                               ("anthropic/claude-haiku-4-5", "messages"), ("google/gemini-2.5-flash",
                                                                            "chat/completions")]:
        assert translator_for(endpoint, CATALOG.resolve(model_id)) is None
        assert upstream_for(endpoint, CATALOG.resolve(model_id).endpoints) is None


def test_each_foreign_endpoint_gets_its_pair():
    google = CATALOG.resolve("google/gemini-2.5-flash")
    assert isinstance(translator_for("messages", google), MessagesToChat)
    assert isinstance(translator_for("responses", google), ResponsesToChat)
    assert isinstance(translator_for("messages", CATALOG.resolve("openai/gpt-4.1")), MessagesToChat)
    assert isinstance(translator_for("responses", CATALOG.resolve("anthropic/claude-haiku-4-5")), ResponsesToChat)
    assert translated_endpoints(google.endpoints) == ["responses", "messages"]
    assert translated_endpoints(CATALOG.resolve("anthropic/claude-haiku-4-5").endpoints) == ["responses"]


def test_a_responses_only_model_is_reached_from_messages_through_chat_and_nothing_else_is_invented():
    codex = CATALOG.resolve("openai/gpt-5.3-codex")  # Responses only: Messages -> chat -> Responses
    chained = translator_for("messages", codex)
    assert isinstance(chained, MessagesToResponses) and (chained.client, chained.upstream) == ("messages", "responses")
    assert translator_for("embeddings", codex) is None


def test_a_pair_whose_module_is_missing_is_skipped(monkeypatch):
    monkeypatch.setitem(PAIRS, "messages", (("chat/completions", "router_core.translate.no_such_module", "X"),))
    assert translator_for("messages", CATALOG.resolve("openai/gpt-4.1")) is None
    assert translated_endpoints(frozenset({"chat/completions"})) == ["responses"]


def test_the_wire_reads_usage_upstream_and_answers_in_the_clients_shape():
    wire = TranslatedWire(MessagesToChat(), "openai/gpt-4.1", MESSAGES_WIRE, OPENAI_WIRE)
    completion = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}).encode()
    assert wire.usage_of_body(completion) == Usage(7, 1)
    message = json.loads(wire.response(completion))
    assert message["type"] == "message" and message["content"] == [{"type": "text", "text": "hi"}]
    failure = wire.failure(UpstreamFailure(429, openai_error("slow down", "rate_limit_error"), True, [("a", "b")]))
    assert failure.status == 429 and failure.retryable and failure.headers == [("a", "b")]
    assert json.loads(failure.body)["error"]["type"] == "rate_limit_error"
    assert wire.prompt_texts({"system": "sys", "messages": [{"role": "user", "content": "hello"}]}) == ["sys", "hello"]


def test_the_wire_streams_through_the_translator_and_ends_in_its_error_event():
    wire = TranslatedWire(MessagesToChat(), "openai/gpt-4.1", MESSAGES_WIRE, OPENAI_WIRE)
    assert wire.stream_error("gone", "upstream_timeout").startswith(b"event: error")  # before any stream
    reader = wire.scanner(False)
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4.1",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
    out = reader.feed(f"data: {json.dumps(chunk)}\n\n".encode())
    assert b"message_start" in out and b"text_delta" in out
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {
        "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    reader.feed(f"data: {json.dumps(usage)}\n\n".encode())
    assert reader.usage == Usage(3, 1) and reader.partial is None and reader.failure_status is None
    # A break after the first byte: the client's stream ends in its own error event.
    assert b"event: error" in wire.stream_error("gone", "upstream_timeout")


def test_resolve_model_accepts_translated_endpoints_and_refuses_the_rest():
    import asyncio

    import pytest

    from onekey.v1 import router_pb2
    from router_core.errors import InvalidRequest
    from router_core.servicers.router import RouterServicer

    class _Pool:
        def has_provider(self, provider: str) -> bool:
            return True

        def serving(self, model) -> list:
            return []  # no channels: the model's status says so, which is not what is tested here

    servicer = RouterServicer(forwarder=None, catalog=CATALOG, keys=None, pool=_Pool())  # type: ignore[arg-type]

    def resolve(model: str, endpoint: str):
        return asyncio.run(servicer.ResolveModel.__wrapped__(  # type: ignore[attr-defined]
            servicer, router_pb2.ResolveModelRequest(model=model, endpoint=endpoint), None))

    assert resolve("google/gemini-2.5-flash", "messages").model.translated_endpoints == ["responses", "messages"]
    assert resolve("openai/gpt-5.3-codex", "messages/count_tokens").model.id == "openai/gpt-5.3-codex"
    assert resolve("openai/gpt-5.3-codex", "messages").model.translated_endpoints == ["chat/completions", "messages"]
    with pytest.raises(InvalidRequest):
        resolve("openai/gpt-5.3-codex", "embeddings")
