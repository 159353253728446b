"""Real agent clients through OneKey, each completing a turn that calls a tool: Claude Code
(`claude -p`, Messages API), the Codex CLI (`codex exec`, Responses API) and the Vercel AI SDK
(`openai(model)`, Responses API), installed pinned from npm (tests/npm_clients.py).

Each client runs on a native pairing (its own API to a provider that speaks it) and on a
translated one (issue 21: Messages clients on chat-completions models, Responses clients on
chat models). The fake provider (tests/fakes/scripted.py) answers the client's first turn with
a call of one of the tools the client offers and the turn carrying the tool's result with a text
quoting it, so the test sees the tool really ran on the client's side.

The clients are kept on loopback: every base URL points at the edge, and HTTP(S)_PROXY points
at a sink on loopback that refuses (and records) whatever a client tries to reach elsewhere.
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import textwrap
from collections.abc import Callable

import pytest

from tests import npm_clients
from tests.e2e.conftest import channel_to
from tests.fakes.scripted import (Reply, ScriptedAnthropic, ScriptedGemini, ScriptedOpenAI, ScriptedXAI, ToolCall,
                                  offered_tools, tool_results)

pytestmark = pytest.mark.slow

MARKER = "hello-from-tool"
RUN_TIMEOUT = 180

# client -> [(pairing id, provider of the model, model)]
PAIRINGS = {
    "claude": [("native", "anthropic", "anthropic/claude-sonnet-4-6"), ("translated", "openai", "openai/gpt-4.1"),
               ("translated", "google", "google/gemini-3-flash"), ("translated", "xai", "xai/grok-4")],
    # Codex asks for reasoning summaries on every turn: its native pairings are reasoning models.
    "codex": [("native", "openai", "openai/gpt-5.2-codex"), ("native", "xai", "xai/grok-code-fast"),
              ("translated", "anthropic", "anthropic/claude-haiku-4-5"), ("translated", "google", "google/gemini-3-flash")],
    "ai-sdk": [("native", "openai", "openai/gpt-4.1"), ("translated", "anthropic", "anthropic/claude-haiku-4-5"),
               ("translated", "google", "google/gemini-3-flash")],
}
SCRIPTED = {"openai": ScriptedOpenAI, "anthropic": ScriptedAnthropic, "google": ScriptedGemini, "xai": ScriptedXAI}

# Known gaps of the translation, found by these clients: (client, pairing or model, variant) -> why.
# Each is marked xfail(strict=True), so a fix shows. None left: Claude Code's mid-conversation
# system message, its effort on models that refuse reasoning_effort, and Codex's namespace tools
# all go through now.
GAPS: dict[tuple[str, str, str], str] = {}


def pairings(client: str, variants: tuple[str, ...] = ("",)) -> list:
    """The client's pairings (x its variants) as params, a known gap marked xfail (strict: a fix shows)."""
    params = []
    for pairing, provider, model in PAIRINGS[client]:
        for variant in variants:
            gaps = [GAPS[k] for k in ((client, pairing, variant), (client, model, variant)) if k in GAPS]
            marks = [pytest.mark.xfail(strict=True, reason="; and ".join(gaps))] if gaps else []
            values = (provider, model, variant) if variant else (provider, model)
            params.append(pytest.param(*values, marks=marks, id="-".join(filter(None, (pairing, model, variant)))))
    return params


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clients() -> pathlib.Path:
    """The pinned npm clients' folder; skipped (failed under CI) when npm cannot install them."""
    try:
        return npm_clients.install()
    except npm_clients.NpmUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the real-client tests cannot run: {exc}")
        pytest.skip(f"real-client tests skipped: {exc}")


class Sink:
    """A loopback proxy that refuses everything, noting the first line of each attempt."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            self.attempts.append(line.decode(errors="replace").strip())
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
def sink(loop_thread):
    s = Sink()
    loop_thread.run(s.start())
    yield s
    loop_thread.run(s.stop())


@pytest.fixture
def gateway(loop_thread, make_stack):
    """gateway(provider) -> (fake, stack, key): a scripted fake of that provider behind a stack."""

    def start(provider: str):
        fake = SCRIPTED[provider]()
        loop_thread.run(fake.start())
        started.append(fake)
        stack = make_stack([channel_to(fake, provider, f"{provider}-a")])
        return fake, stack, stack.new_key()[1]

    started: list = []
    yield start
    for fake in started:
        loop_thread.run(fake.stop())


def client_env(tmp_path: pathlib.Path, sink: Sink, **extra: str) -> dict[str, str]:
    """A clean environment (no provider keys of this machine): a home of its own, loopback only."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    proxy = f"http://127.0.0.1:{sink.port}"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return {**env, **extra}


