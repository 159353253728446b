"""A fake OpenAI-compatible provider on loopback: speaks the wire format, records what it got.

Each request is answered by the next queued behaviour (`fake.queue(...)`), or normally:
the reply echoes the last user message, with real-looking usage. Behaviours cover what a
gateway must survive: error statuses, HTML, hangs, resets, splits across TCP reads.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict | None
    raw: bytes


def listed_today(provider: str) -> list[str]:
    """What a provider's model list holds in these fakes by default: the shipped catalog's
    models of that provider that are not retired, the models the catalog lacks that the
    provider shipped since, and ids of kinds OneKey does not serve (embeddings, speech)."""
    import tomllib
    from importlib import resources

    shipped = tomllib.loads(resources.files("router_core").joinpath("catalog/models.toml").read_text())["models"]
    ids = [m["upstream_id"] for m in shipped if m["provider"] == provider and m["status"] != "retired"]
    return ids + NEWER.get(provider, [])


NEWER = {
    "openai": ["gpt-5.5", "gpt-6-sol", "text-embedding-3-small", "tts-1"],
    "anthropic": ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"],
    "google": ["gemini-3.1-pro-preview", "gemini-embedding-001"],
    "xai": ["grok-4.20"],
}


@dataclass
class Behaviour:
    # ok | status | html | hang | reset_mid_body | split | slow | no_usage | stream_error | stall | head_stall
    kind: str = "ok"
    status: int = 200
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    usage: dict | None = None
    think: float = 0.0          # a pause after the first event, as a reasoning model takes
    head_pause: float = 0.0     # a pause between a stream's head and its first event
    stall_after: int = 2        # `stall`: the stream's events sent before it goes silent for good


def _words(text: str) -> list[str]:
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out or [""]


def response_object(body: dict, output: list[dict], usage: dict) -> dict:
    """A completed Responses API object, with the fields the SDKs expect beside output and usage."""
    return {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
            "status": "completed", "model": body.get("model"), "output": output, "usage": usage,
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0}


def last_user_text(body: dict) -> str:
    source = body.get("messages", body.get("input"))
    if isinstance(source, str):
        return source
    for m in reversed(source if isinstance(source, list) else []):  # `messages: true` on /responses, say
        if isinstance(m, dict) and m.get("role", "user") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                # Odd parts (a `text` that is not a string) are read as empty, as a lenient API would.
                return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


REASONING = "Thinking it over step by step."


def chat_images(body: dict) -> list[str]:
    """The media type (or URL scheme) of each image part in a chat request."""
    found = []
    for m in body.get("messages") or ():
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else ():
            image = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
            if isinstance(image, dict):  # odd shapes (a fuzzer's) are an image of unknown kind
                url = image.get("url") if isinstance(image.get("url"), str) else ""
                found.append(url.split(";", 1)[0].removeprefix("data:") if url.startswith("data:") else "url")
    return found


def responses_images(body: dict) -> list[str]:
    """The media type (or "url") of each input_image part in a Responses request."""
    found = []
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "input_image":
                url = part.get("image_url") if isinstance(part.get("image_url"), str) else ""
                found.append(url.split(";", 1)[0].removeprefix("data:") if url.startswith("data:") else "url")
    return found


def example_of(schema: object) -> object:
    """A value that fits a JSON schema, as a model would make one up."""
    schema = schema if isinstance(schema, dict) else {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: example_of(v) for k, v in (schema.get("properties") or {}).items()}
    return {"string": "Paris", "integer": 1, "number": 1.5, "boolean": True, "array": []}.get(kind, "Paris")


def tool_call_for(body: dict) -> dict | None:
    """The call of the first offered tool, unless the last message is a tool's result."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    messages = body.get("messages") or []
    if not tools or (messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
        return None
    fn = tools[0]["function"]
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
            "function": {"name": fn.get("name"), "arguments": json.dumps(example_of(fn.get("parameters")))}}


