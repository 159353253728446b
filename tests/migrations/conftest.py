"""The account tests' fixtures (a real core, SMTP and OAuth fakes, the app factory), and the CLI."""
from __future__ import annotations

import json
import pathlib

import pytest

from onekey_cli.main import main
from tests.account.conftest import core, github, google, make_app, settings, smtp  # noqa: F401 (fixtures)


@pytest.fixture
def onekey_db(tmp_path, monkeypatch, capsys):
    """onekey_db(action, store, **urls) -> (exit code, parsed --json output) of `onekey db ACTION`."""
    monkeypatch.setenv("ONEKEY_SERVICE_TOKEN", "test-service-token")

    def run(action: str, store: str, core_url: str = "sqlite:///unused.db", account_url: str = "sqlite:///unused.db"):
        config = pathlib.Path(tmp_path) / "onekey.toml"
        config.write_text(f'[core]\ndatabase_url = "{core_url}"\n\n[account]\ndatabase_url = "{account_url}"\n')
        capsys.readouterr()
        code = main(["db", action, "--store", store, "--json", "--config", str(config)])
        out = capsys.readouterr()
        return code, (json.loads(out.out) if out.out.strip() else {}), out.err

    return run