def run(cmd: list[str], env: dict[str, str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    """A client run to its end, stdin closed (Codex reads a prompt from an open stdin)."""
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, input="")


def tool_then_text(pick: Callable[[dict[str, dict]], ToolCall | None], final: Callable[[str], str]):
    """A script: a turn carrying a tool result gets `final(result)`; a turn offering the tool
    `pick` chooses gets that call; any other request (a client's side request) the echo."""

    def script(endpoint: str, body: dict) -> Reply | None:
        results = tool_results(endpoint, body)
        if results:
            return Reply(text=final(list(results.values())[-1]))
        call = pick(offered_tools(endpoint, body))
        return Reply(tool_call=call) if call else None

    return script


def assert_tool_ran_on_loopback(fake, sink: Sink, proc: subprocess.CompletedProcess) -> None:
    """The tool's output reached the model, Gemini's signatures came back, nothing left loopback."""
    with_result = [r for r in fake.received if r.body is not None
                   and MARKER in json.dumps(tool_results(_endpoint_of(r.path), r.body))]
    assert with_result, "the tool's output never reached the model: " + describe(fake, sink, proc)
    if isinstance(fake, ScriptedGemini):
        assert not fake.unsigned_calls(), "a Gemini tool call went back without its thought signature"
    assert not sink.attempts, "a client tried to leave loopback: " + describe(fake, sink, proc)


def _endpoint_of(path: str) -> str:
    return "chat" if path.endswith("chat/completions") else "responses" if path.endswith("responses") else "messages"


def describe(fake, sink: Sink, proc: subprocess.CompletedProcess) -> str:
    """What a failing test shows: the client's output, what the fake got, what was refused."""
    seen = [(r.path, sorted(offered_tools(_endpoint_of(r.path), r.body or {}))) for r in fake.received]
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}\n"
            f"--- fake received\n{seen}\n--- refused by the sink\n{sink.attempts}")


# -- Claude Code ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider, model", pairings("claude"))
def test_claude_code_runs_a_tool(clients, gateway, sink, tmp_path, provider, model):
    fake, stack, key = gateway(provider)
    fake.script = tool_then_text(
        lambda tools: ToolCall("Bash", {"command": f"echo {MARKER}", "description": "Print a marker"})
        if "Bash" in tools else None,
        # Claude Code appends a <system-reminder> to a tool's output: quote its first line.
        lambda result: f"The command printed: {result.strip().splitlines()[0]}")
    work = tmp_path / "work"
    work.mkdir()
    env = client_env(tmp_path, sink, ANTHROPIC_BASE_URL=stack.base_url.removesuffix("/v1"),
                     ANTHROPIC_AUTH_TOKEN=key, DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1",
                     DISABLE_ERROR_REPORTING="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                     ANTHROPIC_MODEL=model, ANTHROPIC_SMALL_FAST_MODEL=model, ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
                     ANTHROPIC_DEFAULT_SONNET_MODEL=model, ANTHROPIC_DEFAULT_OPUS_MODEL=model,
                     CLAUDE_CODE_SUBAGENT_MODEL=model)
    proc = run([str(npm_clients.bin_path(clients, "claude")), "-p", f"Run `echo {MARKER}` and tell me what it printed.",
                "--model", model, "--output-format", "json", "--allowedTools", "Bash", "--max-turns", "4"],
               env, work)
    assert proc.returncode == 0, describe(fake, sink, proc)
    result = json.loads(proc.stdout)
    assert result["is_error"] is False and result["result"] == f"The command printed: {MARKER}", describe(fake, sink, proc)
    assert_tool_ran_on_loopback(fake, sink, proc)


# -- Codex CLI -----------------------------------------------------------------------------


def codex_call(tools: dict[str, dict]) -> ToolCall | None:
    """A call of the shell tool Codex offers (its name and arguments vary by version)."""
    if "exec_command" in tools:
        return ToolCall("exec_command", {"cmd": f"echo {MARKER}"})
    if "shell_command" in tools:
        return ToolCall("shell_command", {"command": f"echo {MARKER}"})
    if "shell" in tools:
        return ToolCall("shell", {"command": ["bash", "-lc", f"echo {MARKER}"]})
    return None


# Codex's defaults offer, beside its function tools, a `namespace` tool (multi_agent_v1, from the
# deprecated `multi_agent` feature) and the hosted `web_search`; `function-tools` turns those off.
# `default-tools` on a translated model is what the README tells a user to run: the defaults with
# `web_search = "disabled"` (OpenAI's hosted search cannot run on another provider), so the
# namespace tools go through the translation.
CODEX_TOOLS = ("default-tools", "function-tools")


