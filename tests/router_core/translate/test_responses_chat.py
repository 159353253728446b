"""Responses clients on a chat completions upstream: requests, whole answers, streams, errors.

The upstream examples are chat completions wire as OpenAI documents it (and as Anthropic's and
Gemini's compatible endpoints send it); what comes out is checked against the openai SDK's own
types, and streams are read by the SDK itself over a mock transport.
"""
from __future__ import annotations

import itertools
import json
import random

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from router_core.translate import responses_chat
from router_core.translate.base import TranslationError
from router_core.translate.responses_chat import ResponsesToChat
from router_core.usage import Usage

T = ResponsesToChat()
EVENT = TypeAdapter(ResponseStreamEvent)


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch):
    """Ids and clocks that repeat, so two runs of a stream can be compared byte for byte."""
    counter = itertools.count(1)
    monkeypatch.setattr(responses_chat, "_new_id", lambda prefix: f"{prefix}_{next(counter)}")
    monkeypatch.setattr(responses_chat.time, "time", lambda: 1741570283.5)


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None,
          choices: bool = True) -> dict:
    """A chat.completion.chunk as OpenAI streams it."""
    body = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1741570283,
            "model": "claude-sonnet-4-5", "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
            if choices else [], "usage": usage}
    return body


def sse(*chunks: dict, done: bool = True) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n" if done else b"")


def events(raw: bytes) -> list[dict]:
    """The Responses events of a stream, each checked against the SDK's event types."""
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == name_line[7:]
        EVENT.validate_python(data)
        out.append(data)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


def names(evs: list[dict]) -> list[str]:
    return [e["type"] for e in evs]


def run(raw: bytes, splits: int | None = None, finish: bool = True) -> tuple[bytes, responses_chat.ResponsesStream]:
    """Feed upstream bytes in pieces of `splits` bytes (all at once when None)."""
    stream = T.stream("claude-sonnet-4-5")
    step = splits or len(raw)
    out = b"".join(stream.feed(raw[i:i + step]) for i in range(0, len(raw), step))
    return out + (stream.finish() if finish else b""), stream


def sdk_client(raw: bytes) -> openai.OpenAI:
    """An openai client whose every request is answered with `raw` as an event stream."""
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})
    return openai.OpenAI(api_key="k", base_url="http://onekey.test/v1",
                         http_client=httpx2.Client(transport=httpx2.MockTransport(answer)), max_retries=0)


# ---- requests -------------------------------------------------------------------------------

def test_instructions_and_a_string_input():
    body = {"model": "claude-sonnet-4-5", "instructions": "Talk like a pirate.",
            "input": "Are semicolons optional in JavaScript?"}
    assert T.request(body, "claude-sonnet-4-5-20250929") == {
        "model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "system", "content": "Talk like a pirate."},
                     {"role": "user", "content": "Are semicolons optional in JavaScript?"}]}


def test_a_reference_to_reasoning_is_skipped_as_the_reasoning_would_be():
    body = {"input": [{"role": "user", "content": "x"}, {"type": "item_reference", "id": "rs_6806bfca0b2481918a57"},
                      {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}]}
    assert [m["role"] for m in T.request(body, "m")["messages"]] == ["user", "assistant"]


def test_multi_turn_messages_with_developer_and_parts():
    body = {"model": "m", "input": [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "knock knock."},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Who's ", "annotations": []},
                     {"type": "output_text", "text": "there?", "annotations": []}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Orange."}]},
        {"role": "system", "content": [{"type": "input_text", "text": "Be kind."},
                                       {"type": "input_text", "text": "Be brief."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
    ]}
    assert T.request(body, "m")["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "knock knock."},
        {"role": "assistant", "content": "Who's there?"},
        {"role": "user", "content": "Orange."},
        {"role": "system", "content": "Be kind.\n\nBe brief."},
        {"role": "assistant", "content": "I can't."},
    ]


def test_images_by_url_and_data_url_keep_their_detail():
    body = {"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is in this image?"},
        {"type": "input_image", "image_url": "https://upload.wikimedia.org/a.jpg", "detail": "high"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/b.png", "detail": "original"},
    ]}]}
    assert T.request(body, "m")["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]}]


WEATHER = {"type": "function", "name": "get_weather", "description": "Get current temperature for a location.",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"], "additionalProperties": False},
           "strict": True}


def test_tool_round_trip_merges_calls_into_the_assistant_message_before_them():
    body = {"model": "m", "tools": [WEATHER], "tool_choice": "auto", "parallel_tool_calls": True, "input": [
        {"role": "user", "content": "Weather in Paris and Bogotá?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA..."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_12345xyz", "name": "get_weather",
         "arguments": "{\"location\":\"Paris, France\"}", "status": "completed"},
        {"type": "function_call", "id": "fc_2", "call_id": "call_67890abc", "name": "get_weather",
         "arguments": "{\"location\":\"Bogotá, Colombia\"}"},
        {"type": "function_call_output", "call_id": "call_12345xyz", "output": "14°C"},
        {"type": "function_call_output", "call_id": "call_67890abc",
         "output": [{"type": "input_text", "text": "18"}, {"type": "input_text", "text": "°C"}]},
        {"type": "function_call", "call_id": "call_3", "name": "get_weather", "arguments": "{}"},
    ]}
    out = T.request(body, "m")
    assert out["messages"] == [
        {"role": "user", "content": "Weather in Paris and Bogotá?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_12345xyz", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}},
            {"id": "call_67890abc", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\":\"Bogotá, Colombia\"}"}}]},
        {"role": "tool", "tool_call_id": "call_12345xyz", "content": "14°C"},
        {"role": "tool", "tool_call_id": "call_67890abc", "content": "18°C"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_3", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
    ]
    assert out["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": WEATHER["description"], "parameters": WEATHER["parameters"],
        "strict": True}}]
    assert out["tool_choice"] == "auto" and "parallel_tool_calls" not in out  # true is chat's default


