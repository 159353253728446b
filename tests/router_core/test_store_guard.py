"""The store guard: a bound on every wait, at once refused while the store is down, one probe at
a time after a growing pause, and back by itself (no real store is needed to show the rules; the
fault-proxy tests in tests/e2e/test_store_outage.py show them against PostgreSQL)."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from router_core.errors import StoreUnavailable
from router_core.store_guard import PROBE_FIRST_S, StoreGuard, unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _down() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))


async def test_a_store_that_does_not_answer_is_refused_at_the_bound():
    guard = StoreGuard(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as refused:
        await guard.call(lambda: asyncio.sleep(30))
    assert time.monotonic() - started < 1.0
    assert refused.value.code == "store_unavailable" and ("retry-after", "1") in refused.value.headers
    assert not guard.up and guard.outages == 1


async def test_while_down_calls_are_refused_at_once_then_one_probe_brings_it_back():
    clock = Clock()
    guard = StoreGuard(timeout=1.0, clock=clock)
    calls = []

    async def store(ok: bool):
        calls.append(ok)
        if not ok:
            raise _down()
        return "answer"

    with pytest.raises(StoreUnavailable):
        await guard.call(lambda: store(False))
    with pytest.raises(StoreUnavailable):
        await guard.call(lambda: store(True))  # within the pause: not even tried
    assert calls == [False] and guard.refused == 1
    clock.now += PROBE_FIRST_S
    with pytest.raises(StoreUnavailable):
        await guard.call(lambda: store(False))  # the probe fails: a longer pause
    clock.now += PROBE_FIRST_S
    with pytest.raises(StoreUnavailable):
        await guard.call(lambda: store(True))
    clock.now += PROBE_FIRST_S
    assert await guard.call(lambda: store(True)) == "answer"
    assert guard.up and calls == [False, False, True]


async def test_a_bug_is_not_an_outage():
    guard = StoreGuard()

    async def bad_row():
        raise IntegrityError("INSERT", {}, ValueError("duplicate"))

    with pytest.raises(IntegrityError):
        await guard.call(bad_row)
    assert guard.up
    assert unreachable(_down()) and unreachable(ConnectionResetError()) and not unreachable(ValueError())
