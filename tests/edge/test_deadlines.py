"""edge.deadlines: scopes sharing one timeout, kept with one timer."""
from __future__ import annotations

import asyncio

from edge.deadlines import Deadlines

TIMEOUT = 0.2


async def _within(deadlines: Deadlines, start_after: float, takes: float) -> str:
    await asyncio.sleep(start_after)
    try:
        with deadlines.scope():
            await asyncio.sleep(takes)
    except TimeoutError:
        assert asyncio.current_task().cancelling() == 0  # the cancellation was the scope's own
        return "timeout"
    return "ok"


def test_each_scope_ends_at_its_own_deadline_whenever_it_began():
    async def main():
        deadlines = Deadlines(TIMEOUT)
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(
            _within(deadlines, 0, 0.05), _within(deadlines, 0.1, 0.5), _within(deadlines, 0.15, 0.1),
            _within(deadlines, 0.15, 0.5), _within(deadlines, 0.3, 0.05))
        took = loop.time() - started
        deadlines.close()
        return results, took, len(deadlines._live)

    results, took, live = asyncio.run(main())
    assert results == ["ok", "timeout", "ok", "timeout", "ok"]
    assert 0.35 <= took < 0.45  # the last timeout: begun at 0.15, ended 0.2 later
    assert live == 0


def test_a_cancellation_from_outside_stays_a_cancellation():
    async def main():
        deadlines = Deadlines(TIMEOUT)
        task = asyncio.create_task(_within(deadlines, 0, 1.0))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled", len(deadlines._live)
        return "not cancelled", len(deadlines._live)

    assert asyncio.run(main()) == ("cancelled", 0)


def test_a_cancellation_on_top_of_the_deadline_is_not_swallowed():
    async def main():
        deadlines = Deadlines(0.05)

        async def work():
            with deadlines.scope():
                try:
                    await asyncio.sleep(1.0)
                finally:
                    await asyncio.sleep(0.1)  # cleanup under way when the outside cancel comes

        task = asyncio.create_task(work())
        await asyncio.sleep(0.1)  # past the deadline: the scope has cancelled its task
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        except TimeoutError:
            return "timeout"
        return "done"

    assert asyncio.run(main()) == "cancelled"