@pytest.mark.parametrize(("choice", "expected"), [
    ("none", "none"), ("required", "required"),
    ({"type": "function", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice, expected):
    assert T.request({"input": "x", "tools": [WEATHER], "tool_choice": choice}, "m")["tool_choice"] == expected


def test_tool_settings_without_tools_are_dropped():
    """Chat refuses tool_choice and parallel_tool_calls without tools; Responses takes them."""
    out = T.request({"input": "x", "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}, "m")
    assert out == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_settings_that_map_and_those_dropped():
    body = {"model": "m", "input": "x", "max_output_tokens": 1024, "temperature": 0.2, "top_p": 0.9,
            "reasoning": {"effort": "low", "summary": "auto"}, "safety_identifier": "user-hash",
            "metadata": {"k": "v"}, "store": True, "prompt_cache_key": "abc", "truncation": "disabled",
            "text": {"format": {"type": "text"}, "verbosity": "low"}, "service_tier": "auto"}
    assert T.request(body, "gemini-2.5-flash") == {
        "model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1024,
        "temperature": 0.2, "top_p": 0.9, "reasoning_effort": "low", "user": "user-hash"}
    assert T.request({"input": "x", "user": "u1"}, "m")["user"] == "u1"


def test_reasoning_effort_goes_only_to_models_that_take_it():
    """One rule with the Messages translation: Anthropic's compatible endpoint ignores it anyway."""
    body = {"input": "x", "reasoning": {"effort": "high", "summary": "auto"}}
    assert T.request(body, "gemini-3-flash-preview")["reasoning_effort"] == "high"
    for model in ("claude-haiku-4-5", "gemini-2.0-flash", "m"):
        assert "reasoning_effort" not in T.request(body, model)


def test_structured_output_formats():
    schema = {"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
              "required": ["steps"], "additionalProperties": False}
    body = {"input": "solve 8x + 7 = -23",
            "text": {"format": {"type": "json_schema", "name": "math_reasoning", "schema": schema, "strict": True}}}
    assert T.request(body, "m")["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "math_reasoning", "schema": schema, "strict": True}}
    body = {"input": "json please", "text": {"format": {"type": "json_object"}}}
    assert T.request(body, "m")["response_format"] == {"type": "json_object"}


def test_stream_asks_for_usage():
    out = T.request({"input": "x", "stream": True}, "m")
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "stream" not in T.request({"input": "x", "stream": False}, "m")


def test_a_codex_cli_request_goes_through():
    """What Codex CLI sends with store=false: reasoning items back in input, encrypted content asked for."""
    body = {"model": "claude-sonnet-4-5", "instructions": "You are Codex.", "store": False, "stream": True,
            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "0199-abc",
            "reasoning": {"effort": "medium", "summary": "auto"}, "tool_choice": "auto",
            "parallel_tool_calls": False,
            "tools": [{"type": "function", "name": "shell", "description": "Runs a shell command",
                       "strict": False, "parameters": {"type": "object", "properties": {
                           "command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}}],
            "input": [{"type": "message", "role": "developer",
                       "content": [{"type": "input_text", "text": "<permissions>...</permissions>"}]},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]},
                      {"type": "reasoning", "id": "rs_9", "summary": [{"type": "summary_text", "text": "x"}],
                       "content": None, "encrypted_content": None},
                      {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}",
                       "call_id": "call_1"},
                      {"type": "function_call_output", "call_id": "call_1", "output": "README.md"}]}
    out = T.request(body, "claude-sonnet-4-5")
    assert [m["role"] for m in out["messages"]] == ["system", "system", "user", "assistant", "tool"]
    assert out["parallel_tool_calls"] is False and "reasoning_effort" not in out  # Claude does not take it
    assert out["tools"][0]["function"]["strict"] is False


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x", "previous_response_id": "resp_123"}, "previous_response_id"),
    ({"input": "x", "conversation": "conv_123"}, "conversation"),
    ({"input": "x", "background": True}, "background"),
    ({"prompt": {"id": "pmpt_123", "version": "2"}}, "prompt"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": "x"}, {"type": "web_search_call", "id": "ws_1"}]}, "input[1].type"),
    ({"input": "x", "include": ["reasoning.encrypted_content", "web_search_call.action.sources"]}, "include[1]"),
    ({"input": "x", "include": ["message.output_text.logprobs"]}, "include[0]"),
    ({"input": "x", "top_logprobs": 5}, "top_logprobs"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://a/b.png",
                                                "detail": "auto"}]}]}, "input[0].content[0].type"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": [
        {"type": "input_image", "image_url": "https://a/b.png"}]}]}, "input[0].output[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": "x", "tools": [WEATHER], "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format.type"),
    ({"input": 7}, "input"),
    ({}, "input"),
])
def test_what_cannot_go_is_refused_by_name(body, param):
    with pytest.raises(TranslationError) as raised:
        T.request(body, "m")
    assert raised.value.param == param


