"""The account app's gRPC client against the real core: credential, errors, outage."""
from __future__ import annotations

import grpc
import pytest

from account.core_client import CoreClient, CoreError, CoreNotFound, CoreUnavailable
from account.settings import Secret
from tests.stack import SERVICE_TOKEN


@pytest.fixture
def channel(core):
    ch = grpc.insecure_channel(f"127.0.0.1:{core.core.port}")
    yield ch
    ch.close()


def test_projects_keys_and_balance(channel):
    client = CoreClient(channel, Secret(SERVICE_TOKEN))
    project = client.create_project("client test", free_requests=3)
    assert project.free_requests == 3
    assert client.rename_project(project.id, "renamed").name == "renamed"
    key, secret = client.create_key(project.id, "k")
    assert secret.startswith(key.prefix) and key.last_used_at is None and key.revoked_at is None
    assert [k.id for k in client.list_keys(project.id)] == [key.id]
    assert client.revoke_key(project.id, key.id).revoked_at is not None
    assert client.balance(project.id).free_requests == 3


def test_the_core_refuses_a_wrong_service_credential(channel):
    for token in ("", "not-the-token"):
        with pytest.raises(CoreError) as caught:
            CoreClient(channel, Secret(token)).create_project("nope", 0)
        assert not isinstance(caught.value, (CoreUnavailable, CoreNotFound))


def test_unknown_project_is_not_found(channel):
    with pytest.raises(CoreNotFound):
        CoreClient(channel, Secret(SERVICE_TOKEN)).list_keys("00000000-0000-0000-0000-000000000000")


def test_a_core_that_is_down_is_unavailable():
    with grpc.insecure_channel("127.0.0.1:1") as ch:
        with pytest.raises(CoreUnavailable):
            CoreClient(ch, Secret(SERVICE_TOKEN), timeout=1).balance("x")
