"""Chat completions clients on a Responses upstream: requests, whole answers, streams, errors.

The upstream examples are Responses wire as OpenAI documents it; what comes out is read by the
openai SDK itself (its chat types, and its stream reader over a mock transport).
"""
from __future__ import annotations

import json
import random

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from router_core.translate.base import TranslationError
from router_core.translate.chat_responses import ChatToResponses
from router_core.usage import Usage

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def request(body: dict) -> dict:
    return ChatToResponses().request(body, "gpt-5.1-codex")


# ---- requests -------------------------------------------------------------------------------

def test_messages_become_input_items():
    out = request({"model": "gpt-5.1-codex", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21°C"}]},
    ]})
    assert out["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"}]},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "-3°C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "21°C"},
    ]
    assert out["store"] is False and out["model"] == "gpt-5.1-codex"


def test_settings_map_and_tools_are_not_made_strict():
    out = request({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": {
        "type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False,
        "max_completion_tokens": 2048, "temperature": 0.5, "reasoning_effort": "high", "verbosity": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                   "strict": True}},
        "stream": True, "stream_options": {"include_usage": True}, "user": "u1", "seed": 7})
    assert out["tools"] == [{"type": "function", "name": "get_weather", "strict": False,
                             "description": "Get the weather", "parameters": WEATHER["function"]["parameters"]}]
    assert out["tool_choice"] == {"type": "function", "name": "get_weather"} and out["parallel_tool_calls"] is False
    assert out["max_output_tokens"] == 2048 and out["temperature"] == 0.5 and out["reasoning"] == {"effort": "high"}
    assert out["text"] == {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True},
                           "verbosity": "low"}
    assert out["stream"] is True and "stream_options" not in out and out["user"] == "u1" and "seed" not in out
    assert request({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5})["max_output_tokens"] == 5


@pytest.mark.parametrize(("body", "param"), [
    ({"stop": ["\n"]}, "stop"),
    ({"logprobs": True}, "logprobs"),
    ({"n": 2}, "n"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
     "messages[0].content[0].file.file_data"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": []}, "messages"),
])
def test_what_cannot_go_is_refused_by_name(body, param):
    with pytest.raises(TranslationError) as raised:
        request({"messages": [{"role": "user", "content": "x"}], **body})
    assert raised.value.param == param


def test_zero_penalties_are_accepted():
    request({"messages": [{"role": "user", "content": "x"}], "frequency_penalty": 0, "presence_penalty": 0.0})


# ---- whole answers ----------------------------------------------------------------------------

def response(output: list, status: str = "completed", incomplete: dict | None = None) -> bytes:
    """A Response as OpenAI documents it."""
    return json.dumps({
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", "object": "response",
        "created_at": 1741476777, "status": status, "error": None, "incomplete_details": incomplete,
        "instructions": None, "max_output_tokens": None, "model": "gpt-5.1-codex", "output": output,
        "parallel_tool_calls": True, "previous_response_id": None, "store": False, "temperature": 1,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1,
        "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 128}, "output_tokens": 52,
                  "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 380},
        "user": None, "metadata": {}}).encode()


REASONING = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking."}]}
MESSAGE = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": "The image depicts a boardwalk.", "annotations": []}]}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_abc", "name": "get_weather",
        "arguments": "{\"city\":\"Oslo\"}", "status": "completed"}


def chat(body: bytes) -> ChatCompletion:
    return ChatCompletion.model_validate(json.loads(ChatToResponses().response(body, "openai/gpt-5.1-codex")))


def test_text_answer():
    out = chat(response([REASONING, MESSAGE]))
    assert out.choices[0].message.content == "The image depicts a boardwalk." and out.choices[0].finish_reason == "stop"
    assert out.model == "openai/gpt-5.1-codex" and out.created == 1741476777
    assert out.usage.prompt_tokens == 328 and out.usage.prompt_tokens_details.cached_tokens == 128
    assert out.usage.completion_tokens_details.reasoning_tokens == 20 and out.usage.total_tokens == 380


def test_tool_call_answer():
    out = chat(response([REASONING, CALL]))
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls[0].id == "call_abc"
    assert choice.message.tool_calls[0].function.arguments == "{\"city\":\"Oslo\"}"


PREAMBLE = {"type": "message", "id": "msg_0", "status": "completed", "role": "assistant", "phase": "commentary",
            "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]}


def test_two_message_items_read_as_two_paragraphs():
    """gpt-5.x codex models may say a preamble in its own message item before the answer."""
    assert chat(response([PREAMBLE, MESSAGE])).choices[0].message.content == (
        "Let me look.\n\nThe image depicts a boardwalk.")
    raw = (ev("response.output_text.delta", 0, item_id="msg_0", output_index=0, content_index=0, delta="Let me ")
           + ev("response.output_text.delta", 1, item_id="msg_0", output_index=0, content_index=0, delta="look.")
           + ev("response.output_text.delta", 2, item_id="msg_1", output_index=1, content_index=0, delta="Done.")
           + ev("response.completed", 3, response=json.loads(response([PREAMBLE, MESSAGE]))))
    out = chunks(run(raw, include_usage=False)[0])
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out[:-1]) == "Let me look.\n\nDone."


