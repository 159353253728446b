"""Messages clients on chat-completions upstreams, with wire examples written from both APIs' docs."""
from __future__ import annotations

import json

import pytest
from anthropic._streaming import SSEDecoder
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from anthropic.lib.streaming._messages import accumulate_event

from router_core.translate.base import TranslationError
from router_core.translate.messages_chat import MessagesToChat
from router_core.usage import Usage

T = MessagesToChat()
STREAM_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def request(**fields: object) -> dict:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hello"}], **fields}
    return T.request(body, "gpt-5")


def refused(param: str, **fields: object) -> None:
    with pytest.raises(TranslationError) as info:
        request(**fields)
    assert info.value.param == param


# ---- request ----------------------------------------------------------------------------------

def test_text_request_keeps_limits_and_sampling() -> None:
    out = request(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END"])
    assert out == {"model": "gpt-5", "messages": [{"role": "user", "content": "Hello"}],
                   "max_completion_tokens": 1024, "temperature": 0.2, "top_p": 0.9, "stop": ["END"]}


def test_max_tokens_field_for_endpoints_that_know_only_the_old_name() -> None:
    out = MessagesToChat(max_tokens_field="max_tokens").request(
        {"max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}, "gemini-2.5-flash")
    assert out["max_tokens"] == 9 and "max_completion_tokens" not in out


def test_stream_asks_for_usage() -> None:
    out = request(stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "stream_options" not in request(stream=False)


@pytest.mark.parametrize("system", ["Be brief.", [{"type": "text", "text": "Be"}, {"type": "text", "text": "brief.",
                                                                                     "cache_control": {"type": "ephemeral"}}]])
def test_system_comes_first(system: object) -> None:
    messages = request(system=system)["messages"]
    assert messages[0]["role"] == "system" and messages[0]["content"] in ("Be brief.", "Be\n\nbrief.")
    assert messages[1] == {"role": "user", "content": "Hello"}


def test_multi_turn_with_text_blocks() -> None:
    out = request(messages=[
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": "How are you?"}])
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"},
                                                            {"type": "text", "text": "there"}]},
                               {"role": "assistant", "content": "Hello!"},
                               {"role": "user", "content": "How are you?"}]


def test_images_base64_and_url() -> None:
    out = request(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"}]}])
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"}]}]


WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tools_and_tool_choice(choice: dict, expected: object) -> None:
    out = request(tools=[WEATHER, {**WEATHER, "name": "noop", "type": "custom", "description": None}],
                  tool_choice=choice)
    assert out["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                          "parameters": WEATHER["input_schema"]}},
        {"type": "function", "function": {"name": "noop", "parameters": WEATHER["input_schema"]}}]
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use() -> None:
    out = request(tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert out["parallel_tool_calls"] is False


def test_no_tool_choice_without_tools() -> None:
    # OpenAI refuses tool_choice when no tools are given.
    assert "tool_choice" not in request(tool_choice={"type": "none"})


def test_tool_use_and_tool_result_round_trip() -> None:
    out = request(messages=[
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "EqQB"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C"},
            {"type": "text", "text": "And be quick."},
            {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True,
             "content": [{"type": "text", "text": "timeout"}]}]}])
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "Error: timeout"},
        {"role": "user", "content": "And be quick."}]


def test_assistant_tool_use_only_has_null_content_and_thinking_only_turns_go() -> None:
    out = request(messages=[
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": ""}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "noop", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]}])
    assert out["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "noop", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ""}]


def test_tool_result_image_follows_in_a_user_message() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
    out = request(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": [{"type": "text", "text": "shot"}, image]}]}])
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "shot"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]}]


def test_user_id_passes_and_long_ones_are_hashed() -> None:
    assert request(metadata={"user_id": "u-42"})["user"] == "u-42"
    long_id = "user_" + "a" * 64 + "_account__session_0b5e7c9e-0000-4000-8000-000000000000"
    hashed = request(metadata={"user_id": long_id})["user"]
    assert len(hashed) == 64 and hashed == request(metadata={"user_id": long_id})["user"]


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (4096, "low"), (4097, "medium"),
                                                 (16384, "medium"), (16385, "high"), (64000, "high")])
