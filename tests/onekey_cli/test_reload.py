"""A running `onekey core` takes a changed catalog file on SIGHUP and on `onekey reload`, refuses a
bad one by line while the old catalog keeps serving, and reads its channels' lists on
`onekey models sync` (a real process, a real config file, a fake provider on loopback)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from onekey.v1 import router_pb2, router_pb2_grpc
from tests.fakes.providers import FakeOpenAI
from tests.procs import _port_open, free_port
from tests.stack import SERVICE_TOKEN


@pytest.fixture
def core(loop_thread, tmp_path):
    fake = FakeOpenAI()
    loop_thread.run(fake.start())
    port = free_port()
    (tmp_path / "models.toml").write_text("")
    (tmp_path / "onekey.toml").write_text(
        f'[core]\nlisten = "127.0.0.1:{port}"\ndatabase_url = "sqlite:///{tmp_path}/router.db"\n'
        f'catalog = "models.toml"\n\n[[channels]]\nname = "openai-a"\nprovider = "openai"\n'
        f'base_url = "{fake.url}"\napi_key = "{fake.api_key}"\n')
    env = {**os.environ, "ONEKEY_CONFIG": str(tmp_path / "onekey.toml"), "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN}
    log = open(tmp_path / "core.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "core"], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not _port_open(port):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "core.log").read_text()
        time.sleep(0.1)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield proc, fake, tmp_path, env, router_pb2_grpc.RouterServiceStub(channel)
    channel.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    loop_thread.run(fake.stop())


def listed(router) -> dict[str, str]:
    return {m.id: m.status for m in router.ListModels(router_pb2.ListModelsRequest()).models}


def onekey(env, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onekey_cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def eventually(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_sighup_and_onekey_reload_take_a_new_catalog_and_a_bad_one_changes_nothing(core):
    proc, fake, tmp_path, env, router = core
    assert "openai/gpt-4.1" in listed(router)
    (tmp_path / "models.toml").write_text('[[models]]\nid = "openai/gpt-4.1"\nhidden = true\n')
    proc.send_signal(signal.SIGHUP)
    eventually(lambda: "openai/gpt-4.1" not in listed(router))

    (tmp_path / "models.toml").write_text('[[models]]\nid = "openai/gpt-4.1-mini"\n\ninput_price = "cheap"\n')
    done = onekey(env, tmp_path, "reload")
    assert done.returncode != 0 and "line 4" in done.stderr and "input_price" in done.stderr, done.stderr
    proc.send_signal(signal.SIGHUP)  # the same bad file by signal: logged, and nothing changes
    eventually(lambda: "reload refused" in (tmp_path / "core.log").read_text())
    now = listed(router)
    assert "openai/gpt-4.1" not in now and now["openai/gpt-4.1-mini"] == "available"
    assert proc.poll() is None

    (tmp_path / "models.toml").write_text("")
    done = onekey(env, tmp_path, "reload")
    assert done.returncode == 0 and "reloaded" in done.stdout and "openai-a:" in done.stdout, done.stderr
    assert "openai/gpt-4.1" in listed(router)


def test_onekey_models_sync_reads_the_lists_now(core):
    proc, fake, tmp_path, env, router = core
    assert "openai/gpt-6-terra" not in listed(router)
    fake.models += ["gpt-6.1-terra", "gpt-42-unpriced"]
    done = onekey(env, tmp_path, "models", "sync")
    assert done.returncode == 0, done.stderr
    assert f"openai-a: {len(fake.models)} models listed" in done.stdout
    assert "unpriced, not served (openai): gpt-42-unpriced" in done.stdout
    assert listed(router)["openai/gpt-6.1-terra"] == "available"
