"""A paid answer's usage event is on record (in memory and the journal) before the answer's last
bytes leave the core: a whole answer before its head, a stream before the piece holding its last
event. So a core killed once a client has the whole answer has not lost its charge."""
from __future__ import annotations

import json

from router_core.forward import ForwardInput, Head, Trailer

BODY = {"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "count the sheep"}], "max_tokens": 20}


def _answer(stack, key: str, body: dict) -> list[tuple[object, int, int]]:
    """Each item the forwarder yields, with the usage events and journal bytes recorded when it came."""
    core = stack.core
    forwarder = core.router._forwarder

    async def run():
        seen = []
        async for item in forwarder.forward(ForwardInput(api_key=key, endpoint="chat/completions",
                                                         body=json.dumps(body).encode())):
            seen.append((item, core.recorder._recorded, core.recorder.journal_bytes))
        return seen

    return stack.loop.run(run())


def test_a_whole_answer_is_on_record_before_its_head_leaves(stack, client_key):
    before = stack.core.recorder._recorded
    items = _answer(stack, client_key[1], BODY)
    head = next((n, journaled) for item, n, journaled in items if isinstance(item, Head))
    assert head[0] == before + 1 and head[1] > 0
    assert isinstance(items[-1][0], Trailer) and items[-1][1] == before + 1, "recorded once"


def test_a_stream_is_on_record_before_its_last_event_leaves(stack, client_key):
    before = stack.core.recorder._recorded
    items = _answer(stack, client_key[1], {**BODY, "stream": True})
    pieces = [(item, n) for item, n, _ in items if isinstance(item, bytes)]
    assert pieces[-1][0].endswith(b"data: [DONE]\n\n")
    assert pieces[-1][1] == before + 1, "recorded when the last event was handed on"
    assert all(n == before for _, n in pieces[:-1]), "not before the answer's end"
    assert items[-1][1] == before + 1, "recorded once"