def test_thinking_budget_as_reasoning_effort(budget: int, effort: str) -> None:
    assert request(thinking={"type": "enabled", "budget_tokens": budget})["reasoning_effort"] == effort


def test_thinking_disabled_or_adaptive_adds_nothing_and_effort_wins() -> None:
    assert "reasoning_effort" not in request(thinking={"type": "disabled"})
    assert "reasoning_effort" not in request(thinking={"type": "adaptive"})
    out = request(thinking={"type": "enabled", "budget_tokens": 2000}, output_config={"effort": "max"})
    assert out["reasoning_effort"] == "high"
    refused("output_config.effort", output_config={"effort": "extreme"})


def test_effort_goes_only_to_models_that_take_it() -> None:
    """Claude Code asks for effort on every request; gpt-4.1 and grok-4 answer 400 to reasoning_effort."""
    body = {"max_tokens": 64, "messages": [{"role": "user", "content": "x"}],
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    for model in ("gpt-4.1", "grok-4", "gemini-2.0-flash"):
        assert "reasoning_effort" not in T.request(body, model)
    for model in ("o4-mini", "gpt-5.2", "gemini-3-flash-preview", "grok-3-mini"):
        assert T.request(body, model)["reasoning_effort"] == "high"
    with pytest.raises(TranslationError) as info:  # a bad value is still the client's fault
        T.request({**body, "output_config": {"effort": "extreme"}}, "gpt-4.1")
    assert info.value.param == "output_config.effort"


@pytest.mark.parametrize("content", [
    "<env>cwd: /work</env>",
    [{"type": "text", "text": "<env>cwd: /work</env>", "cache_control": {"type": "ephemeral"}}]])
def test_mid_conversation_system_message_keeps_its_place(content: object) -> None:
    """Claude Code 2.1.328 sends models it does not know their environment as messages[1], role system."""
    out = request(system="You are Claude Code.", messages=[
        {"role": "user", "content": "Run echo hi"}, {"role": "system", "content": content},
        {"role": "user", "content": "and tell me"}])
    assert out["messages"] == [{"role": "system", "content": "You are Claude Code."},
                               {"role": "user", "content": "Run echo hi"},
                               {"role": "system", "content": "<env>cwd: /work</env>"},
                               {"role": "user", "content": "and tell me"}]


@pytest.mark.parametrize(("param", "message"), [
    ("messages[1].content[0].type", {"role": "system", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}),
    ("messages[1].content", {"role": "system", "content": 7}),
    ("messages[1].role", {"role": "tool", "content": "x"}),
])
def test_what_a_system_message_cannot_hold_is_refused_by_name(param: str, message: dict) -> None:
    refused(param, messages=[{"role": "user", "content": "q"}, message, {"role": "user", "content": "q"}])


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


@pytest.mark.parametrize("fields", [{"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
                                    {"output_format": {"type": "json_schema", "schema": SCHEMA}}])
def test_structured_output_as_response_format(fields: dict) -> None:
    assert request(**fields)["response_format"] == {"type": "json_schema",
                                                    "json_schema": {"name": "output", "schema": SCHEMA}}


@pytest.mark.parametrize(("param", "fields"), [
    ("tools[1].type", {"tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"}]}),
    ("tools[0].type", {"tools": [{"type": "bash_20250124", "name": "bash"}]}),
    ("tools[0].type", {"tools": [{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]}),
    ("tools[0].type", {"tools": [{"type": "computer_20250124", "name": "computer", "display_width_px": 1024}]}),
    ("tools[0].type", {"tools": [{"type": "code_execution_20250825", "name": "code_execution"}]}),
    ("container", {"container": "container_01"}),
    ("mcp_servers", {"mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}]}),
    ("messages[0].content[1].source.type", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarize"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]}),
    ("messages[0].content[0].citations", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"},
         "citations": {"enabled": True}}]}]}),
    ("messages[0].content[0].type", {"messages": [{"role": "user", "content": [
        {"type": "search_result", "source": "https://x", "title": "x", "content": []}]}]}),
    ("messages[1].content[0].type", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]}]}),
    ("output_config.format", {"output_config": {"format": {"type": "xml"}}}),
    ("messages[1]", {"messages": [{"role": "user", "content": "JSON please"}, {"role": "assistant", "content": "{"}]}),
])
def test_untranslatable_fields_are_refused_by_name(param: str, fields: dict) -> None:
    refused(param, **fields)