@pytest.mark.parametrize("tool", [
    {"type": "web_search"}, {"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"},
    {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
    {"type": "mcp", "server_label": "x", "server_url": "https://x"}, {"type": "local_shell"},
    {"type": "custom", "name": "apply_patch", "format": {"type": "text"}},
])
def test_built_in_tools_are_refused_naming_the_tool(tool):
    with pytest.raises(TranslationError) as raised:
        T.request({"input": "x", "tools": [WEATHER, tool]}, "m")
    assert raised.value.param == "tools[1].type"
    assert repr(tool["type"]) in raised.value.message


def test_web_search_refusal_says_what_to_do():
    """Codex offers the hosted web_search by default; its config line turns it off."""
    with pytest.raises(TranslationError) as raised:
        T.request({"input": "x", "tools": [WEATHER, {"type": "web_search", "external_web_access": False}]}, "m")
    assert raised.value.param == "tools[1].type"
    assert "remove it from `tools`" in raised.value.message and 'web_search = "disabled"' in raised.value.message


# Codex 0.169.0's multi-agent tools, as it offers them beside its function tools.
MULTI_AGENT = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [
    {"type": "function", "name": "spawn_agent", "description": "Start a sub-agent.", "strict": False,
     "parameters": {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}},
    {"type": "function", "name": "wait", "parameters": {"type": "object", "properties": {}}}]}


def test_namespace_tools_are_flattened_and_their_calls_sent_back_flat():
    body = {"input": [{"role": "user", "content": "go"},
                      {"type": "function_call", "call_id": "call_1", "name": "spawn_agent",
                       "namespace": "multi_agent_v1", "arguments": "{\"task\":\"t\"}"},
                      {"type": "function_call_output", "call_id": "call_1", "namespace": "multi_agent_v1",
                       "output": "spawned"}],
            "tools": [WEATHER, MULTI_AGENT],
            "tool_choice": {"type": "function", "name": "wait", "namespace": "multi_agent_v1"}}
    out = T.request(body, "claude-haiku-4-5")
    assert [t["function"]["name"] for t in out["tools"]] == [
        "get_weather", "multi_agent_v1__spawn_agent", "multi_agent_v1__wait"]
    assert out["tools"][1]["function"] == {
        "name": "multi_agent_v1__spawn_agent", "description": "Start a sub-agent.", "strict": False,
        "parameters": MULTI_AGENT["tools"][0]["parameters"]}
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "spawned"}
    assert out["tool_choice"] == {"type": "function", "function": {"name": "multi_agent_v1__wait"}}


@pytest.mark.parametrize(("tools", "param"), [
    ([{**MULTI_AGENT, "tools": [{"type": "custom", "name": "x"}]}], "tools[0].tools[0].type"),
    ([{**MULTI_AGENT, "tools": "x"}], "tools[0].tools"),
    ([{"type": "function", "name": "multi_agent_v1__wait"}, MULTI_AGENT], "tools"),
])
def test_what_a_namespace_cannot_hold_is_refused_by_name(tools, param):
    with pytest.raises(TranslationError) as raised:
        T.request({"input": "x", "tools": tools}, "m")
    assert raised.value.param == param


