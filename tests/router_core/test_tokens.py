"""The token counter: its encoding loads on first need, once, off the event loop."""
from __future__ import annotations

import asyncio
import threading

from router_core.tokens import TokenCounter

TEXT = "count the sheep please"


def test_nothing_is_loaded_until_a_count_needs_it():
    counter = TokenCounter()
    assert not counter.loaded
    assert counter.count("") == 0 and not counter.loaded, "an empty text needs no encoding"
    assert counter.count(TEXT) == 4 and counter.loaded  # cl100k_base, not the 6 of the byte fallback


async def test_ready_loads_in_a_thread_once_for_concurrent_callers():
    counter = TokenCounter()
    loaders: list[str] = []
    load = counter.load

    def recording_load() -> None:
        loaders.append(threading.current_thread().name)
        load()

    counter.load = recording_load
    await asyncio.gather(*(counter.ready() for _ in range(5)))
    assert counter.loaded and counter.count(TEXT) == 4
    assert len(loaders) == 1 and loaders[0] != threading.current_thread().name, "one load, off the loop's thread"
    await counter.ready()  # loaded: returns at once
    assert len(loaders) == 1


async def test_a_cancelled_waiter_does_not_cancel_the_load():
    counter = TokenCounter()
    first = asyncio.create_task(counter.ready())
    await asyncio.sleep(0)
    first.cancel()
    await counter.ready()
    assert counter.loaded and counter.count(TEXT) == 4