def test_plain_text_document_goes_as_text() -> None:
    out = request(messages=[{"role": "user", "content": [
        {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain", "data": "abc"}},
        {"type": "text", "text": "Summarize"}]}])
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Notes\n\nabc"},
                                                            {"type": "text", "text": "Summarize"}]}]


# ---- whole answer -----------------------------------------------------------------------------

def completion(message: dict, finish: str | None = "stop", usage: dict | None = None) -> bytes:
    return json.dumps({"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
                       "created": 1741569952, "model": "gpt-5",
                       "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                    "finish_reason": finish}],
                       "usage": usage or {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29}}).encode()


def answer(message: dict, finish: str | None = "stop", usage: dict | None = None) -> dict:
    result: dict = json.loads(T.response(completion(message, finish, usage), "claude-sonnet-4-5"))
    Message.model_validate(result)  # the Anthropic SDK's own model of a Message takes it
    return result


def test_text_answer() -> None:
    assert answer({"content": "Hello there!", "refusal": None}) == {
        "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Hello there!"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 19, "output_tokens": 10, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0}}


def test_reasoning_and_tool_calls_answer() -> None:
    out = answer({"content": None, "reasoning_content": "Need the weather.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":'}}]},
        "tool_calls")
    assert out["content"] == [
        {"type": "thinking", "thinking": "Need the weather.", "signature": ""},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}]  # not JSON: empty input
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(("finish", "tools", "stop"), [
    ("stop", False, "end_turn"), ("length", False, "max_tokens"), ("tool_calls", True, "tool_use"),
    ("stop", True, "tool_use"),  # Gemini's finish_reason for tool calls
    ("content_filter", False, "refusal"), ("length", True, "max_tokens"), (None, False, "end_turn")])
def test_stop_reasons(finish: str | None, tools: bool, stop: str) -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}] if tools else None
    assert answer({"content": "x", "tool_calls": calls}, finish)["stop_reason"] == stop


def test_openai_refusal_is_text_with_stop_reason_refusal() -> None:
    out = answer({"content": None, "refusal": "I can't help with that."})
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_cached_tokens_are_not_input_tokens() -> None:
    usage = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
             "prompt_tokens_details": {"cached_tokens": 1920},
             "completion_tokens_details": {"reasoning_tokens": 128}}
    assert answer({"content": "x"}, usage=usage)["usage"] == {
        "input_tokens": 86, "output_tokens": 300, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1920}


def test_answer_that_is_not_json() -> None:
    with pytest.raises(ValueError):
        T.response(b"<html>bad gateway</html>", "claude-sonnet-4-5")


# ---- stream -----------------------------------------------------------------------------------

def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None,
          choices: bool = True) -> bytes:
    obj = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-5",
           "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}] if choices else [],
           "usage": usage}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


USAGE = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
         "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 12}}
DONE = b"data: [DONE]\n\n"


def call(index: int | None, call_id: str | None = None, name: str | None = None, args: str = "") -> dict:
    out: dict = {"function": {"arguments": args}}
    if index is not None:
        out["index"] = index
    if call_id:
        out.update(id=call_id, type="function")
        out["function"]["name"] = name
    return out


# OpenAI's parallel tool calls: each call's id and name once, then its argument fragments.
PARALLEL = (chunk({"role": "assistant", "content": None, "refusal": None})
            + chunk({"tool_calls": [call(0, "call_a", "get_weather")]})
            + chunk({"tool_calls": [call(0, args='{"ci')]}) + chunk({"tool_calls": [call(0, args='ty": "Paris"}')]})
            + chunk({"tool_calls": [call(1, "call_b", "get_time")]})
            + chunk({"tool_calls": [call(1, args='{"tz": "Europe/Rome"}')]})
            + chunk(finish="tool_calls") + chunk(usage=USAGE, choices=False) + DONE)


