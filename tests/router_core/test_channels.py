"""Channel order: priority first, weights among equals, model subsets, a preferred channel."""
from __future__ import annotations

import random
from collections import Counter

from router_core.catalog import Catalog
from router_core.channels import ChannelPool
from router_core.settings import ChannelSettings, Secret

CATALOG = Catalog.load()


def ch(name: str, provider: str = "openai", priority: int = 0, weight: int = 1, models=()) -> ChannelSettings:
    return ChannelSettings(name=name, provider=provider, base_url="http://x", api_key=Secret("k"),
                           priority=priority, weight=weight, models=tuple(models))


def test_lowest_priority_value_first():
    pool = ChannelPool([ch("late", priority=5), ch("early", priority=-1), ch("mid", priority=0)])
    assert [c.name for c in pool.candidates(CATALOG.resolve("openai/gpt-4.1"))] == ["early", "mid", "late"]


def test_weights_are_honoured_among_equals():
    pool = ChannelPool([ch("a", weight=1), ch("b", weight=3), ch("backup", priority=1, weight=100)],
                       rng=random.Random(7))
    model = CATALOG.resolve("openai/gpt-4.1")
    firsts = Counter(pool.candidates(model)[0].name for _ in range(800))
    assert set(firsts) == {"a", "b"}, "a lower priority never goes first"
    assert abs(firsts["b"] / 800 - 0.75) < 0.06
    assert all(pool.candidates(model)[-1].name == "backup" for _ in range(50))


def test_model_subsets_and_providers():
    pool = ChannelPool([ch("mini-only", models=["openai/gpt-4.1-mini"]), ch("all"),
                        ch("claude", provider="anthropic")])
    assert [c.name for c in pool.candidates(CATALOG.resolve("openai/gpt-4.1"))] == ["all"]
    assert {c.name for c in pool.candidates(CATALOG.resolve("gpt-4.1-mini"))} == {"mini-only", "all"}
    assert [c.name for c in pool.candidates(CATALOG.resolve("anthropic/claude-opus-4-6"))] == ["claude"]
    assert pool.candidates(CATALOG.resolve("xai/grok-4")) == []


def test_a_preferred_channel_goes_first_and_the_rest_keep_their_order():
    pool = ChannelPool([ch("a", priority=0), ch("b", priority=1), ch("c", priority=2)])
    model = CATALOG.resolve("openai/gpt-4.1")
    assert [c.name for c in pool.candidates(model, prefer="c")] == ["c", "a", "b"]
    assert [c.name for c in pool.candidates(model, prefer="gone")] == ["a", "b", "c"]


def test_every_channel_has_its_own_breaker():
    channels = [ch("a"), ch("b")]
    pool = ChannelPool(channels)
    pool.health(channels[0]).failure()
    assert pool.health(channels[0]).failures == 1 and pool.health(channels[1]).failures == 0