def test_incomplete_answer_is_length():
    out = chat(response([MESSAGE], status="incomplete", incomplete={"reason": "max_output_tokens"}))
    assert out.choices[0].finish_reason == "length"


# ---- streams ------------------------------------------------------------------------------------

def ev(kind: str, seq: int, **fields) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n".encode()


def upstream_stream(final: str = "response.completed") -> bytes:
    """A Responses stream: reasoning, text, then a function call, as OpenAI sends them."""
    done = json.loads(response([REASONING, MESSAGE, CALL]))
    return b"".join([
        ev("response.created", 0, response={**done, "status": "in_progress", "output": [], "usage": None}),
        ev("response.in_progress", 1, response={**done, "status": "in_progress", "output": [], "usage": None}),
        ev("response.output_item.added", 2, output_index=0, item={**REASONING, "summary": []}),
        ev("response.reasoning_summary_text.delta", 3, item_id="rs_1", output_index=0, summary_index=0,
           delta="Thinking."),
        ev("response.output_item.done", 4, output_index=0, item=REASONING),
        ev("response.output_item.added", 5, output_index=1, item={**MESSAGE, "status": "in_progress", "content": []}),
        ev("response.content_part.added", 6, item_id="msg_1", output_index=1, content_index=0,
           part={"type": "output_text", "text": "", "annotations": []}),
        ev("response.output_text.delta", 7, item_id="msg_1", output_index=1, content_index=0, delta="The image",
           logprobs=[]),
        ev("response.output_text.delta", 8, item_id="msg_1", output_index=1, content_index=0,
           delta=" depicts a boardwalk.", logprobs=[]),
        ev("response.output_item.done", 9, output_index=1, item=MESSAGE),
        ev("response.output_item.added", 10, output_index=2, item={**CALL, "arguments": "", "status": "in_progress"}),
        ev("response.function_call_arguments.delta", 11, item_id="fc_1", output_index=2, delta="{\"city\":"),
        ev("response.function_call_arguments.delta", 12, item_id="fc_1", output_index=2, delta="\"Oslo\"}"),
        ev("response.function_call_arguments.done", 13, item_id="fc_1", output_index=2, name="get_weather",
           arguments="{\"city\":\"Oslo\"}"),
        ev("response.output_item.done", 14, output_index=2, item=CALL),
        ev(final, 15, response=done),
    ])


def chunks(raw: bytes) -> list:
    """The chat stream's data payloads (decoded JSON, or the [DONE] marker)."""
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            assert block.startswith("data: ")
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def run(raw: bytes, include_usage: bool, piece: int | None = None) -> tuple[bytes, object]:
    translator = ChatToResponses()
    translator.request({"messages": [{"role": "user", "content": "x"}], "stream": True,
                        "stream_options": {"include_usage": include_usage}}, "gpt-5.1-codex")
    stream = translator.stream("openai/gpt-5.1-codex")
    step = piece or len(raw)
    out = b"".join(stream.feed(raw[i:i + step]) for i in range(0, len(raw), step))
    return out + stream.finish(), stream


def sdk(raw: bytes) -> openai.OpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})
    return openai.OpenAI(api_key="k", base_url="http://onekey.test/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))


def test_stream_of_text_and_a_call_with_usage():
    raw, stream = run(upstream_stream(), include_usage=True)
    out = chunks(raw)
    assert out[-1] == "[DONE]" and out[-2]["choices"] == [] and out[-2]["usage"]["prompt_tokens"] == 328
    assert all(c["usage"] is None for c in out[:-2])
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out[:-2]) == "The image depicts a boardwalk."
    assert out[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.usage == Usage(328, 52, 128, 20)
    got = list(sdk(raw).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    calls = [c.choices[0].delta.tool_calls for c in got if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0][0].id == "call_abc" and calls[0][0].function.name == "get_weather"
    assert "".join(c[0].function.arguments for c in calls) == "{\"city\":\"Oslo\"}"
    assert got[-1].usage.completion_tokens == 52


def test_the_sdk_accumulates_the_stream():
    raw, _ = run(upstream_stream(), include_usage=True, piece=7)
    with sdk(raw).chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}]) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "The image depicts a boardwalk." and message.tool_calls[0].id == "call_abc"
    assert message.tool_calls[0].function.arguments == "{\"city\":\"Oslo\"}"