def events(data: bytes) -> list[tuple[str, dict]]:
    """The stream as the Anthropic SDK's own SSE decoder reads it; each event's name is its type."""
    out = []
    for sse in SSEDecoder().iter_bytes(iter([data])):
        body = sse.json()
        assert sse.event == body["type"]
        if sse.event != "error":
            STREAM_EVENT.validate_python(body)  # the SDK's own models of the events take each one
        out.append((sse.event, body))
    return out


def message(data: bytes) -> dict:
    """The message the Anthropic SDK's stream accumulator builds from the stream."""
    snapshot, bufs = None, {}
    for _, body in events(data):
        if body["type"] != "error":
            snapshot = accumulate_event(event=body, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    return snapshot.to_dict()


def run(data: bytes, step: int | None = None) -> tuple[bytes, Usage | None]:
    """The client's stream for upstream `data` read in pieces of `step` bytes (all at once: None)."""
    translator = T.stream("claude-sonnet-4-5")
    step = step or len(data) or 1
    out = b"".join(translator.feed(data[i:i + step]) for i in range(0, len(data), step))
    return out + translator.finish(), translator.usage


def test_text_stream_grammar_and_usage() -> None:
    data = (chunk({"role": "assistant", "content": ""}) + chunk({"content": "Hel"}) + chunk({"content": "lo"})
            + chunk(finish="stop") + chunk(usage=USAGE, choices=False) + DONE)
    out, usage = run(data)
    names = [name for name, _ in events(out)]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    start = events(out)[0][1]["message"]
    assert start["id"] == "msg_123" and start["model"] == "claude-sonnet-4-5" and start["content"] == []
    delta = events(out)[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": 20, "output_tokens": 40, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 100}
    assert usage == Usage(input_tokens=120, output_tokens=40, cached_input_tokens=100, reasoning_tokens=12)
    built = message(out)
    assert built["content"] == [{"type": "text", "text": "Hello"}] and built["stop_reason"] == "end_turn"
    assert built["usage"]["input_tokens"] == 20 and built["usage"]["cache_read_input_tokens"] == 100


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7, 64])
def test_parallel_tool_calls_split_anywhere(step: int | None) -> None:
    out, usage = run(PARALLEL, step)
    assert out == run(PARALLEL)[0]
    built = message(out)
    assert built["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "Europe/Rome"}}]
    assert built["stop_reason"] == "tool_use"
    assert usage is not None and usage.output_tokens == 40
    starts = [(b["index"], b["content_block"]["id"]) for n, b in events(out) if n == "content_block_start"]
    assert starts == [(0, "call_a"), (1, "call_b")]
    order = [(n, b.get("index")) for n, b in events(out) if n.startswith("content_block")]
    assert order[:5] == [("content_block_start", 0), ("content_block_delta", 0), ("content_block_delta", 0),
                         ("content_block_stop", 0), ("content_block_start", 1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(PARALLEL)), max_size=12))
def test_any_cuts_give_the_same_stream(cuts: list[int]) -> None:
    translator = T.stream("claude-sonnet-4-5")
    bounds = [0, *sorted(cuts), len(PARALLEL)]
    out = b"".join(translator.feed(PARALLEL[a:b]) for a, b in zip(bounds, bounds[1:]))
    assert out + translator.finish() == run(PARALLEL)[0]


def test_crlf_events_and_comments() -> None:
    data = (b": keep-alive\r\n\r\n" + PARALLEL.replace(b"\n\n", b"\r\n\r\n"))
    assert run(data, 5)[0] == run(PARALLEL)[0]