def codex_config(model: str, base_url: str, tools: str, translated: bool) -> str:
    """~/.codex/config.toml: OneKey as the model provider over the Responses API, loopback only."""
    function_tools_only = tools == "function-tools"
    return textwrap.dedent(f"""\
        model = "{model}"
        model_provider = "onekey"
        check_for_update_on_startup = false
        {'web_search = "disabled"' if function_tools_only or translated else ''}

        [model_providers.onekey]
        name = "OneKey"
        base_url = "{base_url}"
        env_key = "ONEKEY_API_KEY"
        wire_api = "responses"

        # Off even with a custom provider, or Codex calls out: analytics (ab.chatgpt.com) and
        # the plugin marketplace's sync (github.com, api.github.com, chatgpt.com).
        [analytics]
        enabled = false

        [features]
        plugins = false
        {'multi_agent = false' if function_tools_only else ''}
        {'goals = false' if function_tools_only else ''}
        """)


@pytest.mark.parametrize("provider, model, tools", pairings("codex", CODEX_TOOLS))
def test_codex_exec_runs_a_tool(clients, gateway, sink, tmp_path, provider, model, tools):
    fake, stack, key = gateway(provider)
    fake.script = tool_then_text(codex_call, lambda result: f"The command printed: {MARKER}"
                                 if MARKER in result else f"no marker in: {result}")
    codex_home, work = tmp_path / "codex-home", tmp_path / "work"
    codex_home.mkdir()
    work.mkdir()
    translated = ("translated", provider, model) in PAIRINGS["codex"]
    (codex_home / "config.toml").write_text(codex_config(model, stack.base_url, tools, translated))
    env = client_env(tmp_path, sink, CODEX_HOME=str(codex_home), ONEKEY_API_KEY=key)
    proc = run([str(npm_clients.bin_path(clients, "codex")), "exec", "--skip-git-repo-check", "--ephemeral",
                "--dangerously-bypass-approvals-and-sandbox", "--color", "never", "--json", "-C", str(work),
                f"Run `echo {MARKER}` in the shell and tell me what it printed."], env, work)
    assert proc.returncode == 0, describe(fake, sink, proc)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    texts = [e["item"].get("text") for e in events if e.get("type") == "item.completed"
             and e["item"].get("type") == "agent_message"]
    assert texts and texts[-1] == f"The command printed: {MARKER}", describe(fake, sink, proc)
    assert_tool_ran_on_loopback(fake, sink, proc)
    if translated and tools == "default-tools":  # the namespace tools went through, flattened
        offered = {name for r in fake.received if r.body for name in offered_tools("chat", r.body)}
        assert any(name.startswith("multi_agent_v1__") for name in offered), describe(fake, sink, proc)


# -- Vercel AI SDK -------------------------------------------------------------------------

AI_SDK_SCRIPT = """\
const { generateText, streamText, tool, stepCountIs } = require('ai');
const { createOpenAI } = require('@ai-sdk/openai');
const { z } = require('zod');

const openai = createOpenAI({ baseURL: process.env.ONEKEY_BASE_URL, apiKey: process.env.ONEKEY_API_KEY });
const executed = [];
const weather = tool({
  description: 'The weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => { executed.push(city); return { city, forecast: 'MARKER' }; },
});

async function main() {
  const options = { model: openai(process.env.MODEL), tools: { weather }, stopWhen: stepCountIs(3),
                    prompt: 'What is the weather in Paris?' };
  let text, steps;
  if (process.env.STREAM === '1') {
    const result = streamText(options);
    text = '';
    for await (const delta of result.textStream) text += delta;
    steps = await result.steps;
  } else {
    const result = await generateText(options);
    text = result.text;
    steps = result.steps;
  }
  console.log(JSON.stringify({ text, executed, steps: steps.map(s => s.finishReason) }));
}
main().catch(err => { console.error(err); process.exit(1); });
""".replace("MARKER", MARKER)


@pytest.mark.parametrize("stream", [False, True], ids=["generateText", "streamText"])
@pytest.mark.parametrize("provider, model", pairings("ai-sdk"))
def test_ai_sdk_runs_a_tool(clients, gateway, sink, tmp_path, provider, model, stream):
    fake, stack, key = gateway(provider)
    fake.script = tool_then_text(lambda tools: ToolCall("weather", {"city": "Paris"}) if "weather" in tools else None,
                                 lambda result: f"The forecast: {json.loads(result)['forecast']}")
    script = tmp_path / "weather.cjs"
    script.write_text(AI_SDK_SCRIPT)
    env = client_env(tmp_path, sink, NODE_PATH=str(clients / "node_modules"), ONEKEY_BASE_URL=stack.base_url,
                     ONEKEY_API_KEY=key, MODEL=model, STREAM="1" if stream else "0")
    proc = run(["node", str(script)], env, tmp_path)
    assert proc.returncode == 0, describe(fake, sink, proc)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"text": f"The forecast: {MARKER}", "executed": ["Paris"], "steps": ["tool-calls", "stop"]}, \
        describe(fake, sink, proc)
    assert_tool_ran_on_loopback(fake, sink, proc)
