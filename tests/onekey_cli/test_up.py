"""`onekey up` as a newcomer runs it: a ready key, sandbox answers, Ctrl-C stops cleanly."""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import openai
import pytest
import requests

from tests.procs import free_port


def ask_for_a_sign_in_link(account_url: str) -> None:
    """Without SMTP the account app writes the mail into .onekey/mail/."""
    web = requests.Session()
    page = web.get(f"{account_url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    sent = web.post(f"{account_url}/login/email", data={"csrf_token": token, "email": "me@example.com"}, timeout=10)
    assert sent.status_code == 200, sent.text


def assert_private(state: pathlib.Path) -> None:
    """Every folder under .onekey/ is 0700 and every file 0600: stores, SQLite side files, keys, mail."""
    files = {p.relative_to(state).as_posix(): p.stat().st_mode & 0o777 for p in state.rglob("*")}
    expected = {"router.db", "account.db", "local-key.json", "service-token", "mail"}
    assert expected <= set(files), files
    assert any(name.startswith("mail/") and name.endswith(".eml") for name in files), files
    assert any(name.endswith("-wal") for name in files), files  # SQLite's side files are checked too
    assert state.stat().st_mode & 0o777 == 0o700
    wrong = {name: oct(mode) for name, mode in files.items()
             if mode != (0o700 if (state / name).is_dir() else 0o600)}
    assert wrong == {}, f"not private: {wrong}"


@pytest.mark.slow
def test_up_prints_a_working_key_and_stops_on_sigterm(tmp_path):
    core, edge, account = free_port(), free_port(), free_port()
    (tmp_path / "onekey.toml").write_text(
        f'[core]\nlisten = "127.0.0.1:{core}"\n[edge]\nlisten = "127.0.0.1:{edge}"\n'
        f'[account]\nlisten = "127.0.0.1:{account}"\n')
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ONEKEY_SERVICE_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops everything" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        key = re.search(r"API key\s+(ok-\S+)", banner).group(1)
        assert f"http://127.0.0.1:{edge}/v1" in banner
        assert "no channel   openai, anthropic, google, xai" in banner
        project = re.search(r"local project ([0-9a-f-]{36})", banner).group(1)
        assert "belongs to no account" in banner and f"`onekey usage --project {project}`" in banner
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{edge}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "hi"
        # The printout's example is the sandbox model, and the API answers what it says of the others.
        assert '"model": "sandbox/echo"' in banner and "404 model_not_available" in banner
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="openai/gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
        assert info.value.code == "model_not_available"
        ask_for_a_sign_in_link(f"http://127.0.0.1:{account}")
        assert_private(tmp_path / ".onekey")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "core stopped" in out and "edge stopped" in out
    # A second start reuses the same local key.
    assert (tmp_path / ".onekey" / "local-key.json").stat().st_mode & 0o077 == 0


def _running_in(folder) -> list[int]:
    """Processes whose working directory is folder (the launcher's components inherit it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find leftover processes")
def test_ctrl_c_at_any_instant_of_start_up_stops_cleanly(tmp_path):
    """SIGINT (and SIGTERM) to the process group while components import, connect, and after the banner."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ONEKEY_SERVICE_TOKEN"}
    # From 0.25 s: before that the interpreter itself is still starting (its own site import),
    # where a Ctrl-C is Python's to handle, not the command's.
    instants = [(delay, signal.SIGINT) for delay in (0.25, 0.5, 0.8, 1.5, 3.0, None)]  # None: after the banner
    instants += [(0.25, signal.SIGTERM), (0.5, signal.SIGTERM), (1.5, signal.SIGTERM)]
    for delay, sig in instants:
        folder = tmp_path / f"at-{delay}-{sig.name}"
        folder.mkdir()
        (folder / "onekey.toml").write_text(
            f'[core]\nlisten = "127.0.0.1:{free_port()}"\n[edge]\nlisten = "127.0.0.1:{free_port()}"\n'
            f'[account]\nlisten = "127.0.0.1:{free_port()}"\n')
        proc = subprocess.Popen([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"], cwd=folder,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        out = ""
        if delay is None:
            while "Ctrl-C stops everything" not in out:
                line = proc.stdout.readline()
                assert line, out
                out += line
        else:
            time.sleep(delay)
        os.killpg(proc.pid, sig)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"still running 30 s after {sig.name} at {delay}s")
        out += rest
        # A signal that lands before the interpreter has installed its own handlers ends it by the
        # signal's default action: nothing of OneKey has run yet, so nothing is left behind.
        not_started = proc.returncode == -sig and not out
        assert proc.returncode in (0, 130) or not_started, (delay, proc.returncode, out)
        assert "Traceback" not in out, (delay, out)
        deadline = time.monotonic() + 10
        while _running_in(folder) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running_in(folder), (delay, "components left running")


def test_the_printout_tries_an_available_priced_model_when_a_provider_has_a_channel(stack):
    from onekey_cli.local_key import try_model

    assert try_model(stack.channel) == "openai/gpt-5-mini"


@pytest.mark.parametrize("taken", ["core", "edge", "account"])
def test_a_taken_port_is_one_line_naming_it_and_how_to_pick_another(tmp_path, taken):
    import socket

    ports = {"core": free_port(), "edge": free_port(), "account": free_port()}
    (tmp_path / "onekey.toml").write_text("".join(
        f'[{name}]\nlisten = "127.0.0.1:{port}"\n' for name, port in ports.items()))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ONEKEY_SERVICE_TOKEN"}
    with socket.socket() as holder:  # another program (another OneKey, say) holds the port
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        proc = subprocess.run([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{ports[taken]} ([{taken}] listen) is already in use" in lines[0]
    assert f'[{taken}] listen = "127.0.0.1:' in lines[0] and "--config" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout and "Ctrl-C stops everything" not in proc.stdout


@pytest.mark.slow
def test_a_second_onekey_up_on_the_same_ports_says_which_port_is_taken(tmp_path):
    ports = {"core": free_port(), "edge": free_port(), "account": free_port()}
    config = "".join(f'[{name}]\nlisten = "127.0.0.1:{port}"\n' for name, port in ports.items())
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    for folder in (first_dir, second_dir):
        folder.mkdir()
        (folder / "onekey.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "ONEKEY_SERVICE_TOKEN"}
    first = subprocess.Popen([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"], cwd=first_dir,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, lines = time.monotonic() + 60, []
        while not any("Ctrl-C stops everything" in line for line in lines):
            assert time.monotonic() < deadline and first.poll() is None, "".join(lines)
            lines.append(first.stdout.readline())
        second = subprocess.run([sys.executable, "-m", "onekey_cli", "up", "--config", "onekey.toml"],
                                cwd=second_dir, env=env, capture_output=True, text=True, timeout=60)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert second.returncode != 0
    [line] = second.stderr.strip().splitlines()
    assert f"127.0.0.1:{ports['core']} ([core] listen) is already in use" in line
    assert "Traceback" not in second.stderr and "UNAUTHENTICATED" not in second.stderr
