"""The Docs page's samples, copied from the rendered page and run as a user would run them,
against an install with no provider keys (the sandbox only): Python, Node as `index.js` in a
default npm project, curl, and the Anthropic SDK."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from router_core.settings import CoreSettings
from tests import npm_clients
from tests.stack import Stack

_PRE = re.compile(r'<pre id="(docs-[a-z-]+)">(.*?)</pre>', re.S)


@pytest.fixture(scope="module")
def sandbox_only(tmp_path_factory):
    """A core and edge with no channel at all: only the built-in sandbox answers."""
    db = tmp_path_factory.mktemp("sandbox-core") / "router.db"
    stack = Stack(CoreSettings(database_url=f"sqlite:///{db}", channels=(), usage_flush_interval=0.05))
    yield stack
    stack.stop()


@pytest.fixture
def samples(make_app, sandbox_only) -> dict[str, str]:
    """Each sample on the Docs page by its id, as the page's text (what Copy copies)."""
    app = make_app(core=f"127.0.0.1:{sandbox_only.core.port}", api_base_url=sandbox_only.base_url)
    page = app.test_client().get("/docs")
    assert page.status_code == 200
    return {id_: html.unescape(text) for id_, text in _PRE.findall(page.get_data(as_text=True))}


@pytest.fixture
def env(sandbox_only) -> dict[str, str]:
    _, secret = sandbox_only.new_key()
    return {**os.environ, "ONEKEY_API_KEY": secret}


def test_samples_call_a_served_model_and_code_blocks_hold_only_code(samples):
    assert {"docs-env", "docs-python-install", "docs-python", "docs-node-install", "docs-node", "docs-curl",
            "docs-claude-code", "docs-anthropic-python"} <= samples.keys()
    for id_ in ("docs-python", "docs-node", "docs-curl", "docs-anthropic-python", "docs-claude-code"):
        assert "sandbox/echo" in samples[id_], f"{id_} must call the one model a sandbox-only install serves"
        assert "install" not in samples[id_], f"{id_}: install commands go in a block of their own"
    claude = samples["docs-claude-code"]
    assert "ANTHROPIC_AUTH_TOKEN=" in claude
    base = re.search(r"ANTHROPIC_BASE_URL=(\S+)", claude).group(1)
    assert not base.endswith("/v1"), "Anthropic's clients add /v1 themselves"


def test_python_sample_runs(samples, env, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(samples["docs-python"])
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Hello!" in proc.stdout  # the echo model answers with what it was sent


def test_anthropic_python_sample_runs(samples, env, tmp_path):
    script = tmp_path / "hello_anthropic.py"
    script.write_text(samples["docs-anthropic-python"])
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Hello!" in proc.stdout


def test_curl_sample_runs(samples, env):
    if shutil.which("curl") is None:
        pytest.skip("curl is not on PATH")
    proc = subprocess.run(["bash", "-ec", samples["docs-curl"] + " --fail-with-body -sS"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chunks = [json.loads(line[len("data: "):]) for line in proc.stdout.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Hello!" in text and "data: [DONE]" in proc.stdout


def test_node_sample_runs_as_index_js_in_a_default_npm_project(samples, env, tmp_path):
    try:
        folder = npm_clients.npm_project("docs-node", samples["docs-node-install"])
    except npm_clients.NpmUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the Node sample cannot be tried: {exc}")
        pytest.skip(f"Node sample not tried: {exc}")
    package = json.loads((folder / "package.json").read_text())
    assert "type" not in package or package["type"] == "commonjs", "npm init -y makes a CommonJS project"
    project = tmp_path / "node-sample"  # a copy of its own, so runs in parallel do not share index.js
    shutil.copytree(folder, project, symlinks=True)
    (project / "index.js").write_text(samples["docs-node"])
    proc = subprocess.run(["node", "index.js"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Hello!" in proc.stdout
