"""The sliding-minute limiter in memory: admission, refusal, headers, and the minute bound."""
from __future__ import annotations

import random

import pytest

from router_core.errors import RateLimited
from router_core.keys import KeyIdentity
from router_core.ratelimit import RateLimiter, headers_of
from router_core.ratelimit.memory import MemoryWindow
from router_core.ratelimit.window import Limit, go_duration


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_limit(rpm: int, name: str = "k") -> list[Limit]:
    return [Limit("key", name, rpm)]


async def test_admits_up_to_the_limit_then_refuses_with_the_wait():
    clock = Clock(1000.25)
    window = MemoryWindow(clock)
    remaining = []
    for _ in range(3):
        d = await window.hit(key_limit(3))
        assert d.allowed
        remaining.append(d.remaining)
    assert remaining == [2, 1, 0]
    clock.now = 1010.0
    refused = await window.hit(key_limit(3))
    assert not refused.allowed and refused.remaining == 0 and refused.limit.rpm == 3
    # The three sit in second 1000; they leave the counted span when second 1061 begins.
    assert refused.retry_after_s == pytest.approx(51.0)
    assert refused.reset_s == pytest.approx(51.0)
    clock.now = 1060.99
    assert not (await window.hit(key_limit(3))).allowed
    clock.now = 1061.0
    again = await window.hit(key_limit(3))
    assert again.allowed and again.remaining == 2


async def test_a_refused_request_is_not_counted():
    clock = Clock(500.0)
    window = MemoryWindow(clock)
    assert (await window.hit(key_limit(1))).allowed
    for step in range(50):  # a client hammering for 50 s gains nothing and loses nothing
        clock.now = 500.0 + step
        assert not (await window.hit(key_limit(1))).allowed
    clock.now = 561.0
    assert (await window.hit(key_limit(1))).allowed


async def test_retry_after_names_the_bucket_that_frees_a_slot():
    clock = Clock(100.0)
    window = MemoryWindow(clock)
    for t in (100.1, 110.5, 120.2, 120.7):
        clock.now = t
        assert (await window.hit(key_limit(4))).allowed
    clock.now = 130.0
    d = await window.hit(key_limit(4))
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(100 + 61 - 130.0)  # the oldest (second 100) leaves first
    assert d.reset_s == pytest.approx(120 + 61 - 130.0)        # empty once the newest leaves


@pytest.mark.parametrize("seed", range(5))
async def test_no_sixty_second_span_ever_holds_more_than_the_limit(seed):
    rng = random.Random(seed)
    clock = Clock(10_000.0)
    window = MemoryWindow(clock)
    rpm = 7
    admitted = []
    t = 10_000.0
    while t < 10_400.0:  # bursts and lulls over several minutes
        t += rng.choice([0.01, 0.2, 1.5, 4.0, 9.0])
        clock.now = t
        if (await window.hit(key_limit(rpm))).allowed:
            admitted.append(t)
    for i, start in enumerate(admitted):
        in_span = [a for a in admitted[i:] if a < start + 60]
        assert len(in_span) <= rpm
    # ... and it is not a trickle: a steady client gets close to the limit each minute.
    assert len(admitted) >= rpm * (400 // 61)


async def test_a_request_must_fit_every_limit_and_counts_in_all_or_none():
    clock = Clock(0.5)
    window = MemoryWindow(clock)
    project = Limit("project", "p", 3)
    a, b = Limit("key", "a", 2), Limit("key", "b", 10)
    assert (await window.hit([a, project])).allowed
    assert (await window.hit([a, project])).allowed
    refused = await window.hit([a, project])
    assert not refused.allowed and refused.limit is a  # the key's own limit refused it
    last = await window.hit([b, project])
    assert last.allowed and last.limit is project and last.remaining == 0  # the nearer limit reports
    by_project = await window.hit([b, project])
    assert not by_project.allowed and by_project.limit is project
    # The key `b` was not charged for the refusal: with room in the project it has 9 left.
    assert (await window.hit([b])).remaining == 8


async def test_idle_counters_are_dropped():
    clock = Clock(0.0)
    window = MemoryWindow(clock)
    for i in range(100):
        await window.hit(key_limit(5, f"key-{i}"))
    assert len(window) == 100
    clock.now = 62.0
    await window.hit(key_limit(5, "fresh"))
    assert len(window) == 1


def test_durations_are_written_as_openai_does():
    assert go_duration(0.012) == "12ms"
    assert go_duration(1) == "1s"
    assert go_duration(20.5) == "20.5s"
    assert go_duration(59.9996) == "1m0s"
    assert go_duration(360) == "6m0s"
    assert go_duration(61.25) == "1m1.25s"


async def test_headers_and_the_refusal_error():
    clock = Clock(2000.0)
    limiter = RateLimiter(MemoryWindow(clock), default_rpm=2)
    who = KeyIdentity(project_id="p1", key_id="k1")
    first = dict(await limiter.admit(who))
    assert first == {"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1",
                     "x-ratelimit-reset-requests": "1m1s"}
    await limiter.admit(who)
    clock.now = 2030.5
    with pytest.raises(RateLimited) as caught:
        await limiter.admit(who)
    err = caught.value
    headers = dict(err.headers)
    assert err.code == "rate_limit_exceeded" and "this API key" in err.message
    assert "Limit 2, Used 2, Requested 1" in err.message
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "30.5s"
    assert headers["retry-after"] == "31" and headers["retry-after-ms"] == "30500"
    assert headers["x-should-retry"] == "true"


async def test_a_lowered_limit_says_how_many_were_used():
    clock = Clock(10.0)
    window = MemoryWindow(clock)
    for _ in range(5):
        await window.hit(key_limit(10))
    refused = await window.hit(key_limit(3))
    assert not refused.allowed and refused.used == 5 and refused.remaining == 0


async def test_which_limits_apply():
    limiter = RateLimiter(MemoryWindow(Clock()), default_rpm=60)
    assert [(lim.kind, lim.rpm) for lim in limiter.limits_for(KeyIdentity("p", "k"))] == [("key", 60)]
    assert limiter.limits_for(KeyIdentity("p", "k", key_rpm=0)) == []  # 0: this key is unlimited
    assert [(lim.kind, lim.rpm) for lim in limiter.limits_for(KeyIdentity("p", "k", key_rpm=5, project_rpm=100))
            ] == [("key", 5), ("project", 100)]
    off = RateLimiter(MemoryWindow(Clock()))
    assert off.limits_for(KeyIdentity("p", "k")) == []
    assert await off.admit(KeyIdentity("p", "k")) == []  # off by default: no headers, no counting
    # Store names carry ids only, with the project as a Redis Cluster hash tag.
    names = [lim.name for lim in limiter.limits_for(KeyIdentity("proj", "key1", project_rpm=9))]
    assert names == ["{proj}:key:key1", "{proj}:project"]


def test_a_wait_beyond_what_the_sdks_honour_says_do_not_retry():
    from router_core.ratelimit.window import Decision

    d = Decision(False, Limit("key", "k", 1), 1, 0, 60.5, 60.5)
    assert dict(headers_of(d))["x-should-retry"] == "false"
