"""An edge in front of several core replicas: calls spread over them, and a replica that fails
before answering is replaced by another one without the client noticing."""
from __future__ import annotations

import grpc
import openai
import pytest

from edge.app import start
from edge.settings import ConfigError, EdgeSettings, core_target, load_edge_settings
from onekey.v1 import router_pb2_grpc


class _BrokenCore(router_pb2_grpc.RouterServiceServicer):
    """A replica whose transport fails every call before any answer (as a dying core does)."""

    def __init__(self, verdict: bool = False) -> None:
        self.calls = 0
        self.verdict = verdict

    async def Forward(self, request, context):
        self.calls += 1
        if self.verdict:  # the core's own "unavailable" verdict carries its error code
            context.set_trailing_metadata((("onekey-error-code", "no_channel"),))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        yield  # pragma: no cover - makes this a stream handler


async def _serve(servicer) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
def broken_core(loop_thread):
    started = []

    def make(verdict: bool = False):
        servicer = _BrokenCore(verdict)
        server, port = loop_thread.run(_serve(servicer))
        started.append(server)
        return servicer, port

    yield make
    for server in started:
        loop_thread.run(server.stop(0))


def _edge(loop_thread, core: str):
    return loop_thread.run(start(EdgeSettings(listen="127.0.0.1:0", core=core)))


def test_a_call_failing_before_any_answer_is_served_by_another_replica(loop_thread, stack, client_key, broken_core):
    broken, broken_port = broken_core()
    runner, port = _edge(loop_thread, f"ipv4:127.0.0.1:{broken_port},127.0.0.1:{stack.core.port}")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=client_key[1], max_retries=0)
        for i in range(8):
            reply = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
            chunks = list(client.chat.completions.create(
                model="gpt-4.1-mini", stream=True, messages=[{"role": "user", "content": "hi"}]))
            assert chunks
        # Round robin sent some calls to the broken replica; each was retried on the live one.
        assert broken.calls > 0
    finally:
        loop_thread.run(runner.cleanup())


def test_a_cores_own_unavailable_verdict_is_not_retried(loop_thread, broken_core):
    broken, broken_port = broken_core(verdict=True)
    runner, port = _edge(loop_thread, f"127.0.0.1:{broken_port}")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="ok-any", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
        assert err.value.status_code == 503 and err.value.body["code"] == "no_channel"
        assert broken.calls == 1
    finally:
        loop_thread.run(runner.cleanup())


def test_every_replica_down_is_503_after_the_configured_attempts(loop_thread, broken_core):
    broken, broken_port = broken_core()
    runner, port = _edge(loop_thread, f"127.0.0.1:{broken_port}")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="ok-any", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
        assert err.value.status_code == 503 and err.value.body["code"] == "core_unavailable"
        assert broken.calls == EdgeSettings().core_attempts
    finally:
        loop_thread.run(runner.cleanup())


def test_core_setting_takes_a_target_or_a_list_of_addresses():
    assert core_target("dns:///cores.internal:50051") == "dns:///cores.internal:50051"
    assert core_target(["10.0.0.1:50051", "10.0.0.2:50051"]) == "ipv4:10.0.0.1:50051,10.0.0.2:50051"
    assert core_target(["[::1]:50051", "[::2]:50052"]) == "ipv6:[::1]:50051,[::2]:50052"
    settings = load_edge_settings({"core": ["127.0.0.1:1", "127.0.0.1:2"], "core_attempts": 2}, "127.0.0.1:9")
    assert settings.core == "ipv4:127.0.0.1:1,127.0.0.1:2" and settings.core_attempts == 2
    for bad in (["core-a:50051", "core-b:50051"], ["10.0.0.1:50051", "[::1]:50051"], [], ""):
        with pytest.raises(ConfigError, match=r"\[edge\]\.core"):
            core_target(bad)
    with pytest.raises(ConfigError, match="core_attempts"):
        load_edge_settings({"core_attempts": 0}, "127.0.0.1:9")


def test_a_dns_name_reaches_the_cores_it_resolves_to(loop_thread, stack, client_key):
    # gRPC's own resolver: every address of the name is a replica (localhost may also give ::1,
    # where nothing listens: that address is skipped like a dead core).
    runner, port = _edge(loop_thread, f"dns:///localhost:{stack.core.port}")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=client_key[1], max_retries=0)
        for _ in range(4):
            reply = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
    finally:
        loop_thread.run(runner.cleanup())
