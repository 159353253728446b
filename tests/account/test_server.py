"""The account app behind waitress: health check, and `onekey account` stopping on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.account.conftest import ServedApp
from tests.procs import free_port


def test_served_by_waitress_with_healthz_and_pages(settings, app):
    served = ServedApp(settings, app)
    try:
        with urllib.request.urlopen(f"{served.url}/healthz", timeout=5) as response:
            assert response.status == 200 and b'"ok"' in response.read()
        with urllib.request.urlopen(f"{served.url}/login", timeout=5) as response:
            assert b"Email me a sign-in link" in response.read()
            assert response.headers["Server"] == "onekey"  # no software name or version
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{served.url}/no-such-page", timeout=5)
        assert info.value.code == 404 and info.value.headers["Server"] == "onekey"
    finally:
        served.stop()


@pytest.mark.slow
def test_onekey_account_runs_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    config = tmp_path / "onekey.toml"
    config.write_text(f'[core]\nlisten = "127.0.0.1:{free_port()}"\n\n[account]\nlisten = "127.0.0.1:{port}"\n'
                      f'database_url = "sqlite:///{tmp_path}/account.db"\n')
    env = {**os.environ, "ONEKEY_SERVICE_TOKEN": "svc-test-token"}
    proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "account", "--config", str(config)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the account app did not start"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)  # as Ctrl-C under `onekey up` does: the second must not break the drain
        output, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, output
        assert "account app stopped" in output and "Traceback" not in output
        assert "svc-test-token" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
