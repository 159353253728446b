"""Real client programs from the npm registry, pinned, installed once per machine for the
client tests (tests/e2e/test_real_clients.py): Claude Code, the Codex CLI and the Vercel AI SDK.

They go to `.onekey/npm-clients/<digest of the pins>/` (ignored by git), so a change of pins
installs beside the old set and a present set is reused without asking the registry.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

# The current releases named by issue 21; zod is the AI SDK's peer dependency, pinned too.
PINS = {
    "@anthropic-ai/claude-code": "2.1.328",
    "@openai/codex": "0.169.0",
    "ai": "6.0.333",
    "@ai-sdk/openai": "3.0.141",
    "zod": "4.1.13",
}
REPO = pathlib.Path(__file__).resolve().parent.parent
CACHE = REPO / ".onekey" / "npm-clients"
INSTALL_TIMEOUT = 900


class NpmUnavailable(RuntimeError):
    """npm is missing or could not install the pinned packages (no registry, say)."""


def _folder() -> pathlib.Path:
    digest = hashlib.sha256(json.dumps(PINS, sort_keys=True).encode()).hexdigest()[:12]
    return CACHE / digest


def npm_env() -> dict[str, str]:
    """npm's environment: no update check, no funding or audit calls, quiet."""
    return {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
            "npm_config_audit": "false", "npm_config_loglevel": "error"}


def install() -> pathlib.Path:
    """The folder whose node_modules holds the pinned clients, installing them the first time.

    Concurrent test processes wait on a lock file, so the set is installed once.
    """
    folder = _folder()
    done = folder / ".installed"
    if done.exists():
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is not on PATH (Node.js 18+ with npm is needed for the client tests)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():  # another process installed it while this one waited
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps(
            {"name": "onekey-client-tests", "private": True, "dependencies": PINS}, indent=2) + "\n")
        try:
            proc = subprocess.run([npm, "install", "--save-exact", "--no-package-lock"], cwd=folder,
                                  env=npm_env(), capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise NpmUnavailable(f"npm install did not finish in {INSTALL_TIMEOUT} s") from exc
        if proc.returncode != 0:
            raise NpmUnavailable(f"npm install of {', '.join(f'{k}@{v}' for k, v in PINS.items())} failed "
                                 f"(exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}")
        for name in ("claude", "codex"):  # each runs a native binary from a platform package
            with tempfile.TemporaryDirectory() as home:
                ran = subprocess.run([str(bin_path(folder, name)), "--version"], capture_output=True, text=True,
                                     timeout=60, env={**npm_env(), "HOME": home, "CODEX_HOME": home})
            if ran.returncode != 0:
                raise NpmUnavailable(f"{name} was installed but does not run here (its platform package "
                                     f"may be missing):\n{(ran.stderr or ran.stdout)[-2000:]}")
        done.write_text(json.dumps(PINS) + "\n")
    return folder


def npm_project(name: str, script: str) -> pathlib.Path:
    """A folder under the cache made once by running a shell `script` of npm commands in it
    (`npm init -y`, `npm install openai`, as a page tells a user to): a new script, a new folder.

    Raises NpmUnavailable when npm is missing or the script fails (no registry, say).
    """
    if shutil.which("npm") is None:
        raise NpmUnavailable("npm is not on PATH (Node.js 18+ with npm is needed for this test)")
    folder = CACHE / f"{name}-{hashlib.sha256(script.encode()).hexdigest()[:12]}"
    done = folder / ".installed"
    if done.exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return folder
        if folder.exists():
            shutil.rmtree(folder)  # a half-made one from an interrupted run
        folder.mkdir(parents=True)
        try:
            proc = subprocess.run(["bash", "-ec", script], cwd=folder, env=npm_env(), capture_output=True,
                                  text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise NpmUnavailable(f"{script!r} did not finish in {INSTALL_TIMEOUT} s") from exc
        if proc.returncode != 0:
            raise NpmUnavailable(f"{script!r} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}")
        done.write_text(script + "\n")
    return folder


def bin_path(folder: pathlib.Path, name: str) -> pathlib.Path:
    """An installed package's command (node_modules/.bin/NAME)."""
    return folder / "node_modules" / ".bin" / name