def namespaced() -> ResponsesToChat:
    translator = ResponsesToChat()
    translator.request({"input": "x", "tools": [WEATHER, MULTI_AGENT]}, "claude-haiku-4-5")
    return translator


def test_a_call_of_a_namespace_tool_comes_back_with_its_namespace():
    body = completion({"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "multi_agent_v1__spawn_agent",
                                                          "arguments": "{\"task\":\"t\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        finish="tool_calls")
    resp = Response.model_validate(json.loads(namespaced().response(body, "anthropic/claude-haiku-4-5")))
    assert [(i.name, i.namespace) for i in resp.output] == [("spawn_agent", "multi_agent_v1"), ("get_weather", None)]
    assert "namespace" not in json.loads(namespaced().response(body, "m"))["output"][1]


def test_a_streamed_call_of_a_namespace_tool_comes_back_with_its_namespace():
    raw = sse(chunk({"role": "assistant", "content": None, "tool_calls": [
                  {"index": 0, "id": "call_1", "type": "function",
                   "function": {"name": "multi_agent_v1__spawn_agent", "arguments": ""}}]}),
              chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"task\":\"t\"}"}}]}),
              chunk(finish="tool_calls"))
    stream = namespaced().stream("anthropic/claude-haiku-4-5")
    evs = events(stream.feed(raw) + stream.finish())
    items = [e["item"] for e in evs if e["type"] in ("response.output_item.added", "response.output_item.done")]
    items.append(evs[-1]["response"]["output"][0])
    assert [(i["name"], i["namespace"]) for i in items] == [("spawn_agent", "multi_agent_v1")] * 3
    done = [e for e in evs if e["type"] == "response.function_call_arguments.done"]
    assert done[0]["name"] == "spawn_agent" and json.loads(done[0]["arguments"]) == {"task": "t"}


def test_previous_response_id_says_what_to_do_instead():
    with pytest.raises(TranslationError) as raised:
        T.request({"input": "x", "previous_response_id": "resp_1"}, "m")
    assert "no server-side state" in raised.value.message and "input" in raised.value.message


# ---- whole answers ----------------------------------------------------------------------------

def completion(message: dict, finish: str = "stop", usage: dict | None = None) -> bytes:
    """A chat.completion as OpenAI documents it."""
    return json.dumps({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741569952,
        "model": "claude-sonnet-4-5", "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                                   "logprobs": None, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                           "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
        "service_tier": "default"}).encode()


def answer(body: bytes) -> Response:
    obj = json.loads(T.response(body, "claude-sonnet-4-5"))
    return Response.model_validate(obj)


def test_plain_text_answer():
    resp = answer(completion({"content": "Hello there, how may I assist you today?", "refusal": None,
                              "annotations": []}))
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.status == "completed"
    assert resp.model == "claude-sonnet-4-5" and resp.created_at == 1741569952
    assert resp.output_text == "Hello there, how may I assist you today?"
    assert resp.output[0].type == "message" and resp.output[0].id.startswith("msg_")
    assert resp.error is None and resp.incomplete_details is None
    assert resp.usage.input_tokens == 19 and resp.usage.output_tokens == 10 and resp.usage.total_tokens == 29


def test_tool_calls_answer():
    resp = answer(completion({"content": None, "tool_calls": [
        {"id": "call_12345xyz", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}},
        {"id": "call_67890abc", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\":\"Bogotá, Colombia\"}"}}]},
        finish="tool_calls"))
    assert [item.type for item in resp.output] == ["function_call", "function_call"]
    first = resp.output[0]
    assert first.call_id == "call_12345xyz" and first.name == "get_weather" and first.id.startswith("fc_")
    assert json.loads(first.arguments) == {"location": "Paris, France"} and first.status == "completed"


def test_reasoning_answer_and_usage_details():
    usage = {"prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500,
             "prompt_tokens_details": {"cached_tokens": 1920}, "completion_tokens_details": {"reasoning_tokens": 320}}
    resp = answer(completion({"content": "42", "reasoning_content": "The user asks for the answer."}, usage=usage))
    assert [item.type for item in resp.output] == ["reasoning", "message"]
    assert resp.output[0].summary[0].text == "The user asks for the answer."
    assert resp.usage.input_tokens_details.cached_tokens == 1920
    assert resp.usage.output_tokens_details.reasoning_tokens == 320
    assert resp.usage.total_tokens == 2500


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_a_cut_answer_is_incomplete(finish, reason):
    resp = answer(completion({"content": "Once upon a"}, finish=finish))
    assert resp.status == "incomplete" and resp.incomplete_details.reason == reason


