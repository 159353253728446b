"""The circuit breaker: opens on a failure rate over a window, probes, closes on success."""
from __future__ import annotations

from router_core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**kw) -> tuple[Breaker, Clock]:
    clock = Clock()
    settings = BreakerSettings(**{"window": 60, "min_requests": 5, "failure_rate": 0.5, "cooldown": 10,
                                  "max_cooldown": 40, **kw})
    return Breaker(settings, clock), clock


def test_one_error_never_opens_a_healthy_channel():
    b, _ = breaker()
    for _ in range(20):
        b.success(0.01)
    b.failure()
    assert b.state == CLOSED and b.allow()
    assert 0 < b.error_rate() < 0.1


def test_too_few_outcomes_give_no_verdict():
    b, _ = breaker(min_requests=5)
    for _ in range(4):
        b.failure()
    assert b.state == CLOSED
    b.failure()
    assert b.state == OPEN and not b.allow()


def test_opens_at_the_failure_rate_and_forgets_old_outcomes():
    b, clock = breaker()
    for _ in range(3):
        b.failure()
    clock.now += 61  # those failures leave the window
    for _ in range(3):
        b.success()
    b.failure()
    b.failure()
    assert b.state == CLOSED  # 2 of 5 in the window
    b.failure()
    assert b.state == OPEN  # 3 of 6


def test_half_open_lets_one_probe_and_closes_on_its_success():
    b, clock = breaker()
    for _ in range(5):
        b.failure()
    assert not b.allow() and b.status() == OPEN and 9 < b.retry_in() <= 10
    clock.now += 10
    assert b.status() == HALF_OPEN
    assert b.allow()          # the probe
    assert not b.allow()      # nobody else while it is out
    b.success(0.02)
    assert b.state == CLOSED and b.allow() and b.error_rate() == 0


def test_a_failed_probe_reopens_for_longer_within_the_bound():
    b, clock = breaker()
    for _ in range(5):
        b.failure()
    for expected in (20, 40, 40):
        clock.now += 1000
        assert b.allow()
        b.failure()
        assert b.state == OPEN and b.retry_in() == expected
    assert b.opened == 4


def test_a_probe_whose_client_left_frees_the_slot():
    b, clock = breaker()
    for _ in range(5):
        b.failure()
    clock.now += 10
    assert b.allow() and not b.allow()
    b.release()
    assert b.allow()


def test_late_success_of_an_old_request_does_not_close_an_open_circuit():
    b, _ = breaker()
    for _ in range(5):
        b.failure()
    b.success()
    assert b.state == OPEN


def test_retry_after_pauses_the_channel():
    b, clock = breaker()
    b.cool_down(3)
    assert not b.allow() and b.retry_in() == 3
    clock.now += 3
    assert b.allow()
    b.success()
    assert b.state == CLOSED


def test_latency_median_and_counters():
    b, _ = breaker()
    for latency in (0.1, 0.3, 0.2):
        b.success(latency)
    b.failure()
    assert b.latency_p50() == 0.2
    assert (b.requests, b.failures) == (4, 1)