def agent_text(body: dict) -> str:
    """After a tool's result, a text quoting it; else the echo of the last user text."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if last.get("role") == "tool":
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return f"The tool said: {content}"
    return last_user_text(body)


class FakeOpenAI:
    """Start with `await fake.start()`; `fake.url` is its base URL (…/v1).

    Subclasses (tests/fakes/providers.py) speak other providers' dialects by overriding the
    class attributes and hooks below: base path, endpoints, auth check, error body, usage.
    """

    base_path = "/v1"
    endpoints: tuple[str, ...] = ("chat/completions", "responses")

    def __init__(self, api_key: str = "sk-fake-provider-key-0123456789", name: str = "fake") -> None:
        self.api_key = api_key
        self.name = name
        self.received: list[Received] = []
        self.list_requests: list[Received] = []  # GET /models
        self.behaviours: deque[Behaviour] = deque()
        self.cancelled = 0
        self.stored: dict[str, dict] = {}  # Responses API objects kept, as the provider does
        # What `GET /models` lists: the provider's own ids, as the real one lists them today: the
        # shipped catalog's models of the provider and newer ones (a test sets what it needs).
        self.models: list[str] = listed_today("openai")
        self.port = 0
        self._runner: web.AppRunner | None = None
        # Opt-in (tests of translated routes set it): chat answers call the first offered tool,
        # then quote its result; `reasoning_effort` adds reasoning_content; image parts are
        # recorded in `images` (their media type), whatever `agentic` says.
        self.agentic = False
        self.images: list[str] = []
        self.usages: list[dict] = []  # the usage each agentic answer reported, for billing checks

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    # -- dialect hooks -------------------------------------------------------------------

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def auth_failure(self, request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "Incorrect API key provided: "
                                            f"{request.headers.get('Authorization', '')[7:]}",
                                            "type": "invalid_request_error", "code": "invalid_api_key",
                                            "param": None}}, status=401)

    def error_payload(self, status: int, message: str) -> object:
        """The provider's error body for a queued `status` behaviour without a body."""
        return {"error": {"message": message, "type": "server_error", "code": None, "param": None}}

    def chat_usage_events(self, base: dict, usage: dict, with_usage: bool) -> list[dict]:
        """The events after the finish chunk that carry usage (OpenAI: one usage-only chunk)."""
        return [{**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}] if with_usage else []

    def model_list(self, request: web.Request) -> web.Response:
        """The provider's answer to `GET /models` (OpenAI's list shape)."""
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1767225600, "owned_by": self.name} for m in self.models]})

    async def _models(self, request: web.Request) -> web.Response:
        # Kept apart from `received`: the core reads the list at start and on every sync, and
        # tests count the generation requests a provider got.
        self.list_requests.append(Received(request.path, dict(request.headers), None, b""))
        return self._auth_error(request) or self.model_list(request)

    def queue(self, *behaviours: Behaviour) -> None:
        self.behaviours.extend(behaviours)

    def handlers(self) -> dict:
        """endpoint -> request handler; a dialect adds its own endpoints."""
        return {"chat/completions": self._chat, "responses": self._responses}

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        handlers = self.handlers()
        for endpoint in self.endpoints:
            app.router.add_post(f"{self.base_path}/{endpoint}", handlers[endpoint])
        app.router.add_get(f"{self.base_path}/models", self._models)
        if "responses" in self.endpoints:
            app.router.add_get(f"{self.base_path}/responses/{{rid}}", self._stored)
            app.router.add_delete(f"{self.base_path}/responses/{{rid}}", self._stored)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> tuple[Received, Behaviour]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        got = Received(request.path, dict(request.headers), body, raw)
        self.received.append(got)
        return got, (self.behaviours.popleft() if self.behaviours else Behaviour())

    def _auth_error(self, request: web.Request) -> web.Response | None:
        return None if self.authorized(request) else self.auth_failure(request)

    async def _common(self, request: web.Request, b: Behaviour) -> web.StreamResponse | None:
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.kind == "status":
            return web.json_response(b.body or self.error_payload(b.status, f"fake error {b.status}"),
                                     status=b.status, headers=b.headers)
        if b.kind == "html":
            return web.Response(status=b.status if b.status != 200 else 502,
                                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                                content_type="text/html")
        if b.kind == "hang":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if b.kind == "reset":
            request.transport.close()
            raise asyncio.CancelledError
        if b.kind == "head_stall":  # a 200 head announcing a body that never comes
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                           "Content-Length": "4096"})
            await resp.prepare(request)
            await self._silence()
        return None

    async def _silence(self) -> None:
        """Send nothing more, until the caller goes (the connection stays open meanwhile)."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def _begin(self, request: web.Request) -> tuple[Received, Behaviour, web.StreamResponse | None]:
        """Record the request; an early answer when the key is wrong or the behaviour decides."""
        got, b = await self._record(request)
        early = self._auth_error(request) or await self._common(request, b)
        return got, b, early

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        if early is not None:
            return early
        body = got.body or {}
        self.images += chat_images(body)
        if self.agentic:
            return await self._agent_chat(request, b, body)
        text = last_user_text(body)
        prompt_tokens = max(1, len(json.dumps(body.get("messages", ""))) // 4)
        words = _words(text)
        usage = b.usage or {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                            "total_tokens": prompt_tokens + len(words),
                            "prompt_tokens_details": {"cached_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": 0}}
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body.get("model"),
                "system_fingerprint": "fp_fake"}
        if not body.get("stream"):
            payload = {**base, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "finish_reason": "stop",
                "logprobs": None}]}
            if b.kind != "no_usage":
                payload["usage"] = usage
            return web.json_response(payload)
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True and b.kind != "no_usage"
        events = []
        for i, word in enumerate(words):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}]}
            if with_usage:
                chunk["usage"] = None
            events.append(chunk)
        events.append({**base, "object": "chat.completion.chunk", **({"usage": None} if with_usage else {}),
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]})
        events += self.chat_usage_events(base, usage, with_usage)
        data = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        return await self._stream(request, b, data)

    async def _agent_chat(self, request: web.Request, b: Behaviour, body: dict) -> web.StreamResponse:
        """A chat answer as a model with tools and reasoning gives it (see `agentic`)."""
        call = tool_call_for(body)
        text = "" if call else agent_text(body)
        reasoning = REASONING if body.get("reasoning_effort") else ""
        prompt_tokens = max(1, len(json.dumps([body.get("messages"), body.get("tools")])) // 4)
        out_tokens = len(_words(text)) + (len(json.dumps(call)) // 4 if call else 0)
        reasoning_tokens = len(_words(reasoning)) if reasoning else 0
        usage = b.usage or {"prompt_tokens": prompt_tokens, "completion_tokens": out_tokens + reasoning_tokens,
                            "total_tokens": prompt_tokens + out_tokens + reasoning_tokens,
                            "prompt_tokens_details": {"cached_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}
        self.usages.append(usage)
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body.get("model"),
                "system_fingerprint": "fp_fake"}
        finish = "tool_calls" if call else "stop"
        if not body.get("stream"):
            message: dict = {"role": "assistant", "content": text or None, "refusal": None}
            if reasoning:
                message["reasoning_content"] = reasoning
            if call:
                message["tool_calls"] = [call]
            return web.json_response({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]})
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": w} for w in (_words(reasoning) if reasoning else [])]
        deltas += [{"content": w} for w in (_words(text) if text else [])]
        if call:
            args = call["function"]["arguments"]
            deltas.append({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"], "arguments": ""}}]})
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]}
                       for i in range(0, len(args), 8)]
        chunks = [{**base, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": d, "finish_reason": None, "logprobs": None}]} for d in deltas]
        chunks.append({**base, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]})
        if with_usage:
            for chunk in chunks:
                chunk["usage"] = None
        chunks += self.chat_usage_events(base, usage, with_usage)
        if b.kind == "stream_error":  # the provider's own error chunk after the first words
            chunks = chunks[:2] + [{"error": {"message": "The server is overloaded.", "type": "server_error",
                                              "code": "overloaded", "param": None}}]
        data = [f"data: {json.dumps(e)}\n\n".encode() for e in chunks]
        data += [b"data: [DONE]\n\n"] if b.kind != "stream_error" else []
        return await self._stream(request, b, data)

    async def _stream(self, request: web.Request, b: Behaviour, data: list[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            if b.head_pause:
                await asyncio.sleep(b.head_pause)
            if b.kind == "split":
                blob = b"".join(data)
                for i in range(0, len(blob), 7):  # cut lines at arbitrary places
                    await resp.write(blob[i:i + 7])
                    await asyncio.sleep(0)
            else:
                for i, piece in enumerate(data):
                    if b.kind == "reset_mid_body" and i == 2:
                        request.transport.close()
                        return resp
                    if b.kind == "stall" and i == b.stall_after:
                        await asyncio.sleep(3600)  # silent until the caller goes
                    await resp.write(piece)
                    if b.think and i == 0:
                        await asyncio.sleep(b.think)
                    if b.chunk_delay:
                        await asyncio.sleep(b.chunk_delay)
            await resp.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.cancelled += 1
            raise
        return resp

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        if early is not None:
            return early
        body = got.body or {}
        self.images += responses_images(body)
        if self.agentic:
            return await self._agent_responses(request, b, body)
        text = last_user_text(body)
        in_tokens = max(1, len(json.dumps(body.get("input", ""))) // 4)
        usage = b.usage or {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                            "output_tokens": len(_words(text)), "output_tokens_details": {"reasoning_tokens": 0},
                            "total_tokens": in_tokens + len(_words(text))}
        item = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}
        response = response_object(body, [item], usage)
        if body.get("store") is not False:
            self.stored[response["id"]] = response
        if not body.get("stream"):
            return web.json_response(response)
        pending = {k: v for k, v in response.items() if k != "usage"} | {"status": "in_progress", "output": []}
        events = [("response.created", {"response": pending})]
        for word in _words(text):
            events.append(("response.output_text.delta", {"item_id": "msg_fake", "output_index": 0,
                                                          "content_index": 0, "delta": word, "logprobs": []}))
        events.append(("response.completed", {"response": response}))
        data = [f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': i, **payload})}\n\n".encode()
                for i, (name, payload) in enumerate(events)]
        return await self._stream(request, b, data)

    async def _agent_responses(self, request: web.Request, b: Behaviour, body: dict) -> web.StreamResponse:
        """A Responses answer as a model with tools and reasoning gives it (see `agentic`)."""
        items = body.get("input") if isinstance(body.get("input"), list) else []
        last = items[-1] if items and isinstance(items[-1], dict) else {}
        tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
        reasoning = REASONING if (body.get("reasoning") or {}).get("effort") else ""
        output: list[dict] = []
        if reasoning:
            output.append({"type": "reasoning", "id": "rs_fake", "summary": [
                {"type": "summary_text", "text": reasoning}]})
        if tools and last.get("type") != "function_call_output":
            args = json.dumps(example_of(tools[0].get("parameters")))
            output.append({"type": "function_call", "id": "fc_fake", "call_id": f"call_{uuid.uuid4().hex[:12]}",
                           "name": tools[0].get("name"), "arguments": args, "status": "completed"})
            out_tokens = len(args) // 4
        else:
            text = f"The tool said: {last.get('output')}" if last.get("type") == "function_call_output" \
                else last_user_text(body)
            output.append({"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
            out_tokens = len(_words(text))
        in_tokens = max(1, len(json.dumps([body.get("input"), body.get("tools")])) // 4)
        reasoning_tokens = len(_words(reasoning)) if reasoning else 0
        usage = b.usage or {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0},
                            "output_tokens": out_tokens + reasoning_tokens,
                            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                            "total_tokens": in_tokens + out_tokens + reasoning_tokens}
        self.usages.append(usage)
        response = {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
                    "status": "completed", "model": body.get("model"), "output": output, "usage": usage,
                    "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
                    "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "auto", "tools": tools,
                    "top_p": 1.0}
        if not body.get("stream"):
            return web.json_response(response)
        pending = {k: v for k, v in response.items() if k != "usage"} | {"status": "in_progress", "output": []}
        events: list[tuple[str, dict]] = [("response.created", {"response": pending})]
        for i, item in enumerate(output):
            # As OpenAI announces an item: empty, then filled by the deltas that follow.
            empty = {"function_call": {"arguments": "", "status": "in_progress"},
                     "message": {"content": [], "status": "in_progress"}}.get(item["type"], {})
            events.append(("response.output_item.added", {"output_index": i, "item": {**item, **empty}}))
            if item["type"] == "message":
                part = item["content"][0]
                at = {"item_id": item["id"], "output_index": i, "content_index": 0}
                events.append(("response.content_part.added", {**at, "part": {**part, "text": ""}}))
                for word in _words(part["text"]):
                    events.append(("response.output_text.delta", {**at, "delta": word, "logprobs": []}))
                events.append(("response.output_text.done", {**at, "text": part["text"], "logprobs": []}))
                events.append(("response.content_part.done", {**at, "part": part}))
            elif item["type"] == "function_call":
                args = item["arguments"]
                events += [("response.function_call_arguments.delta", {"item_id": item["id"], "output_index": i,
                                                                       "delta": args[j:j + 8]})
                           for j in range(0, len(args), 8)]
                events.append(("response.function_call_arguments.done", {"item_id": item["id"], "output_index": i,
                                                                         "arguments": args}))
            elif item["type"] == "reasoning":
                events.append(("response.reasoning_summary_text.delta", {"item_id": item["id"], "output_index": i,
                                                                         "summary_index": 0, "delta": reasoning}))
            events.append(("response.output_item.done", {"output_index": i, "item": item}))
        events.append(("response.completed", {"response": response}))
        data = [f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': i, **payload})}\n\n".encode()
                for i, (name, payload) in enumerate(events)]
        return await self._stream(request, b, data)

    async def _stored(self, request: web.Request) -> web.Response:
        """GET or DELETE a stored response, as the provider's key sees them (all of them)."""
        self.received.append(Received(request.path, dict(request.headers), None, b""))
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        rid = request.match_info["rid"]
        if rid not in self.stored:
            return web.json_response(self.error_payload(404, f"Response with id '{rid}' not found."), status=404)
        if request.method == "DELETE":
            del self.stored[rid]
            return web.json_response({"id": rid, "object": "response", "deleted": True})
        return web.json_response(self.stored[rid])