def test_an_empty_answer_still_has_a_message():
    resp = answer(completion({"content": ""}))
    assert resp.output_text == "" and resp.output[0].type == "message"


def test_refusal_answer():
    resp = answer(completion({"content": None, "refusal": "I'm sorry, I can't help with that."}))
    assert resp.output[0].content[0].type == "refusal"


ECHO_REQUEST = {"model": "claude-sonnet-4-5", "instructions": "Be brief.", "input": "weather?", "tools": [WEATHER],
                "tool_choice": "auto", "temperature": 0.3, "top_p": 0.9, "max_output_tokens": 500,
                "metadata": {"ticket": "42"}, "reasoning": {"effort": "low", "summary": "auto"},
                "text": {"format": {"type": "json_object"}}, "parallel_tool_calls": False,
                "safety_identifier": "hash-1", "store": True}


def test_the_response_repeats_the_requests_settings():
    translator = ResponsesToChat()  # one per request, as translator_for makes them
    translator.request(ECHO_REQUEST, "claude-sonnet-4-5-20250929")
    whole = Response.model_validate(json.loads(translator.response(completion({"content": "{}"}), "m")))
    stream = translator.stream("claude-sonnet-4-5")
    streamed = events(stream.feed(TEXT_STREAM) + stream.finish())
    for resp in [whole, *(Response.model_validate(e["response"]) for e in (streamed[0], streamed[-1]))]:
        assert resp.instructions == "Be brief." and resp.tools[0].name == "get_weather"
        assert (resp.temperature, resp.top_p, resp.max_output_tokens) == (0.3, 0.9, 500)
        assert resp.metadata == {"ticket": "42"} and resp.reasoning.effort == "low"
        assert resp.text.format.type == "json_object" and resp.parallel_tool_calls is False
        assert resp.safety_identifier == "hash-1" and resp.store is False  # kept nowhere, whatever was asked
    unseen = ResponsesToChat().response(completion({"content": "x"}), "m")  # no request: the defaults
    assert Response.model_validate(json.loads(unseen)).tools == []


def test_the_sdk_reads_a_whole_answer():
    body = T.response(completion({"content": "Hi!"}), "claude-sonnet-4-5")

    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "application/json"})
    client = openai.OpenAI(api_key="k", base_url="http://onekey.test/v1",
                           http_client=httpx2.Client(transport=httpx2.MockTransport(reply)))
    assert client.responses.create(model="claude-sonnet-4-5", input="hi").output_text == "Hi!"


# ---- streams ------------------------------------------------------------------------------------

TEXT_STREAM = sse(chunk({"role": "assistant", "content": "", "refusal": None}), chunk({"content": "Hello"}),
                  chunk({"content": " world"}), chunk(finish="stop"),
                  chunk(choices=False, usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}))


def test_text_stream_event_sequence():
    raw, stream = run(TEXT_STREAM)
    evs = events(raw)
    assert names(evs) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert evs[0]["response"]["status"] == "in_progress" and evs[0]["response"]["output"] == []
    assert [e["delta"] for e in evs if e["type"] == "response.output_text.delta"] == ["Hello", " world"]
    final = Response.model_validate(evs[-1]["response"])
    assert final.output_text == "Hello world" and final.status == "completed"
    assert final.usage.input_tokens == 9 and stream.usage == Usage(9, 2)


def test_the_sdk_reads_a_text_stream():
    raw, _ = run(TEXT_STREAM)
    client = sdk_client(raw)
    streamed = list(client.responses.create(model="claude-sonnet-4-5", input="hi", stream=True))
    assert streamed[-1].type == "response.completed"
    with client.responses.stream(model="claude-sonnet-4-5", input="hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "Hello world" and final.output_text == "Hello world"


# Two parallel calls as OpenAI streams them: id and name once, then argument fragments by index,
# the two calls' fragments interleaved.
PARALLEL = sse(
    chunk({"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\""}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_ABCDEF", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{\"location\": \"Bogotá\"}"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": \"Paris, France\"}"}}]}),
    chunk(finish="tool_calls"),
    chunk(choices=False, usage={"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120,
                                "prompt_tokens_details": {"cached_tokens": 64},
                                "completion_tokens_details": {"reasoning_tokens": 0}}))