def test_no_usage_chunk_unless_asked():
    raw, stream = run(upstream_stream(), include_usage=False)
    out = chunks(raw)
    assert all(c == "[DONE]" or (c["choices"] and "usage" not in c) for c in out)
    assert stream.usage == Usage(328, 52, 128, 20)  # still metered


@pytest.mark.parametrize("piece", [1, 3, 50])
def test_split_anywhere_gives_the_same_deltas(piece):
    whole = [c if c == "[DONE]" else c["choices"] for c in chunks(run(upstream_stream(), True)[0])]
    split = [c if c == "[DONE]" else c["choices"] for c in chunks(run(upstream_stream(), True, piece)[0])]
    assert split == whole


def test_arguments_sent_only_whole_still_reach_the_client():
    body = upstream_stream()
    body = b"".join(block + b"\n\n" for block in body.split(b"\n\n")
                    if block and b"function_call_arguments.delta" not in block)
    out = chunks(run(body, include_usage=False)[0])
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in out[:-1] if c["choices"][0]["delta"].get("tool_calls")]
    assert "".join(call["function"]["arguments"] for call in calls) == "{\"city\":\"Oslo\"}"


def test_incomplete_stream_finishes_with_length():
    body = upstream_stream("response.incomplete").replace(
        b'"status": "completed", "error": null, "incomplete_details": null',
        b'"status": "incomplete", "error": null, "incomplete_details": {"reason": "max_output_tokens"}')
    out = chunks(run(body, include_usage=False)[0])
    assert out[-2]["choices"][0]["finish_reason"] == "length"


def test_a_failed_response_ends_in_an_error_the_sdk_raises():
    failed = json.loads(response([], status="failed"))
    failed["error"] = {"code": "server_error", "message": "The model failed to generate a response."}
    raw, stream = run(ev("response.created", 0, response={**failed, "status": "in_progress"})
                      + ev("response.failed", 1, response=failed), include_usage=True)
    assert stream.failure_status == 502
    with pytest.raises(openai.APIError, match="failed to generate"):
        list(sdk(raw).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))


def test_an_error_event_and_a_cut_stream():
    raw, stream = run(ev("error", 0, code="rate_limit_exceeded", message="Slow down", param=None), True)
    assert chunks(raw)[-1]["error"]["message"] == "Slow down" and stream.failure_status == 429
    raw, stream = run(upstream_stream()[:600], include_usage=True)
    assert chunks(raw)[-1]["error"]["code"] == "upstream_incomplete" and stream.failure_status == 502


def test_errors_stay_openai_shaped():
    body = json.dumps({"error": {"message": "Unsupported parameter: 'temperature'", "type": "invalid_request_error",
                                 "param": "temperature", "code": "unsupported_parameter"}}).encode()
    assert ChatToResponses().error(400, body) == (400, json.dumps(json.loads(body), separators=(",", ":")).encode())


def test_odd_values_anywhere_never_crash_the_translator():
    """Whatever a client or the upstream sends, nothing but TranslationError comes out."""
    rng = random.Random(21)
    odd = (None, 0, -1, 1.5, "", "x", [], {}, [{}], {"a": 1}, True, "\ud800")

    def mutated(obj: object) -> object:
        obj = json.loads(json.dumps(obj))
        for _ in range(rng.randint(1, 3)):
            node = obj
            while isinstance(node, (dict, list)) and node:
                key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
                if rng.random() < 0.4 or not isinstance(node[key], (dict, list)):
                    node[key] = json.loads(json.dumps(rng.choice(odd)))
                    break
                node = node[key]
        return obj

    body = {"messages": [
        {"role": "system", "content": "x"},
        {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "u"}},
                                     {"type": "file", "file": {"file_data": "d", "filename": "f"}}]},
        {"role": "assistant", "content": "x", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "x"}],
        "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
        "stream": True, "stream_options": {"include_usage": True}}
    upstream = [json.loads(block.split(b"\ndata: ")[1]) for block in upstream_stream().split(b"\n\n") if block]
    whole = json.loads(response([REASONING, MESSAGE, CALL]))
    for _ in range(300):
        try:
            ChatToResponses().request(mutated(body), "m")  # type: ignore[arg-type]
        except TranslationError:
            pass
        translator = ChatToResponses()
        translator.request(body, "m")
        stream = translator.stream("m")
        raw = b"".join(b"data: " + json.dumps(mutated(e) if rng.random() < 0.3 else e).encode() + b"\n\n"
                       for e in upstream)
        chunks(stream.feed(raw) + stream.finish())
        ChatCompletion.model_validate(json.loads(translator.response(json.dumps(mutated(whole)).encode(), "m")))
