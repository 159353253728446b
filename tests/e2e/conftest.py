"""Stacks with several fake providers and channels, for the provider and failover tests."""
from __future__ import annotations

from dataclasses import replace

import pytest

from router_core.settings import ChannelSettings, CoreSettings, Secret, Timeouts
from tests.fakes.providers import FakeAnthropic, FakeGemini, FakeOpenAI, FakeXAI
from tests.stack import Stack

FAKES = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "google": FakeGemini, "xai": FakeXAI}


def channel_to(fake: FakeOpenAI, provider: str, name: str, **kw) -> ChannelSettings:
    return ChannelSettings(name=name, provider=provider, base_url=fake.url, api_key=Secret(fake.api_key), **kw)


@pytest.fixture
def start_fake(loop_thread):
    """start_fake(provider) -> a started fake of that provider's dialect, stopped afterwards."""
    started = []

    def start(provider: str = "openai", **kw) -> FakeOpenAI:
        fake = FAKES[provider](**kw)
        loop_thread.run(fake.start())
        started.append(fake)
        return fake

    yield start
    for fake in started:
        loop_thread.run(fake.stop())


@pytest.fixture
def make_stack(loop_thread, tmp_path):
    """make_stack(channels, **core_settings) -> a running Stack on SQLite, stopped afterwards."""
    stacks = []

    def make(channels, **settings) -> Stack:
        base = CoreSettings(database_url=f"sqlite:///{tmp_path}/router-{len(stacks)}.db",
                            channels=tuple(channels), usage_flush_interval=0.05,
                            timeouts=Timeouts(connect=2.0, first_byte=1.0, idle=2.0))
        stack = Stack(replace(base, **settings), loop=loop_thread)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
