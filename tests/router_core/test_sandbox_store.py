"""The sandbox's store of Responses API objects stays bounded in count, bytes and age."""
from __future__ import annotations

from router_core.providers.sandbox import StoredSandboxResponses


def test_oldest_go_first_past_the_count_or_byte_bound():
    store = StoredSandboxResponses(max_count=2, max_bytes=10)
    store.put("a", b"1234")
    store.put("b", b"1234")
    store.put("c", b"1234")
    assert (store.get("a"), store.get("b"), store.get("c")) == (None, b"1234", b"1234")
    store.put("d", b"123456")  # 10 bytes allowed: b and c (8) plus 6 is too much, b goes
    assert (store.get("b"), store.get("c"), store.get("d")) == (None, b"1234", b"123456")
    store.put("huge", b"x" * 11)  # larger than the whole store: not kept, nothing evicted
    assert store.get("huge") is None and store.get("c") == b"1234"


def test_old_responses_expire_and_pop_forgets():
    store = StoredSandboxResponses(max_age=0.0)
    store.put("a", b"x")
    assert store.get("a") is None
    store = StoredSandboxResponses()
    store.put("a", b"x")
    assert store.pop("a") == b"x" and store.get("a") is None and store.pop("a") is None