def test_parallel_tool_calls_stream():
    raw, stream = run(PARALLEL)
    evs = events(raw)
    added = [e for e in evs if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["call_id"], e["item"]["arguments"]) for e in added] == [
        (0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", ""), (1, "call_ABCDEF", "")]
    done = {e["output_index"]: e for e in evs if e["type"] == "response.function_call_arguments.done"}
    assert json.loads(done[0]["arguments"]) == {"location": "Paris, France"}
    assert json.loads(done[1]["arguments"]) == {"location": "Bogotá"} and done[1]["name"] == "get_weather"
    final = Response.model_validate(evs[-1]["response"])
    assert [(i.call_id, i.status) for i in final.output] == [("call_DdmO9pD3xa9XTPNJ32zg2hcA", "completed"),
                                                            ("call_ABCDEF", "completed")]
    assert stream.usage == Usage(80, 40, 64, 0)
    assert final.usage.input_tokens_details.cached_tokens == 64


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_a_stream_split_anywhere_gives_the_same_events(piece, monkeypatch):
    whole, _ = run(PARALLEL)
    counter = itertools.count(1)  # the same ids again
    monkeypatch.setattr(responses_chat, "_new_id", lambda prefix: f"{prefix}_{next(counter)}")
    split, _ = run(PARALLEL, splits=piece)
    assert split == whole


def test_a_stream_split_at_random_places(monkeypatch):
    whole, _ = run(PARALLEL + b"")
    rng = random.Random(7)
    for _ in range(20):
        counter = itertools.count(1)
        monkeypatch.setattr(responses_chat, "_new_id", lambda prefix, c=counter: f"{prefix}_{next(c)}")
        stream = T.stream("claude-sonnet-4-5")
        cuts = sorted(rng.sample(range(1, len(PARALLEL)), 12))
        pieces = [PARALLEL[a:b] for a, b in zip([0, *cuts], [*cuts, len(PARALLEL)])]
        assert b"".join(stream.feed(p) for p in pieces) + stream.finish() == whole


def test_the_sdk_accumulates_parallel_tool_calls():
    raw, _ = run(PARALLEL, splits=5)
    with sdk_client(raw).responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert [json.loads(item.arguments)["location"] for item in final.output] == ["Paris, France", "Bogotá"]


def test_gemini_tool_calls_whole_at_one_index_with_stop():
    """Gemini sends each call whole, at index 0 (or none), and ends with finish_reason stop."""
    raw, _ = run(sse(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "function-call-1", "type": "function",
                                                    "function": {"name": "get_weather",
                                                                 "arguments": "{\"location\":\"Paris\"}"}}]}),
        chunk({"tool_calls": [{"id": "function-call-2", "type": "function",
                               "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}]},
              finish="stop"),
        chunk(choices=False, usage={"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10})))
    final = Response.model_validate(events(raw)[-1]["response"])
    assert [(i.call_id, i.name, i.arguments) for i in final.output] == [
        ("function-call-1", "get_weather", "{\"location\":\"Paris\"}"),
        ("function-call-2", "get_time", "{\"tz\":\"CET\"}")]
    assert final.status == "completed"


def test_text_then_a_call_closes_the_message_first():
    raw, _ = run(sse(chunk({"content": "Let me check."}),
                     chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                            "function": {"name": "get_weather", "arguments": "{}"}}]}),
                     chunk(finish="tool_calls")))
    evs = events(raw)
    order = [(e["type"], e.get("output_index")) for e in evs if "output_item" in e["type"]]
    assert order == [("response.output_item.added", 0), ("response.output_item.done", 0),
                     ("response.output_item.added", 1), ("response.output_item.done", 1)]
    final = Response.model_validate(evs[-1]["response"])
    assert [i.type for i in final.output] == ["message", "function_call"]
    # No usage from the upstream: a finished Response still has one (zero), metering estimates.
    assert final.usage.input_tokens == 0 and final.usage.output_tokens == 0


def test_reasoning_stream():
    raw, stream = run(sse(chunk({"role": "assistant", "reasoning_content": "Thinking"}),
                          chunk({"reasoning_content": " hard."}), chunk({"content": "42"}), chunk(finish="stop"),
                          chunk(choices=False, usage={"prompt_tokens": 10, "completion_tokens": 30,
                                                      "total_tokens": 40,
                                                      "completion_tokens_details": {"reasoning_tokens": 25}})))
    evs = events(raw)
    assert names(evs)[2:9] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done"]
    final = Response.model_validate(evs[-1]["response"])
    assert [i.type for i in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Thinking hard." and final.output_text == "42"
    assert final.usage.output_tokens_details.reasoning_tokens == 25 and stream.usage.reasoning_tokens == 25


def test_a_stream_cut_by_max_tokens_ends_incomplete():
    raw, _ = run(sse(chunk({"content": "Once upon"}), chunk(finish="length")))
    evs = events(raw)
    assert evs[-1]["type"] == "response.incomplete"
    assert evs[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_finish_without_done_after_a_finish_reason_completes():
    stream = T.stream("m")
    raw = stream.feed(sse(chunk({"content": "Hi"}), chunk(finish="stop"), done=False))
    assert b"response.completed" not in raw
    evs = events(raw + stream.finish())
    assert evs[-1]["type"] == "response.completed" and evs[-1]["response"]["output"][0]["content"][0]["text"] == "Hi"


def test_finish_without_done_or_finish_reason_is_incomplete():
    body = sse(chunk({"content": "Hi"}), done=False) + b'data: {"choices":[{"index":0,"delta":{"content":"!"}}]}'
    raw, _ = run(body)
    evs = events(raw)
    assert evs[-1]["type"] == "response.incomplete"
    assert Response.model_validate(evs[-1]["response"]).output_text == "Hi!"  # the unterminated event too
    # No reason is known: no incomplete_details rather than a null reason (the AI SDK wants a string).
    assert evs[-1]["response"]["incomplete_details"] is None
    stream = T.stream("m")
    evs = events(stream.finish())
    assert names(evs) == ["response.created", "response.in_progress", "response.incomplete"]


def test_nothing_after_done():
    stream = T.stream("m")
    stream.feed(TEXT_STREAM)
    assert stream.feed(sse(chunk({"content": "late"}))) == b"" and stream.finish() == b""
    assert stream.error("late", "server_error") == b""


def test_crlf_comments_and_keepalives():
    crlf = TEXT_STREAM.replace(b"\n", b"\r\n")
    raw, _ = run(b": OPENROUTER PROCESSING\r\n\r\n" + crlf, splits=3)
    assert Response.model_validate(events(raw)[-1]["response"]).output_text == "Hello world"


def test_error_after_the_first_byte_makes_the_sdk_raise():
    stream = T.stream("m")
    raw = stream.feed(sse(chunk({"content": "Hel"}), done=False)) + stream.error("upstream timed out", "timeout")
    evs = events(raw)
    assert names(evs)[-2:] == ["response.failed", "error"]
    assert evs[-2]["response"]["error"] == {"code": "server_error", "message": "upstream timed out"}
    assert evs[-1]["code"] == "timeout" and evs[-1]["message"] == "upstream timed out"
    assert stream.finish() == b""
    with pytest.raises(openai.APIError, match="upstream timed out"):
        list(sdk_client(raw).responses.create(model="m", input="hi", stream=True))


def test_an_upstream_error_chunk_fails_the_stream():
    stream = T.stream("m")
    raw = stream.feed(sse(chunk({"content": "Hel"}), done=False)
                      + b'data: {"error":{"message":"Overloaded","type":"overloaded_error","code":null}}\n\n')
    evs = events(raw)
    assert names(evs)[-2:] == ["response.failed", "error"] and evs[-1]["message"] == "Overloaded"
    assert stream.failure_status == 529 and stream.finish() == b""
    stream = T.stream("m")
    stream.feed(b'data: {"error":{"message":"Internal error","type":"api_error"}}\n\n')
    assert stream.failure_status == 502


# ---- errors --------------------------------------------------------------------------------------

def test_an_openai_shaped_error_stays_so():
    body = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                 "param": None, "code": "invalid_api_key"}}).encode()
    status, out = T.error(401, body)
    assert status == 401 and json.loads(out) == json.loads(body)