def test_gemini_tool_calls_without_index_and_finish_stop() -> None:
    data = (chunk({"role": "assistant", "tool_calls": [
                {"id": "function-call-1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Sydney"}'}},
                {"id": "function-call-2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Perth"}'}}]}, finish="stop",
                usage={"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59})
            + DONE)
    built = message(run(data, 1)[0])
    assert [(b["id"], b["input"]) for b in built["content"]] == [
        ("function-call-1", {"city": "Sydney"}), ("function-call-2", {"city": "Perth"})]
    assert built["stop_reason"] == "tool_use" and built["usage"]["input_tokens"] == 50


def test_every_call_at_index_zero_is_told_apart_by_id() -> None:
    data = (chunk({"tool_calls": [call(0, "c1", "a", '{"x":1}')]}) + chunk({"tool_calls": [call(0, "c2", "b", "{}")]})
            + chunk(finish="tool_calls") + DONE)
    assert [(b["id"], b["name"], b["input"]) for b in message(run(data)[0])["content"]] == [
        ("c1", "a", {"x": 1}), ("c2", "b", {})]


def test_reasoning_content_streams_as_thinking() -> None:
    data = (chunk({"role": "assistant", "reasoning_content": "Let me "}) + chunk({"reasoning_content": "think."})
            + chunk({"content": "42"}) + chunk({"tool_calls": [call(0, "call_x", "lookup", '{"q":"42"}')]})
            + chunk(finish="tool_calls") + DONE)
    out, _ = run(data, 4)
    assert [b["content_block"] for n, b in events(out) if n == "content_block_start"] == [
        {"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""},
        {"type": "tool_use", "id": "call_x", "name": "lookup", "input": {}}]
    assert [b["delta"]["type"] for n, b in events(out) if n == "content_block_delta"] == [
        "thinking_delta", "thinking_delta", "text_delta", "input_json_delta"]
    assert message(out)["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""}, {"type": "text", "text": "42"},
        {"type": "tool_use", "id": "call_x", "name": "lookup", "input": {"q": "42"}}]


@pytest.mark.parametrize(("finish", "stop"), [("length", "max_tokens"), ("content_filter", "refusal"),
                                              ("stop", "end_turn")])
def test_stream_stop_reasons(finish: str, stop: str) -> None:
    out, _ = run(chunk({"content": "x"}) + chunk(finish=finish) + DONE)
    assert message(out)["stop_reason"] == stop


def test_finish_without_done_closes_the_message() -> None:
    translator = T.stream("claude-sonnet-4-5")
    head = translator.feed(chunk({"content": "cut"}) + b'data: {"choices":[{"index":0,"delta":{"content":" sh')
    tail = translator.finish()
    names = [n for n, _ in events(head + tail)]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert message(head + tail)["content"] == [{"type": "text", "text": "cut"}]
    assert translator.finish() == b""  # closing twice adds nothing


def test_finish_of_an_empty_stream_is_a_whole_message() -> None:
    out, usage = run(b"")
    assert [n for n, _ in events(out)] == ["message_start", "message_delta", "message_stop"]
    assert usage is None and message(out)["content"] == []


def test_upstream_error_mid_stream_becomes_the_error_event() -> None:
    translator = T.stream("claude-sonnet-4-5")
    out = translator.feed(chunk({"content": "par"}) + b'data: {"error": {"message": "The server had an error",'
                          b' "type": "server_error", "param": null, "code": null}}\n\n' + DONE)
    out += translator.finish()
    assert events(out)[-1] == ("error", {"type": "error", "error": {"type": "api_error",
                                                                    "message": "The server had an error"}})
    assert [n for n, _ in events(out)].count("message_stop") == 0
    assert translator.failure_status == 502


def test_upstream_overload_mid_stream() -> None:
    translator = T.stream("claude-sonnet-4-5")
    out = translator.feed(b'data: {"error": {"message": "Busy", "type": "overloaded_error"}}\n\n')
    assert events(out)[-1][1]["error"] == {"type": "overloaded_error", "message": "Busy"}
    assert translator.failure_status == 529


def test_stream_error_method() -> None:
    translator = T.stream("claude-sonnet-4-5")
    translator.feed(chunk({"content": "x"}))
    out = translator.error("upstream went away", "upstream_error")
    assert out.startswith(b"event: error\ndata: ")
    assert events(out) == [("error", {"type": "error", "error": {"type": "api_error", "message": "upstream went away"}})]
    assert translator.finish() == b""


def test_last_usage_counts() -> None:
    # xAI: usage one chunk before a trailing empty chunk; Gemini may repeat it.
    data = (chunk({"content": "x"}, usage={"prompt_tokens": 5, "completion_tokens": 1})
            + chunk(finish="stop", usage={"prompt_tokens": 5, "completion_tokens": 3}) + chunk() + DONE)
    out, usage = run(data)
    assert usage == Usage(input_tokens=5, output_tokens=3)
    assert message(out)["usage"]["output_tokens"] == 3


# ---- errors -----------------------------------------------------------------------------------

def openai_error(message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


@pytest.mark.parametrize(("status", "type_", "out_status", "out_type"), [
    (400, "invalid_request_error", 400, "invalid_request_error"),
    (401, "invalid_request_error", 401, "authentication_error"),
    (403, "permission_denied", 403, "permission_error"),
    (404, "invalid_request_error", 404, "not_found_error"),
    (413, "invalid_request_error", 413, "request_too_large"),
    (429, "insufficient_quota", 429, "rate_limit_error"),
    (402, "billing", 402, "billing_error"),
    (500, "server_error", 500, "api_error"),
    (503, "server_error", 503, "api_error"),  # as the native Messages route says it (no 529 for 503)
    (529, "overloaded_error", 529, "overloaded_error"),
])
def test_error_mapping(status: int, type_: str, out_status: int, out_type: str) -> None:
    got_status, body = T.error(status, openai_error("Something happened.", type_))
    assert got_status == out_status
    assert json.loads(body) == {"type": "error", "error": {"type": out_type, "message": "Something happened."}}


def test_error_without_json_body() -> None:
    status, body = T.error(502, b"<html>Bad Gateway</html>")
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error"


def test_provider_overload_is_529() -> None:
    status, body = T.error(503, openai_error("Busy.", "server_error", "provider_overloaded"))
    assert status == 529 and json.loads(body)["error"] == {"type": "overloaded_error", "message": "Busy."}


# ---- Gemini thought signatures ----------------------------------------------------------------

SIGNATURE = "CiQB0e2Kb+/sig==\n"  # any text: the id carries it base64url-encoded


def test_gemini_signature_rides_in_the_tool_use_id_and_goes_back() -> None:
    signed_call = {"id": "function-call-1", "type": "function",
                   "function": {"name": "get_weather", "arguments": '{"city":"Sydney"}'},
                   "extra_content": {"google": {"thought_signature": SIGNATURE}}}
    streamed = message(run(chunk({"role": "assistant", "tool_calls": [signed_call]}, finish="stop") + DONE, 3)[0])
    whole = answer({"content": None, "tool_calls": [signed_call]})
    tool_id = whole["content"][0]["id"]
    assert streamed["content"][0]["id"] == tool_id and tool_id.startswith("function-call-1__thought__")
    assert all(c.isalnum() or c in "_-" for c in tool_id)
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": whole["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "31C"}]}]
    body = {"max_tokens": 64, "messages": history}
    gemini = T.request(body, "gemini-3-pro-preview")["messages"]
    assert gemini[1]["tool_calls"][0]["id"] == "function-call-1"
    assert gemini[1]["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert gemini[2] == {"role": "tool", "tool_call_id": "function-call-1", "content": "31C"}
    openai = T.request(body, "gpt-5")["messages"]
    assert openai[1]["tool_calls"][0] == {"id": "function-call-1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Sydney"}'}}
    assert openai[2]["tool_call_id"] == "function-call-1"


def test_unsigned_ids_and_foreign_marks_stay_as_they_are() -> None:
    assert answer({"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})["content"][0]["id"] == "call_1"
    body = {"max_tokens": 8, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu__thought__%%", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu__thought__%%", "content": "ok"}]}]}
    sent = T.request(body, "gemini-2.5-pro")["messages"]
    assert sent[0]["tool_calls"][0]["id"] == sent[1]["tool_call_id"] == "toolu__thought__%%"
