"""`onekey up`: the components as processes, a ready local key, a clean stop.

Two components run: `onekey router` (the edge and a core in one process, the edge calling the
core in-process) and `onekey account`. This launcher stays beside them to stop them in order;
it loads nothing heavy (no gRPC, no web framework), since it lives as long as they do.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from onekey_cli.config import Config, ensure_state_dir

PROVIDERS = ("openai", "anthropic", "google", "xai")


class _Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while the components were still starting."""


def _spawn(args: list[str], config: Config, module: str = "onekey_cli", **kw) -> subprocess.Popen:
    args = [sys.executable, "-m", module, *args]
    if config.path is not None:
        args += ["--config", str(config.path)]
    env = {**os.environ, "ONEKEY_SERVICE_TOKEN": config.core.service_token.reveal()}
    # A session of its own: Ctrl-C at the terminal reaches only the launcher, which stops the
    # components in order with SIGTERM; a component still importing never sees a SIGINT.
    return subprocess.Popen(args, env=env, start_new_session=True, **kw)


def _one_shot(args: list[str], config: Config, stopping, module: str = "onekey_cli") -> str:
    """Run a short command to its end (stopped with the launcher); its standard output."""
    proc = _spawn(args, config, module, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None:
            if stopping():
                raise _Stopped
            time.sleep(0.05)
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        if stopping():
            raise _Stopped
        sys.stderr.write(err)
        raise SystemExit(f"onekey: `{' '.join(['onekey', *args]) if module == 'onekey_cli' else module}` failed")
    return out


def _listens(config: Config) -> list[tuple[str, str]]:
    """What `onekey up` will listen on: (config setting, "host:port")."""
    found = [("[core] listen", config.core.listen), ("[edge] listen", config.edge.listen)]
    if _account_available():
        found.append(("[account] listen", str(config.account_section.get("listen", "127.0.0.1:5000"))))
    return found


def _port_taken(address: str) -> bool:
    """Whether something already listens on host:port (a bind would fail)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no conflict
        try:
            probe.bind((host, int(port)))
        except OSError:
            return True
    return False


def check_ports(config: Config) -> None:
    """Stop with one line naming a taken port and how to choose another, before anything starts
    (else the components would talk to whatever holds it: another OneKey refuses this one's token)."""
    for setting, address in _listens(config):
        if _port_taken(address):
            section = setting.split("]")[0] + "]"
            host, _, port = address.rpartition(":")
            raise SystemExit(
                f"onekey: {address} ({setting}) is already in use, by another OneKey or another program: stop it, "
                f"or pick another port in a config file ({section} listen = \"{host}:{int(port) + 1}\") "
                "and run `onekey up --config FILE` (`make run CONFIG=FILE`)")


def _upgrade_local_stores(config: Config, stopping) -> None:
    """Bring the SQLite stores to this release in a process of its own, before the components
    start: they then find their stores at head and never load Alembic, which would stay in their
    memory for as long as they run. (PostgreSQL stores are upgraded by the operator.)"""
    urls = {"core": config.core.database_url}
    if _account_available():
        urls["account"] = str(config.account_section.get("database_url", "sqlite:///.onekey/account.db"))
    for store, url in urls.items():
        if url.startswith("sqlite"):
            _one_shot(["db", "upgrade", "--store", store], config, stopping)


def _local_key(config: Config, stopping) -> dict:
    """The local project's key and a model to try, from `python -m onekey_cli.local_key`."""
    return json.loads(_one_shot([], config, stopping, module="onekey_cli.local_key"))


def _wait_http(url: str, proc: subprocess.Popen, what: str, stopping, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if stopping():
                raise _Stopped from None
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"onekey: the {what} did not start (see its log above)")
            time.sleep(0.1)


def _banner(config: Config, base_url: str, local: dict, account_url: str | None, model: str = "sandbox/echo") -> str:
    configured = {c.provider for c in config.core.channels}
    missing = [p for p in PROVIDERS if p not in configured]
    lines = [
        "",
        "OneKey is running.",
        f"  base URL     {base_url}",
        f"  API key      {local['key']}   (local project {local['project_id']})",
        "               the local project belongs to no account: its traffic shows in",
        f"               `onekey usage --project {local['project_id']}`, not on a dashboard",
    ]
    if account_url:
        lines.append(f"  account      {account_url}   (sign in for a project and keys of your own, with a dashboard)")
    if missing:
        lines.append(f"  no channel   {', '.join(missing)} (set {', '.join(_env_var(p) for p in missing)} or add [[channels]])")
        lines.append("               their models answer 404 model_not_available until then")
    why = "works without any provider key" if model.startswith("sandbox/") else "is available here"
    lines += [
        f"  try it       {model} {why}:",
        f"    curl {base_url}/chat/completions -H 'Authorization: Bearer {local['key']}' \\",
        "      -H 'Content-Type: application/json' \\",
        f"      -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"hello\"}}]}}'",
        f"  models       curl {base_url}/models -H 'Authorization: Bearer {local['key']}'   (prices and status)",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _env_var(provider: str) -> str:
    return {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google": "GEMINI_API_KEY",
            "xai": "XAI_API_KEY"}[provider]


def _account_available() -> bool:
    return (pathlib.Path(__file__).resolve().parent.parent / "account" / "__init__.py").exists()


def up(config: Config) -> int:
    """Start the router (edge and core) and the account app, when installed; stop them all on
    Ctrl-C or SIGTERM."""
    procs: list[subprocess.Popen] = []
    stopping = False

    def stop_all(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    # SIGHUP reloads the catalog file and channels: the router's core does it, the rest ignore it.
    signal.signal(signal.SIGHUP, lambda *_: procs and procs[0].poll() is None and procs[0].send_signal(signal.SIGHUP))
    ensure_state_dir()

    def stopped() -> bool:
        return stopping

    check_ports(config)
    return_code = 0
    try:
        _upgrade_local_stores(config, stopped)
        router = _spawn(["router"], config)
        procs.append(router)
        host, _, port = config.edge.listen.rpartition(":")
        base = f"http://{host or '127.0.0.1'}:{port}"
        _wait_http(f"{base}/healthz", router, "router", stopped)
        local = _local_key(config, stopped)
        model = local.pop("model")
        account_url = None
        if _account_available() and not stopping:
            account = _spawn(["account"], config)
            procs.append(account)
            a_host, _, a_port = str(config.account_section.get("listen", "127.0.0.1:5000")).rpartition(":")
            account_url = f"http://{a_host or '127.0.0.1'}:{a_port}"
            _wait_http(f"{account_url}/healthz", account, "account app", stopped)
        if not stopping:
            print(_banner(config, f"{base}/v1", local, account_url, model), flush=True)
        while not stopping:
            if any(p.poll() is not None for p in procs):
                print("onekey: a component exited; stopping the others", file=sys.stderr)
                return_code = 1
                break
            time.sleep(0.2)
    except _Stopped:
        pass  # stopped during start-up: a clean stop like any other
    finally:
        # Account first, then the router (which drains its edge before its core).
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=max(config.core.shutdown_grace, config.edge.shutdown_timeout) + 5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return return_code