def test_a_gemini_error_list_is_unwrapped():
    body = json.dumps([{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}])
    status, out = T.error(400, body.encode())
    assert status == 400 and json.loads(out) == {"error": {
        "message": "API key not valid.", "type": "invalid_request_error", "param": None, "code": "INVALID_ARGUMENT"}}


def test_a_body_that_is_not_json_becomes_a_well_formed_error():
    status, out = T.error(502, b"<html>Bad Gateway</html>")
    assert status == 502 and json.loads(out)["error"] == {"message": "<html>Bad Gateway</html>", "type": "api_error",
                                                         "param": None, "code": None}
    assert json.loads(T.error(429, b"")[1])["error"]["type"] == "rate_limit_error"


# ---- Gemini 3's thought signatures ride in the call_id ---------------------------------------------

SIGNATURE = "CiQB0e2Kb7+vBz/sig+with/base64=="


def test_a_signed_call_keeps_its_signature_through_the_client():
    """Gemini 3 answers 400 to a history whose function call lost its thought signature."""
    body = completion({"content": None, "tool_calls": [
        {"id": "function-call-1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": SIGNATURE}}},
        {"id": "function-call-2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        finish="tool_calls")
    calls = answer(body).output
    assert calls[0].call_id == "function-call-1~sig~" + SIGNATURE and calls[1].call_id == "function-call-2"
    follow_up = {"input": [{"role": "user", "content": "weather?"},
                           *[c.model_dump(exclude_none=True) for c in calls],
                           {"type": "function_call_output", "call_id": calls[0].call_id, "output": "14°C"},
                           {"type": "function_call_output", "call_id": calls[1].call_id, "output": "9:00"}]}
    messages = T.request(follow_up, "gemini-3-pro-preview")["messages"]
    assert messages[1]["tool_calls"] == [
        {"id": "function-call-1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": SIGNATURE}}},
        {"id": "function-call-2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    assert [m["tool_call_id"] for m in messages[2:]] == ["function-call-1", "function-call-2"]


def test_a_streamed_signed_call_keeps_its_signature():
    raw, _ = run(sse(chunk({"role": "assistant", "tool_calls": [
        {"index": 0, "id": "function-call-1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
         "extra_content": {"google": {"thought_signature": SIGNATURE}}}]}, finish="tool_calls")))
    evs = events(raw)
    added = next(e for e in evs if e["type"] == "response.output_item.added")
    assert added["item"]["call_id"] == "function-call-1~sig~" + SIGNATURE
    assert evs[-1]["response"]["output"][0]["call_id"] == "function-call-1~sig~" + SIGNATURE


def test_a_streamed_answer_goes_back_as_the_next_requests_history():
    """What an SDK user does: the finished output items, then the tools' outputs, as the next input."""
    raw, _ = run(sse(chunk({"reasoning_content": "Two cities."}), chunk({"content": "Checking both."}),
                     *[chunk(c) for c in [
                         {"tool_calls": [{"index": 0, "id": "call_A", "type": "function",
                                          "function": {"name": "get_weather", "arguments": "{\"city\":"}}]},
                         {"tool_calls": [{"index": 1, "id": "call_B", "type": "function",
                                          "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                         {"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}]],
                     chunk(finish="tool_calls")), splits=11)
    with sdk_client(raw).responses.stream(model="m", input="weather?") as stream:
        final = stream.get_final_response()
    history = [item.model_dump(exclude_none=True) for item in final.output]
    calls = [item for item in final.output if item.type == "function_call"]
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": f"{i}°C"} for i, c in enumerate(calls)]
    messages = T.request({"input": [{"role": "user", "content": "weather?"}, *history, *outputs]}, "m")["messages"]
    assert messages == [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "call_A", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_B", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": "0°C"},
        {"role": "tool", "tool_call_id": "call_B", "content": "1°C"},
    ]


# ---- whatever a client or an upstream sends, nothing but TranslationError comes out ----------------

ODD_VALUES: tuple[object, ...] = (None, 0, -1, 1.5, "", "x", [], {}, [{}], {"a": 1}, True, "\ud800")


def mutated(obj: object, rng: random.Random) -> object:
    """A copy of a JSON value with one to three values somewhere inside it replaced by odd ones."""
    obj = json.loads(json.dumps(obj))
    for _ in range(rng.randint(1, 3)):
        node = obj
        while isinstance(node, (dict, list)) and node:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if rng.random() < 0.4 or not isinstance(node[key], (dict, list)):
                node[key] = json.loads(json.dumps(rng.choice(ODD_VALUES)))
                break
            node = node[key]
    return obj


def test_odd_values_anywhere_never_crash_the_translator():
    rng = random.Random(21)
    requests = [ECHO_REQUEST, {"input": [
        {"role": "user", "content": [{"type": "input_text", "text": "x"},
                                     {"type": "input_image", "image_url": "data:x", "detail": "low"}]},
        {"type": "function_call", "call_id": "c~sig~s", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "x"}]}],
        "tools": [WEATHER], "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {}}}}]
    upstream = [json.loads(b[6:]) for b in PARALLEL.split(b"\n\n") if b.startswith(b"data: {")]
    whole = json.loads(completion({"content": "x", "reasoning_content": "r", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": "s"}}}]}))
    for _ in range(300):
        try:
            ResponsesToChat().request(mutated(rng.choice(requests), rng), "m")  # type: ignore[arg-type]
        except TranslationError:
            pass
        translator = ResponsesToChat()
        translator.request(rng.choice(requests), "m")
        stream = translator.stream("m")
        events(stream.feed(sse(*(mutated(c, rng) if rng.random() < 0.3 else c for c in upstream))) + stream.finish())
        Response.model_validate(json.loads(translator.response(json.dumps(mutated(whole, rng)).encode(), "m")))
